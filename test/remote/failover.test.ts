import assert from 'node:assert/strict';
import { connect, CreateMode, KeeperError, RetryNTimes, type Session, type SessionState } from '../../src/index.js';
import type { PeerMessage } from '../../src/transport/types.js';
import { recorder, rejectsWith } from '../api/helpers.js';
import {
  faultyClients, gatedTransport, servingMember, sleep, tcpEnsemble, waitFor, type FaultVerdict, type GatedTransport, type MemberSideFaults, type TcpEnsemble,
} from './helpers.js';

function states(s: Session): SessionState[] {
  const out: SessionState[] = [];
  s.on('state', (st) => out.push(st));
  return out;
}

/** A write answer (member → client) for a create under `prefix`. */
function isCreateAnswer(msg: PeerMessage, prefix: string): boolean {
  const m = msg as { t: string; v?: { op?: string; path?: string } };
  return m.t === 'res' && m.v?.op === 'create' && typeof m.v.path === 'string' && m.v.path.startsWith(prefix);
}

/** A write request (client → member) creating under `prefix`. */
function isCreateRequest(msg: PeerMessage, prefix: string): boolean {
  const m = msg as { t: string; op?: string; req?: { type?: string; path?: string } };
  return m.t === 'req' && m.op === 'write' && m.req?.type === 'create' && typeof m.req.path === 'string' && m.req.path.startsWith(prefix);
}

