import assert from 'node:assert/strict';
import type { Clock } from '../../src/api/clock.js';
import { silentLogger } from '../../src/api/log.js';
import { loadTree, takeSnapshot } from '../../src/api/recovery.js';
import type { SnapshotNode } from '../../src/core/tree.js';
import type { Txn } from '../../src/core/txn.js';
import { makeZxid } from '../../src/core/zxid.js';
import { StorageError } from '../../src/storage/errors.js';
import type { SnapshotHeader, Storage } from '../../src/storage/types.js';
import { Workload } from './workload.js';

/** How the compliance suite gets storages of one implementation. */
export interface StorageHarness {
  /** A fresh, empty storage (not yet opened). */
  create(): Promise<Storage>;
  /** The same "disk" as `closed` (already closed), as the next process run would see it. */
  reopen(closed: Storage): Promise<Storage>;
  /** Removes what `create` made. */
  cleanup(): Promise<void>;
}

async function readAll(s: Storage, after = 0n): Promise<Txn[]> {
  const out: Txn[] = [];
  for await (const b of s.readLog(after)) for (const t of b) out.push(t);
  return out;
}

async function nodesOf(s: Storage): Promise<SnapshotNode[]> {
  const snap = await s.latestSnapshot();
  assert.ok(snap, 'a snapshot is expected');
  const out: SnapshotNode[] = [];
  for await (const c of snap.chunks()) for (const n of c) out.push(n);
  return out;
}

function header(zxid: bigint, sessions: SnapshotHeader['sessions'] = []): SnapshotHeader {
  return { zxid, time: 1_700_000_000_000, sessions };
}

function isStorageError(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof StorageError && e.code === code && !e.message.includes('\n');
}

/** A clock whose `yield` (called by takeSnapshot between chunks) runs `between` first. */
function steppingClock(between: () => Promise<void>): Clock {
  return {
    now: () => 1_700_000_000_000,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    setInterval: (fn, ms) => setInterval(fn, ms),
    clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
    yield: between,
  };
}

/**
 * The Storage contract (src/storage/types.ts), run against every implementation.
 */
