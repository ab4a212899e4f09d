import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/api/log.js';
import { loadTree, takeSnapshot } from '../../src/api/recovery.js';
import { realClock } from '../../src/api/clock.js';
import { Ids } from '../../src/core/acl.js';
import { Preparer } from '../../src/core/prep.js';
import { DataTree, SESSION_REPLIES, type ApplyResult } from '../../src/core/tree.js';
import type { Txn } from '../../src/core/txn.js';
import { makeZxid } from '../../src/core/zxid.js';
import { connect, CreateMode } from '../../src/index.js';
import { decodeSnapshotHeader, encodeSnapshotHeader } from '../../src/storage/format.js';
import { LevelStorage } from '../../src/storage/level.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import type { Storage } from '../../src/storage/types.js';
import type { PeerMessage } from '../../src/transport/types.js';
import { faultyClients, gatedTransport, tcpEnsemble, waitFor, type FaultVerdict, type MemberSideFaults } from './helpers.js';

const REMOTE = 0x10n;
const LOCAL = 0x20n;

/** Applies txns built by hand: sessions, creates with client ids. */
class Txns {
  zxid = 0;
  readonly tree = new DataTree();
  readonly log: Txn[] = [];
  apply(sessionId: bigint, cxid: number, op: Txn['op']): ApplyResult {
    const txn: Txn = { zxid: makeZxid(1, ++this.zxid), sessionId, cxid, time: 1000 + this.zxid, op };
    this.log.push(txn);
    return this.tree.apply(txn);
  }
  session(id: bigint, origin: string): void {
    this.apply(id, 0, { type: 'createSession', timeoutMs: 5000, origin });
  }
  create(sid: bigint, cxid: number, path: string): ApplyResult {
    return this.apply(sid, cxid, { type: 'create', path, data: new Uint8Array(0), acl: [...Ids.OPEN_ACL_UNSAFE], ephemeralOwner: 0n, kind: 0, ttl: 0, pcv: this.zxid, pseq: this.zxid });
  }
}