describe('remote sessions: failover to another member within the session timeout (SPEC §2, §3)', function () {
  this.timeout(60_000);
  const faults: MemberSideFaults = {};
  let ens: TcpEnsemble;
  let gate: GatedTransport;

  beforeEach(async () => {
    delete faults.onSend;
    delete faults.afterReceive;
    ens = await tcpEnsemble({ size: 3, wrapClients: faultyClients(faults) });
    gate = gatedTransport();
  });
  afterEach(async () => {
    await ens.stopAll();
  });

  it('the serving member (the leader) stops: SUSPENDED → RECONNECTED, ephemeral kept, watches kept, the gap event delivered', async () => {
    const leader = ens.leader();
    gate.only([ens.addresses.get(leader.id)!]);
    const s = await connect(ens.all(), { sessionTimeoutMs: 4000, transport: gate });
    gate.only(undefined);
    assert.equal(servingMember(ens, s.id)?.id, leader.id);
    const seen = states(s);
    await s.create('/cfg', 'v0');
    await s.create('/dir', '');
    await s.create('/me', '', { mode: CreateMode.EPHEMERAL });
    const data = recorder();
    const child = recorder();
    await s.getData('/cfg', { watch: data });
    await s.getChildren('/dir', { watch: child });

    gate.block();
    const stopping = ens.stop(leader.id);
    await waitFor(() => s.state === 'SUSPENDED', 5000, 'SUSPENDED');
    await rejectsWith(s.getData('/cfg'), 'CONNECTIONLOSS');
    await rejectsWith(s.create('/during'), 'CONNECTIONLOSS');
    await stopping;
    // While the client cannot reach anyone, the config changes (the gap).
    const other = ens.followers()[0] ?? ens.leader();
    await other.ready(10_000);
    const writer = await other.session();
    await writer.setData('/cfg', 'v1');
    gate.unblock();
    await waitFor(() => s.state === 'RECONNECTED', 5000, 'RECONNECTED');
    assert.deepEqual(seen, ['SUSPENDED', 'RECONNECTED']);
    await s.sync();
    assert.deepEqual(data.list(), ['NodeDataChanged /cfg'], 'the change made during the gap fires on re-registration');
    assert.equal(new TextDecoder().decode((await s.getData('/cfg')).data), 'v1');
    // The child watch did not fire in the gap: it is registered on the new member and fires now.
    await writer.create('/dir/x');
    await s.sync();
    assert.deepEqual(child.list(), ['NodeChildrenChanged /dir']);
    await writer.sync();
    assert.equal((await writer.exists('/me'))!.ephemeralOwner, s.id, 'the ephemeral survived the failover');
    assert.notEqual(servingMember(ens, s.id)?.id, leader.id);
    await s.close();
    await writer.sync();
    assert.equal(await writer.exists('/me'), null);
    await writer.close();
  });

  it('a write whose answer is lost with the connection applies once: the member it re-attaches to answers from the record', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 4000, transport: gate });
    await s.create('/once', '');
    let armed = true;
    let lostAt = 0;
    faults.onSend = (id, msg): FaultVerdict => {
      if (armed && isCreateAnswer(msg, '/once/n-')) {
        armed = false;
        lostAt = id;
        return 'drop-and-close';
      }
      return 'pass';
    };
    // Keep the client off the member that lost the answer, so another one must answer the resend.
    const seen = states(s);
    const p = s.create('/once/n-', 'x', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    await waitFor(() => lostAt !== 0, 5000, 'the answer to be lost');
    gate.only(ens.all().filter((a) => a !== ens.addresses.get(lostAt)));
    const path = await p;
    gate.only(undefined);
    const kids = await s.getChildren('/once');
    assert.deepEqual(kids, [path.slice('/once/'.length)], 'exactly one node, the one the caller was told about');
    assert.deepEqual(seen, ['SUSPENDED', 'RECONNECTED']);
    assert.notEqual(servingMember(ens, s.id)?.id, lostAt);
    await s.close();
  });

  it('a request that reached the member just before the connection dropped applies once (the original commit answers the resend)', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 4000, transport: gate });
    await s.create('/race', '');
    let armed = true;
    faults.afterReceive = (_id, msg): FaultVerdict => {
      if (armed && isCreateRequest(msg, '/race/n-')) {
        armed = false;
        return 'drop-and-close';
      }
      return 'pass';
    };
    const path = await s.create('/race/n-', 'x', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    assert.equal(armed, false);
    assert.deepEqual(await s.getChildren('/race'), [path.slice('/race/'.length)]);
    await s.close();
  });

  it('pipelined writes with their answers lost midway: every caller gets its own node, none twice (window of outstanding writes)', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 4000, transport: gate });
    await s.create('/pipe', '');
    let answers = 0;
    faults.onSend = (_id, msg): FaultVerdict => (isCreateAnswer(msg, '/pipe/n-') && ++answers === 7 ? 'drop-and-close' : 'pass');
    const paths = await Promise.all(Array.from({ length: 50 }, (_, i) => s.create('/pipe/n-', String(i), { mode: CreateMode.PERSISTENT_SEQUENTIAL })));
    assert.equal(new Set(paths).size, 50);
    const kids = (await s.getChildren('/pipe')).map((k) => `/pipe/${k}`).sort();
    assert.deepEqual(kids, [...paths].sort());
    for (let i = 0; i < 50; i++) assert.equal(new TextDecoder().decode((await s.getData(paths[i]!)).data), String(i), 'each caller got the node it created');
    await s.close();
  });

  it('a lost answer and a leader change before the resend: the new leader drops the duplicate, the record answers it', async () => {
    const follower = ens.followers()[0]!;
    gate.only([ens.addresses.get(follower.id)!]);
    const s = await connect(ens.all(), { sessionTimeoutMs: 5000, transport: gate });
    await s.create('/lc', '');
    let armed = true;
    faults.onSend = (_id, msg): FaultVerdict => {
      if (armed && isCreateAnswer(msg, '/lc/n-')) {
        armed = false;
        gate.block();
        return 'drop-and-close';
      }
      return 'pass';
    };
    const p = s.create('/lc/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    await waitFor(() => !armed && s.state === 'SUSPENDED', 5000, 'the lost answer');
    const oldLeader = ens.leader().id;
    await ens.stop(oldLeader);
    await waitFor(() => [...ens.members.values()].some((m) => m?.serving && m.state === 'leading'), 10_000, 'a new leader');
    gate.only(undefined);
    gate.unblock();
    const path = await p;
    assert.deepEqual(await s.getChildren('/lc'), [path.slice('/lc/'.length)]);
    assert.equal(s.state, 'RECONNECTED');
    await s.close();
  });

  it('LOST when no member can be reached within the session timeout; the ensemble expires it too', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 1500, transport: gate });
    await s.create('/gone', '', { mode: CreateMode.EPHEMERAL });
    const seen = states(s);
    gate.block();
    const t0 = Date.now();
    gate.dropAll();
    await waitFor(() => s.state === 'SUSPENDED', 2000, 'SUSPENDED');
    await rejectsWith(s.exists('/'), 'CONNECTIONLOSS');
    await waitFor(() => s.state === 'LOST', 4000, 'LOST');
    const lostAfter = Date.now() - t0;
    assert.ok(lostAfter >= 1400 && lostAfter < 2500, `LOST after ${lostAfter} ms (timeout 1500)`);
    assert.deepEqual(seen, ['SUSPENDED', 'LOST']);
    await rejectsWith(s.exists('/'), 'SESSIONEXPIRED');
    const local = await ens.member(1).session();
    await waitFor(async () => (await local.sync(), (await local.exists('/gone')) === null), 4000, 'the ephemeral to expire');
    await local.close();
    gate.unblock();
  });

  it('LOST when the ensemble expired the session; later operations fail with SESSIONEXPIRED', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 3000, transport: gate });
    const seen = states(s);
    await ens.leader().expireSession(s.id);
    await waitFor(() => s.state === 'LOST', 3000, 'LOST');
    assert.deepEqual(seen, ['LOST']);
    await rejectsWith(s.create('/x'), 'SESSIONEXPIRED');
  });

  it('expired while disconnected: the re-attach is refused and the session is LOST before its own deadline', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 5000, transport: gate });
    gate.block();
    gate.dropAll();
    await waitFor(() => s.state === 'SUSPENDED', 2000, 'SUSPENDED');
    await ens.leader().expireSession(s.id);
    for (const m of ens.members.values()) await waitFor(() => !m!.tree.sessions.has(s.id), 3000, 'the expiry to apply');
    const t0 = Date.now();
    gate.unblock();
    await waitFor(() => s.state === 'LOST', 3000, 'LOST');
    assert.ok(Date.now() - t0 < 2000);
  });

  it('an idle session attached to a follower lives for many timeouts: its heartbeats reach the leader', async () => {
    const follower = ens.followers()[0]!;
    gate.only([ens.addresses.get(follower.id)!]);
    const s = await connect(ens.all(), { sessionTimeoutMs: 500, transport: gate });
    const seen = states(s);
    await s.create('/idle', '', { mode: CreateMode.EPHEMERAL });
    await sleep(2500);
    assert.deepEqual(seen, [], 'never SUSPENDED');
    const local = await ens.leader().session();
    assert.ok(await local.exists('/idle'), 'not expired after 5 timeouts');
    await s.close();
    await local.close();
  });

  it('with a retry policy, a call made while SUSPENDED succeeds once RECONNECTED', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 4000, transport: gate, retry: new RetryNTimes(100, 20) });
    gate.block();
    gate.dropAll();
    await waitFor(() => s.state === 'SUSPENDED', 2000, 'SUSPENDED');
    const p = s.create('/retried', 'r');
    await sleep(200);
    assert.equal(s.state, 'SUSPENDED');
    gate.unblock();
    assert.equal(await p, '/retried');
    assert.equal(s.state, 'RECONNECTED');
    await s.delete('/retried');
    await s.close();
  });

  it('close() while SUSPENDED ends the session locally (the ensemble expires it)', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 1500, transport: gate });
    gate.block();
    gate.dropAll();
    await waitFor(() => s.state === 'SUSPENDED', 2000, 'SUSPENDED');
    await s.close();
    assert.equal(s.state, 'CLOSED');
    await rejectsWith(s.exists('/'), 'SESSIONEXPIRED');
    gate.unblock();
    await sleep(100);
    assert.equal(gate.dialed.length, 1, 'no reconnect after close');
  });

  it('a member losing its quorum sends its remote clients elsewhere', async () => {
    const follower = ens.followers()[0]!;
    gate.only([ens.addresses.get(follower.id)!]);
    const s = await connect(ens.all(), { sessionTimeoutMs: 5000, transport: gate });
    gate.only(undefined);
    const seen = states(s);
    // The other two stop: the follower has no quorum and stops serving.
    const others = [...ens.members.values()].filter((m) => m && m.id !== follower.id).map((m) => m!.id);
    await Promise.all(others.map((id) => ens.stop(id)));
    await waitFor(() => s.state === 'SUSPENDED', 5000, 'SUSPENDED');
    await ens.restart(others[0]!);
    await waitFor(() => s.state === 'RECONNECTED', 8000, 'RECONNECTED');
    assert.deepEqual(seen.slice(0, 2), ['SUSPENDED', 'RECONNECTED']);
    assert.ok((await s.exists('/')) !== null);
    await s.close();
  });
});