export function storageCompliance(name: string, h: StorageHarness): void {
  describe(`storage compliance: ${name}`, function () {
    this.timeout(30_000);
    let s: Storage;
    beforeEach(async () => {
      s = await h.create();
    });
    afterEach(async () => {
      await s.close().catch(() => undefined);
      await h.cleanup();
    });

    async function reopen(): Promise<Storage> {
      await s.close();
      s = await h.reopen(s);
      return s;
    }

    it('opens empty: epochs 0, no snapshot, empty log', async () => {
      const st = await s.open();
      assert.equal(st.currentEpoch, 0);
      assert.equal(st.acceptedEpoch, 0);
      assert.equal(st.snapshotZxid, 0n);
      assert.equal(st.lastZxid, 0n);
      assert.deepEqual(st.damage ?? [], []);
      assert.equal(await s.latestSnapshot(), undefined);
      assert.deepEqual(await readAll(s), []);
    });

    it('appends in order and reads back exactly what was appended, from any zxid', async () => {
      await s.open();
      const w = new Workload(11);
      const txns = w.steps(300);
      for (let i = 0; i < txns.length; i += 37) await s.append(txns.slice(i, i + 37));
      assert.deepEqual(await readAll(s), txns);
      assert.deepEqual(await readAll(s, txns[99]!.zxid), txns.slice(100));
      assert.deepEqual(await readAll(s, txns[299]!.zxid), []);
      // A zxid between records (not itself logged) starts at the next one.
      assert.deepEqual((await readAll(s, txns[10]!.zxid + 0n))[0], txns[11]);
      await s.append([]);
    });

    it('concurrent appends all resolve, in call order, and land in order', async () => {
      await s.open();
      const w = new Workload(12);
      const txns = w.steps(200);
      const order: number[] = [];
      await Promise.all(txns.map((t, i) => s.append([t]).then(() => order.push(i))));
      assert.deepEqual(order, txns.map((_, i) => i));
      assert.deepEqual(await readAll(s), txns);
      if (s.stats) {
        const st = s.stats();
        assert.equal(st.appends, 200);
        assert.equal(st.txns, 200);
      }
    });

    it('refuses an out-of-order append with BAD_ARGUMENT and writes none of it', async () => {
      await s.open();
      const w = new Workload(13);
      const txns = w.steps(10);
      await s.append(txns.slice(0, 5));
      await assert.rejects(s.append([txns[7]!, txns[6]!]), isStorageError('BAD_ARGUMENT'));
      await assert.rejects(s.append([txns[4]!]), isStorageError('BAD_ARGUMENT'));
      await assert.rejects(s.append([{ zxid: 5 } as unknown as Txn]), isStorageError('BAD_ARGUMENT'));
      await s.append(txns.slice(5));
      assert.deepEqual(await readAll(s), txns);
    });

    it('keeps appended txns and epochs across close and reopen', async () => {
      await s.open();
      const w = new Workload(14);
      const txns = w.steps(120);
      await s.append(txns);
      await s.setEpochs({ acceptedEpoch: 3 });
      await s.setEpochs({ currentEpoch: 2 });
      await s.setEpochs({ acceptedEpoch: 4 });
      await reopen();
      const st = await s.open();
      assert.equal(st.acceptedEpoch, 4);
      assert.equal(st.currentEpoch, 2);
      assert.equal(st.lastZxid, txns[119]!.zxid);
      assert.deepEqual(await readAll(s), txns);
      await assert.rejects(s.setEpochs({ currentEpoch: -1 }), isStorageError('BAD_ARGUMENT'));
      await assert.rejects(s.setEpochs({ acceptedEpoch: 1.5 }), isStorageError('BAD_ARGUMENT'));
    });

    it('truncateAfter removes later txns (and newer snapshots); appends continue from there', async () => {
      await s.open();
      const w = new Workload(15);
      const txns = w.steps(100);
      await s.append(txns.slice(0, 80));
      await s.writeSnapshot(header(txns[29]!.zxid), [[]]);
      await s.writeSnapshot(header(txns[69]!.zxid), [[]]);
      await s.truncateAfter(txns[49]!.zxid);
      assert.deepEqual(await readAll(s), txns.slice(0, 50));
      assert.equal((await s.latestSnapshot())?.header.zxid, txns[29]!.zxid, 'the snapshot past the truncation point is gone');
      // A new epoch's txns follow the truncation point.
      const next: Txn[] = [50, 51, 52].map((i) => ({ ...txns[i]!, zxid: makeZxid(2, i - 49) }));
      await s.append(next);
      await reopen();
      const st = await s.open();
      assert.equal(st.lastZxid, next[2]!.zxid);
      assert.deepEqual(await readAll(s), [...txns.slice(0, 50), ...next]);
      await s.truncateAfter(0n);
      assert.deepEqual(await readAll(s), []);
      await assert.rejects(s.truncateAfter(-1n), isStorageError('BAD_ARGUMENT'));
    });

    it('writes and reads snapshots (header, sessions, every node with stat and data), newest wins', async () => {
      await s.open();
      const w = new Workload(16);
      const txns = [...w.steps(150), ...w.bulk(50)];
      await s.append(txns);
      const nodes = [...w.tree.records()];
      // Whatever a session entry holds comes back (here an extra field, as the tree may add).
      const sessions = [...w.tree.sessions].map(([id, e], i) => ({ id, timeoutMs: e.timeoutMs, origin: e.origin, lastCxid: i + 1 }));
      await s.writeSnapshot(header(txns[20]!.zxid), [nodes.slice(0, 3)]);
      // Chunks of any size, sync or async.
      async function* gen(): AsyncGenerator<SnapshotNode[]> {
        for (let i = 0; i < nodes.length; i += 7) yield nodes.slice(i, i + 7);
      }
      await s.writeSnapshot(header(w.lastZxid, sessions), gen());
      const snap = await s.latestSnapshot();
      assert.equal(snap?.header.zxid, w.lastZxid);
      assert.deepEqual(snap?.header.sessions, sessions);
      assert.equal(snap?.header.nodeCount, nodes.length);
      assert.deepEqual(await nodesOf(s), nodes);
      await reopen();
      const st = await s.open();
      assert.equal(st.snapshotZxid, w.lastZxid);
      assert.deepEqual(await nodesOf(s), nodes);
      if (s.snapshots) assert.deepEqual((await s.snapshots()).map((x) => [x.zxid, x.status]), [[w.lastZxid, 'valid'], [txns[20]!.zxid, 'valid']]);
      if (s.readSnapshot) {
        const old = await s.readSnapshot(txns[20]!.zxid);
        const got: SnapshotNode[] = [];
        for await (const c of old.chunks()) got.push(...c);
        assert.deepEqual(got, nodes.slice(0, 3));
      }
      await assert.rejects(s.writeSnapshot({ zxid: 5 } as unknown as SnapshotHeader, [[]]), isStorageError('BAD_ARGUMENT'));
      await assert.rejects(s.writeSnapshot(header(w.lastZxid + 1n), [[{ path: 7 } as unknown as SnapshotNode]]), isStorageError('BAD_ARGUMENT'));
    });

    it('a second snapshot at the same zxid keeps the first', async () => {
      await s.open();
      const w = new Workload(17);
      await s.append(w.steps(20));
      const nodes = [...w.tree.records()];
      await s.writeSnapshot(header(w.lastZxid), [nodes]);
      await s.writeSnapshot(header(w.lastZxid), [nodes.slice(0, 1)]);
      assert.deepEqual(await nodesOf(s), nodes);
    });

    it('fuzzy snapshot: the tree keeps changing while chunks stream; snapshot + log replay gives the exact tree', async () => {
      await s.open();
      const w = new Workload(18);
      await s.append([...w.bulk(11_000, 4), ...w.steps(400)]);
      let during = 0;
      // takeSnapshot yields between its 5000-node chunks: apply and log more txns right there.
      const clock = steppingClock(async () => {
        const more = w.steps(150);
        during += more.length;
        await s.append(more);
      });
      const hdr = await takeSnapshot(w.tree, s, clock, silentLogger);
      assert.ok(during >= 300, `txns were applied while the snapshot streamed (${during})`);
      assert.ok(hdr.zxid < w.lastZxid);
      await s.append(w.steps(100));
      const expected = w.tree.digest();
      await reopen();
      const rec = await loadTree(s, silentLogger, 0);
      assert.equal(rec.snapshotZxid, hdr.zxid);
      assert.equal(rec.lastZxid, w.lastZxid);
      assert.equal(rec.tree.digest(), expected, 'recovered tree equals the live tree');
    });

    it('recovery reports where its window of recent txns starts (ZAB DIFFs only from there)', async () => {
      await s.open();
      const w = new Workload(29);
      const before = w.steps(10);
      await s.append(before);
      const snapAt = w.lastZxid;
      await s.writeSnapshot(header(snapAt), [[...w.tree.records()]]);
      const after = w.steps(90);
      await s.append(after);
      await reopen();
      for (const window of [20, 35, 90, 200]) {
        const rec = await loadTree(s, silentLogger, window);
        const n = Math.min(window, after.length);
        assert.deepEqual(rec.recentLog.map((t) => t.zxid), after.slice(-n).map((t) => t.zxid), `window ${window}`);
        assert.equal(rec.recentFrom, n === after.length ? snapAt : after[after.length - n - 1]!.zxid, `window ${window}: the zxid before the first recent txn`);
      }
      const none = await loadTree(s, silentLogger, 0);
      assert.deepEqual(none.recentLog, []);
      assert.equal(none.recentFrom, w.lastZxid, 'no window: nothing to DIFF from before the last zxid');
    });

    it('installSnapshot replaces everything: the log is emptied, older snapshots go, appends continue after it', async () => {
      await s.open();
      const w = new Workload(19);
      await s.append(w.steps(60));
      await s.writeSnapshot(header(w.lastZxid), [[...w.tree.records()]]);
      const leader = new Workload(20, 3);
      leader.steps(80);
      const nodes = [...leader.tree.records()];
      await s.installSnapshot(header(leader.lastZxid), [nodes]);
      assert.deepEqual(await readAll(s), []);
      const after = leader.steps(5);
      await s.append(after);
      await reopen();
      const st = await s.open();
      assert.equal(st.snapshotZxid, leader.lastZxid - 5n);
      assert.equal(st.lastZxid, leader.lastZxid);
      if (s.snapshots) assert.deepEqual((await s.snapshots()).map((x) => x.zxid), [leader.lastZxid - 5n]);
      const rec = await loadTree(s, silentLogger, 0);
      assert.equal(rec.tree.digest(), leader.tree.digest());
    });

    for (const what of ['installSnapshot at the same zxid', 'installSnapshot at another zxid', 'truncateAfter']) {
      it(`a snapshot still being written when ${what} runs is abandoned; what ${what.split(' ')[0]} made stands`, async () => {
        await s.open();
        const w = new Workload(23);
        await s.append(w.steps(80));
        const zxid = w.lastZxid;
        const nodes = [...w.tree.records()];
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        async function* slow(): AsyncGenerator<SnapshotNode[]> {
          for (let i = 0; i < nodes.length; i += 2) {
            if (i === 4) await gate;
            yield nodes.slice(i, i + 2);
          }
        }
        const writing = s.writeSnapshot(header(zxid), slow());
        await new Promise((r) => setTimeout(r, 20));
        const leader = new Workload(24, 2);
        leader.steps(30);
        const theirs = [...leader.tree.records()];
        const installAt = what.includes('same') ? zxid : leader.lastZxid;
        if (what.startsWith('install')) await s.installSnapshot(header(installAt), [theirs]);
        else await s.truncateAfter(w.txns[39]!.zxid);
        release();
        await writing;
        if (what.startsWith('install')) {
          assert.equal((await s.latestSnapshot())?.header.zxid, installAt);
          assert.deepEqual(await nodesOf(s), theirs);
          if (s.snapshots) assert.deepEqual((await s.snapshots()).map((x) => [x.zxid, x.status]), [[installAt, 'valid']]);
        } else {
          assert.equal(await s.latestSnapshot(), undefined, 'no snapshot of the abandoned state');
          assert.deepEqual(await readAll(s), w.txns.slice(0, 40));
        }
        await reopen();
        const st = await s.open();
        assert.deepEqual(st.damage ?? [], [], 'nothing half-written was left behind');
      });
    }

    it('purge keeps the newest N snapshots and exactly the log they need', async () => {
      await s.open();
      const w = new Workload(21);
      const snapZxids: bigint[] = [];
      for (let i = 0; i < 5; i++) {
        await s.append(w.steps(40));
        await s.writeSnapshot(header(w.lastZxid, [...w.tree.sessions].map(([id, e]) => ({ id, ...e }))), [[...w.tree.records()]]);
        snapZxids.push(w.lastZxid);
      }
      await s.append(w.steps(25));
      const r = await s.purge(3);
      assert.deepEqual(r, { snapshots: 2, txns: 120 });
      assert.deepEqual(await readAll(s), w.txns.slice(120));
      if (s.snapshots) assert.deepEqual((await s.snapshots()).map((x) => x.zxid), snapZxids.slice(2).reverse());
      assert.deepEqual(await s.purge(3), { snapshots: 0, txns: 0 });
      await assert.rejects(s.purge(0), isStorageError('BAD_ARGUMENT'));
      // Every retained snapshot can still be recovered from: the log after the oldest is complete.
      await reopen();
      const rec = await loadTree(s, silentLogger, 0);
      assert.equal(rec.snapshotZxid, snapZxids[4]);
      assert.equal(rec.tree.digest(), w.tree.digest());
      assert.equal((await readAll(s, snapZxids[2]!)).length, w.txns.length - 120);
    });

    it('purge counts exactly what it removes: a log recovered on opening, across epochs, after a truncation', async () => {
      await s.open();
      const w = new Workload(24);
      const snap = async (): Promise<bigint> => {
        const z = (await readAll(s)).at(-1)!.zxid;
        await s.writeSnapshot(header(z, []), [[...w.tree.records()]]);
        return z;
      };
      await s.append(w.steps(30));
      await snap();
      await reopen();
      await s.open();
      const e2 = new Workload(25, 2).steps(20); // zxids of epoch 2: not consecutive with epoch 1's
      await s.append(e2);
      await s.truncateAfter(e2[9]!.zxid);
      await s.append(new Workload(26, 3).steps(7));
      const second = await snap();
      await s.append(new Workload(27, 4).steps(4));
      const expected = (await readAll(s)).filter((t) => t.zxid <= second).length;
      assert.equal(expected, 30 + 10 + 7);
      assert.deepEqual(await s.purge(1), { snapshots: 1, txns: expected });
      assert.equal((await readAll(s)).length, 4);
      const third = await snap();
      assert.deepEqual(await s.purge(1), { snapshots: 1, txns: 4 });
      assert.ok(third > second);
      assert.deepEqual(await readAll(s), []);
    });

    it('close waits for pending appends; afterwards operations fail with CLOSED', async () => {
      await s.open();
      const w = new Workload(22);
      const txns = w.steps(50);
      const pending = txns.map((t) => s.append([t]));
      await s.close();
      await Promise.all(pending);
      await assert.rejects(s.append(w.steps(1)), isStorageError('CLOSED'));
      s = await h.reopen(s);
      await s.open();
      assert.deepEqual(await readAll(s), txns);
    });
  });
}