describe('exactly-once: the replicated session table records applied request ids and results (issue 5)', () => {
  it('remote sessions keep their last cxid and the last results (bounded); local sessions only the cxid', () => {
    const t = new Txns();
    t.session(REMOTE, '10.1.2.3');
    t.session(LOCAL, 'local');
    const last = SESSION_REPLIES + 25;
    for (let i = 1; i < last; i++) t.create(REMOTE, i, `/r${i}`);
    t.create(LOCAL, 1, '/l1');
    t.apply(REMOTE, last, { type: 'error', code: 'NONODE', path: '/missing' });
    const r = t.tree.sessions.get(REMOTE)!;
    assert.equal(r.lastCxid, last);
    assert.equal(r.replies!.length, SESSION_REPLIES);
    assert.deepEqual(r.replies!.map((x) => x.cxid), Array.from({ length: SESSION_REPLIES }, (_, i) => last - SESSION_REPLIES + 1 + i));
    assert.deepEqual(r.replies!.at(-1)!.result, { ok: false, code: 'NONODE', path: '/missing', zxid: makeZxid(1, t.zxid) });
    const created = r.replies!.at(-2)!.result as ApplyResult & { path: string };
    assert.equal(created.path, `/r${last - 1}`);
    const l = t.tree.sessions.get(LOCAL)!;
    assert.equal(l.lastCxid, 1);
    assert.equal(l.replies, undefined);
  });

  it('a txn at or below the last cxid does not move it back or record a second result (replay)', () => {
    const t = new Txns();
    t.session(REMOTE, '10.1.2.3');
    t.create(REMOTE, 5, '/a');
    const again = t.tree.apply({ ...t.log.at(-1)! });
    assert.equal(again.ok, false, 'the replayed create finds its node');
    const e = t.tree.sessions.get(REMOTE)!;
    assert.equal(e.lastCxid, 5);
    assert.equal(e.replies!.length, 1);
    assert.equal(e.replies![0]!.result.ok, true, 'the first result is the one kept');
    // createSession replayed over a table that has the session keeps what it recorded.
    t.tree.apply(t.log[0]!);
    assert.equal(t.tree.sessions.get(REMOTE)!.lastCxid, 5);
  });

  it('prep drops a request whose id is at or below the applied last cxid, whichever leader prepares it', () => {
    const t = new Txns();
    t.session(REMOTE, '10.1.2.3');
    t.create(REMOTE, 7, '/a');
    const fresh = new Preparer(t.tree); // a new leader: nothing prepared in its term
    const req = (cxid: number) => ({ sessionId: REMOTE, cxid, op: { type: 'delete' as const, path: '/a', version: -1 }, auth: [] });
    assert.equal(fresh.isDuplicate(req(7)), true);
    assert.equal(fresh.isDuplicate(req(3)), true);
    assert.equal(fresh.isDuplicate(req(8)), false);
    assert.equal(fresh.isDuplicate(req(8)), true, 'and one prepared in this term');
  });

  it('snapshot headers carry the new fields; a header written before them still loads', () => {
    const t = new Txns();
    t.session(REMOTE, '10.1.2.3');
    t.create(REMOTE, 3, '/a');
    const e = t.tree.sessions.get(REMOTE)!;
    const h = decodeSnapshotHeader(9n, encodeSnapshotHeader({ zxid: 9n, time: 1, sessions: [{ id: REMOTE, ...e }] }));
    assert.equal(h.sessions[0]!.lastCxid, 3);
    assert.deepEqual(h.sessions[0]!.replies, e.replies);
    const old = decodeSnapshotHeader(9n, encodeSnapshotHeader({ zxid: 9n, time: 1, sessions: [{ id: REMOTE, timeoutMs: 5000, origin: 'local' }] }));
    assert.deepEqual(old.sessions, [{ id: REMOTE, timeoutMs: 5000, origin: 'local' }]);
  });

  for (const kind of ['memory', 'level'] as const) {
    it(`a fuzzy snapshot keeps the results of the first application (${kind} storage)`, async () => {
      const dir = kind === 'level' ? await mkdtemp(join(tmpdir(), 'conclave-remote-')) : '';
      const storage: Storage = kind === 'level' ? new LevelStorage(dir, { forceSync: false }) : new MemoryStorage();
      try {
        await storage.open();
        const t = new Txns();
        t.session(REMOTE, '10.1.2.3');
        for (let i = 0; i < 12_000; i++) t.create(REMOTE, i + 1, `/n${i}`);
        await storage.append(t.log);
        const logged = t.log.length;
        // Writes continue while the snapshot streams: the creates land in nodes already captured
        // as well as not yet captured; replaying them over the snapshot finds some nodes existing.
        const snap = takeSnapshot(t.tree, storage, realClock, silentLogger);
        // Under the last nodes of the breadth-first walk, so that creates made early in the stream
        // are captured by it too.
        for (let i = 0; i < 40; i++) {
          await new Promise((r) => setImmediate(r));
          t.create(REMOTE, 20_000 + i, `/n${11_990 + (i % 10)}/late${i}`);
        }
        await snap;
        await storage.append(t.log.slice(logged));
        await storage.close();
        const again: Storage = kind === 'level' ? new LevelStorage(dir) : storage;
        const rec = await loadTree(again, silentLogger, 0);
        assert.equal(rec.tree.digest(), t.tree.digest());
        const live = t.tree.sessions.get(REMOTE)!;
        const got = rec.tree.sessions.get(REMOTE)!;
        assert.equal(got.lastCxid, live.lastCxid);
        assert.deepEqual(got.replies, live.replies, 'the recorded results survive recovery unchanged');
        assert.ok(got.replies!.every((r) => r.result.ok), 'no replayed NODEEXISTS in place of a created node');
        await again.close();
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('exactly-once: a member restarted from disk answers a resent write from the recovered record', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'conclave-remote-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answer lost, member restarted (snapshot + log replay), resend answered without a second node', async () => {
    const faults: MemberSideFaults = {};
    const ens = await tcpEnsemble({ size: 1, member: { storage: dir, snapCount: 50, forceSync: false }, wrapClients: faultyClients(faults) });
    try {
      const gate = gatedTransport();
      const s = await connect(ens.all(), { sessionTimeoutMs: 8000, transport: gate });
      await s.create('/r', '');
      for (let i = 0; i < 120; i++) await s.setData('/r', String(i));
      let armed = true;
      faults.onSend = (_id, msg: PeerMessage): FaultVerdict => {
        const m = msg as { t: string; v?: { op?: string } };
        if (armed && m.t === 'res' && m.v?.op === 'create') {
          armed = false;
          gate.block();
          return 'drop-and-close';
        }
        return 'pass';
      };
      const p = s.create('/r/n-', 'once', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
      await waitFor(() => !armed, 5000, 'the answer to be lost');
      // Restart before the client gets back: the record must come from the disk.
      const before = ens.member(1).tree.sessions.get(s.id)!;
      await ens.stop(1);
      await ens.restart(1);
      gate.unblock();
      const after = ens.member(1).tree.sessions.get(s.id)!;
      assert.equal(after.lastCxid, before.lastCxid);
      assert.deepEqual(after.replies, before.replies);
      const path = await p;
      assert.deepEqual(await s.getChildren('/r'), [path.slice(3)]);
      await s.close();
    } finally {
      await ens.stopAll();
    }
  });
});