describe('remote sessions: re-attach rules (protocol level)', function () {
  this.timeout(30_000);
  let ens: TcpEnsemble;
  before(async () => {
    ens = await tcpEnsemble({ size: 1 });
  });
  after(async () => {
    await ens.stopAll();
  });

  async function raw(hello: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { connectTcpClient } = await import('../../src/transport/tcp.js');
    const c = await connectTcpClient(ens.all()[0]!);
    const first = new Promise<Record<string, unknown>>((resolve) => c.on('message', (m) => resolve(m as unknown as Record<string, unknown>)));
    c.send({ t: 'connect', v: 1, timeoutMs: 2000, lastZxid: 0n, auth: [], ...hello } as PeerMessage);
    const m = await first;
    c.close();
    return m;
  }

  it('a wrong password is refused as expired; a member behind the client is refused with retry; an unknown session is expired', async () => {
    const s = await connect(ens.all(), { sessionTimeoutMs: 2000 });
    const bad = await raw({ sessionId: s.id, password: new Uint8Array(16) });
    assert.deepEqual([bad.t, bad.code, bad.retry], ['refused', 'SESSIONEXPIRED', false]);
    const unknown = await raw({ sessionId: 12345n, password: new Uint8Array(16) });
    assert.deepEqual([unknown.t, unknown.code], ['refused', 'SESSIONEXPIRED']);
    assert.ok(s instanceof Object);
    await s.close();
  });

  it('the password is derived from the ensemble secret: another member with the same secret accepts it', async () => {
    const { passwordKey } = await import('../../src/api/remote/server.js');
    const { createHmac } = await import('node:crypto');
    const s = await connect(ens.all(), { sessionTimeoutMs: 2000 });
    const key = passwordKey('remote-sessions-test-secret')!;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(s.id);
    const pw = createHmac('sha256', key).update(b).digest().subarray(0, 16);
    const behind = await raw({ sessionId: s.id, password: pw, lastZxid: ens.member(1).lastZxid + 1000n });
    assert.deepEqual([behind.t, behind.code, behind.retry], ['refused', 'CONNECTIONLOSS', true]);
    assert.match(String(behind.message), /behind/);
    const ok = await raw({ sessionId: s.id, password: pw, lastZxid: 0n });
    assert.equal(ok.t, 'connected');
    assert.equal(ok.sessionId, s.id);
    await s.close().catch((e: unknown) => assert.ok(e instanceof KeeperError));
  });
});
