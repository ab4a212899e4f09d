import assert from 'node:assert/strict';
import { connect, CreateMode, startMember, type Member, type Session, type SessionState } from '../../src/index.js';
import { silentLogger } from '../../src/api/log.js';
import { memoryNetwork, type MemoryNetwork } from '../../src/transport/memory.js';
import { tcpTransport, type TcpTransport } from '../../src/transport/tcp.js';
import { recorder, rejectsWith } from '../api/helpers.js';
import { gatedTransport, SECRET, sleep, waitFor } from './helpers.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function states(s: Session): SessionState[] {
  const out: SessionState[] = [];
  s.on('state', (st) => out.push(st));
  return out;
}

/**
 * SPEC §3 (beyond) for remote sessions: `connect(addresses, { canBeReadOnly: true })`. The members
 * talk to each other over a memory network (so that one can be partitioned from the others) and
 * take their clients over real TCP on 127.0.0.1.
 */
describe('remote sessions: canBeReadOnly (READ_ONLY on a member without a quorum)', function () {
  this.timeout(30_000);
  let net: MemoryNetwork;
  const members = new Map<number, Member>();
  const listeners: TcpTransport[] = [];
  const address = new Map<number, string>();
  const sessions: Session[] = [];
  const ids = [1, 2, 3];

  const session = async (addrs: string[], options: Parameters<typeof connect>[1] = {}): Promise<Session> => {
    const s = await connect(addrs, { sessionTimeoutMs: 6000, ...options });
    sessions.push(s);
    return s;
  };
  const serving = (id: number): Member => members.get(id)!;

  beforeEach(async () => {
    net = memoryNetwork();
    for (const id of ids) {
      const t = tcpTransport({
        listen: '127.0.0.1:0', secret: SECRET,
        onClient: (c) => {
          const m = members.get(id);
          if (m) m.acceptClient(c);
          else c.close();
        },
      });
      listeners.push(t);
      address.set(id, await t.listen());
      // A listener for clients only: its peer list is itself, so it never dials anyone.
      await t.start(id, new Map([[id, address.get(id)!]]));
    }
    const ensemble = { 1: 'm1', 2: 'm2', 3: 'm3' };
    for (const m of await Promise.all(ids.map((id) => startMember({ id, ensemble, transport: net.transport(id), secret: SECRET, tickMs: 20, syncLimit: 25, logger: silentLogger })))) {
      members.set(m.id, m);
    }
    await Promise.all([...members.values()].map((m) => m.ready(5000)));
  });
  afterEach(async () => {
    net.heal();
    for (const s of sessions.splice(0)) await s.close().catch(() => undefined);
    for (const m of members.values()) await m.stop();
    members.clear();
    for (const t of listeners.splice(0)) await t.stop();
  });

  it('opened on a member without a quorum: READ_ONLY, reads answer, writes and sync fail with NOTREADONLY; without canBeReadOnly the connect fails; RECONNECTED read-write once the quorum is back', async () => {
    const leader = [...members.values()].find((m) => m.state === 'leading')!;
    const w = await leader.session();
    await w.create('/cfg', 'v1');
    await w.sync('/cfg');
    const lone = [...members.values()].find((m) => m.state === 'following')!;
    await waitFor(() => lone.tree.get('/cfg') !== undefined, 2000, 'the follower to have /cfg');
    net.isolate(lone.id);
    await waitFor(() => !lone.serving, 5000, 'the isolated member to stop serving');

    await rejectsWith(connect([address.get(lone.id)!], { sessionTimeoutMs: 6000, connectTimeoutMs: 600 }), 'CONNECTIONLOSS');
    const t0 = Date.now();
    const ro = await session([address.get(lone.id)!], { canBeReadOnly: true, connectTimeoutMs: 5000 });
    assert.ok(Date.now() - t0 < 3000, `opened in ${Date.now() - t0} ms`);
    assert.equal(ro.state, 'READ_ONLY');
    const seen = states(ro);
    assert.equal(text((await ro.getData('/cfg')).data), 'v1');
    assert.deepEqual(await ro.getChildren('/'), ['cfg', 'zookeeper']);
    await rejectsWith(ro.create('/x', ''), 'NOTREADONLY');
    await rejectsWith(ro.setData('/cfg', 'v2'), 'NOTREADONLY');
    await rejectsWith(ro.sync('/cfg'), 'NOTREADONLY');
    const changed = recorder();
    await ro.getData('/cfg', { watch: changed });
    assert.equal(leader.tree.sessions.has(ro.id), false, 'a session opened read-only exists on its member only');

    await w.setData('/cfg', 'v2');
    net.heal();
    await waitFor(() => ro.state === 'RECONNECTED', 10_000, 'RECONNECTED');
    assert.deepEqual(seen, ['SUSPENDED', 'RECONNECTED'], 'the member ends the read-only connection; the client re-attaches read-write');
    assert.ok(leader.tree.sessions.has(ro.id), 'created in the ensemble with the same id');
    await waitFor(() => changed.events.length > 0, 5000, 'the watch set while READ_ONLY to fire');
    assert.equal(changed.events[0]!.type, 'NodeDataChanged');
    await ro.create('/eph', '', { mode: CreateMode.EPHEMERAL });
    assert.equal(text((await ro.getData('/cfg')).data), 'v2');
  });

  it('its member loses the quorum: SUSPENDED, then READ_ONLY there (no member serves it read-write), then back read-write', async () => {
    const lone = [...members.values()].find((m) => m.state === 'following')!;
    const s = await session([address.get(lone.id)!], { canBeReadOnly: true });
    assert.equal(s.state, 'CONNECTED');
    await s.create('/cfg', 'v1');
    await s.create('/eph', '', { mode: CreateMode.EPHEMERAL });
    const seen = states(s);
    net.isolate(lone.id);
    await waitFor(() => s.state === 'READ_ONLY', 5000, 'READ_ONLY');
    assert.deepEqual(seen, ['SUSPENDED', 'READ_ONLY']);
    assert.equal(text((await s.getData('/cfg')).data), 'v1');
    await rejectsWith(s.setData('/cfg', 'v2'), 'NOTREADONLY');
    net.heal();
    await waitFor(() => s.state === 'RECONNECTED', 10_000, 'RECONNECTED');
    await s.setData('/cfg', 'v2');
    assert.notEqual(await s.exists('/eph'), null, 'its ephemeral outlived the partition (shorter than the timeout)');
  });

  it('READ_ONLY on a partitioned member while the others serve: the client finds a read-write member by itself (probing), in time to keep the session', async () => {
    const gate = gatedTransport();
    const s = await session(ids.map((id) => address.get(id)!), { canBeReadOnly: true, sessionTimeoutMs: 4000, transport: gate });
    await s.create('/eph', '', { mode: CreateMode.EPHEMERAL });
    const lone = [...members.values()].find((m) => m.localSessionsReport().some((r) => r.id === s.id))!;
    const seen = states(s);
    // The client can reach the partitioned member only: it settles for READ_ONLY there.
    gate.only([address.get(lone.id)!]);
    net.isolate(lone.id);
    await waitFor(() => s.state === 'READ_ONLY', 5000, 'READ_ONLY');
    assert.deepEqual(seen, ['SUSPENDED', 'READ_ONLY']);
    await rejectsWith(s.setData('/eph', 'x'), 'NOTREADONLY');
    // The others become reachable: the read-only session looks for them and moves, no SUSPENDED between.
    gate.only(undefined);
    await waitFor(() => s.state === 'RECONNECTED', 5000, 'RECONNECTED on a member with a quorum');
    assert.deepEqual(seen, ['SUSPENDED', 'READ_ONLY', 'RECONNECTED']);
    await s.setData('/eph', 'still here');
    await sleep(4500); // longer than the session timeout: alive because it is served read-write
    assert.equal(s.state, 'RECONNECTED');
    assert.equal(text((await s.getData('/eph')).data), 'still here');
    const others = [...members.values()].filter((m) => m !== lone);
    assert.ok(others.every((m) => m.tree.sessions.has(s.id)));
    assert.ok(!lone.localSessionsReport().some((r) => r.id === s.id), 'no longer attached to the partitioned member');
  });

  it('a leader election is not a loss of quorum: the session of a stopped leader moves on SUSPENDED → RECONNECTED, never READ_ONLY', async () => {
    const leader = [...members.values()].find((m) => m.state === 'leading')!;
    const gate = gatedTransport();
    gate.only([address.get(leader.id)!]);
    const s = await session(ids.map((id) => address.get(id)!), { canBeReadOnly: true, transport: gate });
    gate.only(undefined);
    await s.create('/eph', '', { mode: CreateMode.EPHEMERAL });
    // The followers have everything the client saw, so they could serve it (read-only) at once.
    await waitFor(() => [...members.values()].every((m) => m.tree.lastZxid === leader.tree.lastZxid), 2000, 'the followers to catch up');
    const seen = states(s);
    net.delay(60); // an election of a few round trips: longer than the client's first pass over the members
    await leader.stop();
    members.delete(leader.id);
    await waitFor(() => s.state === 'RECONNECTED', 8000, 'RECONNECTED');
    assert.deepEqual(seen, ['SUSPENDED', 'RECONNECTED']);
    await s.setData('/eph', 'x');
  });

  it('a read-only session closed by its client: closed at once (it expires in the ensemble after its timeout)', async () => {
    const lone = [...members.values()].find((m) => m.state === 'following')!;
    net.isolate(lone.id);
    await waitFor(() => !lone.serving, 5000, 'the isolated member to stop serving');
    const ro = await session([address.get(lone.id)!], { canBeReadOnly: true });
    assert.equal(ro.state, 'READ_ONLY');
    await ro.close();
    assert.equal(ro.state, 'CLOSED');
    await rejectsWith(ro.getData('/'), 'SESSIONEXPIRED');
  });
});
