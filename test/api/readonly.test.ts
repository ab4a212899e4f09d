import assert from 'node:assert/strict';
import { startMember, type Member, type Session, type SessionState } from '../../src/index.js';
import { Mutex } from '../../src/api/recipes/index.js';
import { memoryNetwork, type MemoryNetwork } from '../../src/transport/memory.js';
import { recorder, rejectsWith } from './helpers.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function states(s: Session): SessionState[] {
  const seen: SessionState[] = [];
  s.on('state', (st: SessionState) => seen.push(st));
  return seen;
}

/** SPEC §3 (beyond): READ_ONLY sessions — canBeReadOnly. */
describe('api/read-only sessions (canBeReadOnly): reads without a quorum, NOTREADONLY for writes', function () {
  this.timeout(20_000);
  let net: MemoryNetwork;
  let members: Member[] = [];
  let follower: Member;
  let others: number[];
  beforeEach(async () => {
    net = memoryNetwork();
    const ensemble = { 1: 'm1', 2: 'm2', 3: 'm3' };
    members = await Promise.all([1, 2, 3].map((id) => startMember({ id, ensemble, transport: net.transport(id), tickMs: 20, syncLimit: 5 })));
    await Promise.all(members.map((m) => m.ready(5000)));
    follower = members.find((m) => m.state === 'following')!;
    others = members.filter((m) => m !== follower).map((m) => m.id);
  });
  afterEach(async () => {
    net.heal();
    for (const m of members) await m.stop();
    members = [];
  });

  it('a session with canBeReadOnly turns READ_ONLY when its member loses the quorum: reads work, writes and sync fail with NOTREADONLY; RECONNECTED after', async () => {
    const ro = await follower.session({ sessionTimeoutMs: 10_000, canBeReadOnly: true });
    const plain = await follower.session({ sessionTimeoutMs: 10_000 });
    await ro.create('/cfg', 'v1');
    await ro.sync('/cfg');
    const seen = states(ro);
    net.partition([follower.id], others);
    await until(() => ro.state === 'READ_ONLY', 5000, 'READ_ONLY');
    assert.equal(plain.state, 'SUSPENDED', 'a session without canBeReadOnly is SUSPENDED as before');
    assert.equal(text((await ro.getData('/cfg')).data), 'v1');
    assert.ok((await ro.getChildren('/')).includes('cfg'));
    assert.notEqual(await ro.exists('/cfg'), null);
    await rejectsWith(ro.create('/x', ''), 'NOTREADONLY');
    await rejectsWith(ro.setData('/cfg', 'v2'), 'NOTREADONLY');
    await rejectsWith(ro.sync('/cfg'), 'NOTREADONLY');
    await rejectsWith(plain.getData('/cfg'), 'CONNECTIONLOSS');
    net.heal();
    await until(() => ro.state === 'RECONNECTED', 5000, 'RECONNECTED');
    assert.deepEqual(seen, ['READ_ONLY', 'RECONNECTED']);
    await ro.setData('/cfg', 'v2');
    assert.equal(text((await ro.getData('/cfg')).data), 'v2');
    await ro.close();
    await plain.close();
  });

  it('opened while the member has no quorum: READ_ONLY at once (no waiting for the connect timeout), then CONNECTED with the same id; a watch set meanwhile fires for a change made on the majority side', async () => {
    const w = await members.find((m) => m.id === others[0])!.session();
    await w.create('/cfg', 'v1');
    await w.sync('/cfg');
    await until(() => follower.tree.get('/cfg') !== undefined, 2000, 'the follower to have /cfg');
    net.partition([follower.id], others);
    await until(() => follower.state === 'looking', 5000, 'the follower to lose its leader');
    const t0 = Date.now();
    const ro = await follower.session({ sessionTimeoutMs: 10_000, canBeReadOnly: true });
    assert.ok(Date.now() - t0 < 2000, `opened in ${Date.now() - t0} ms`);
    assert.equal(ro.state, 'READ_ONLY');
    const seen = states(ro);
    const d = recorder();
    assert.equal(text((await ro.getData('/cfg', { watch: d })).data), 'v1');
    await rejectsWith(ro.create('/e', '', { mode: 1 }), 'NOTREADONLY');
    // Not a session of the ensemble yet.
    for (const m of members) assert.equal(m.tree.sessions.has(ro.id), false);
    // The majority goes on without the follower.
    await w.setData('/cfg', 'v2');
    net.heal();
    await until(() => ro.state === 'CONNECTED', 5000, 'CONNECTED');
    assert.deepEqual(seen, ['CONNECTED']);
    await until(() => d.events.length > 0, 2000, 'the watch set while read-only to fire');
    assert.deepEqual(d.list(), ['NodeDataChanged /cfg']);
    await ro.create('/eph', '', { mode: 1 });
    await ro.sync('/eph');
    for (const m of members) await until(() => m.tree.sessions.has(ro.id), 2000, `the session on member ${m.id}`);
    await ro.close();
    await w.close();
  });

  it('a read-only session opened without a quorum and closed before one returns never reaches the ensemble', async () => {
    net.partition([follower.id], others);
    await until(() => follower.state === 'looking', 5000, 'the follower to lose its leader');
    const ro = await follower.session({ sessionTimeoutMs: 10_000, canBeReadOnly: true });
    const id = ro.id;
    await ro.close();
    assert.equal(ro.state, 'CLOSED');
    net.heal();
    await follower.ready(5000);
    await sleep(100);
    for (const m of members) assert.equal(m.tree.sessions.has(id), false);
  });

  it('a read-only session closed while its createSession is in flight is ended in the ensemble too (no orphan until its timeout)', async () => {
    net.partition([follower.id], others);
    await until(() => follower.state === 'looking', 5000, 'the follower to lose its leader');
    const ro = await follower.session({ sessionTimeoutMs: 10_000, canBeReadOnly: true });
    const id = ro.id;
    net.heal();
    net.delay(60); // every hop of the createSession takes 60 ms: closing happens while it is in flight
    await until(() => follower.serving, 5000, 'the follower to serve again');
    await ro.close();
    assert.equal(ro.state, 'CLOSED');
    net.delay(0);
    await sleep(1500);
    for (const m of members) assert.equal(m.tree.sessions.has(id), false, `member ${m.id} still has the session`);
  });

  it('without canBeReadOnly nothing changes: a new session waits for the quorum and fails with CONNECTIONLOSS', async () => {
    net.partition([follower.id], others);
    await until(() => follower.state === 'looking', 5000, 'the follower to lose its leader');
    await rejectsWith(follower.session({ sessionTimeoutMs: 10_000, connectTimeoutMs: 300 }), 'CONNECTIONLOSS');
  });

  it('a lock held on a read-only session is given up when the session turns READ_ONLY (a suspension), kept with loseOn LOST', async () => {
    const s = await follower.session({ sessionTimeoutMs: 10_000, canBeReadOnly: true });
    const strict = new Mutex(s, '/locks/a');
    const lenient = new Mutex(s, '/locks/b');
    lenient.loseOn = 'LOST';
    assert.equal(await strict.acquire({ timeoutMs: 2000 }), true);
    assert.equal(await lenient.acquire({ timeoutMs: 2000 }), true);
    const lost: string[] = [];
    strict.on('lost', (st: SessionState) => lost.push(`a ${st}`));
    lenient.on('lost', (st: SessionState) => lost.push(`b ${st}`));
    net.partition([follower.id], others);
    await until(() => s.state === 'READ_ONLY', 5000, 'READ_ONLY');
    await sleep(20);
    assert.deepEqual(lost, ['a READ_ONLY']);
    net.heal();
    await until(() => s.state === 'RECONNECTED', 5000, 'RECONNECTED');
    await s.close();
  });

  it('a read-only session whose member stays cut off past the session timeout is LOST, as a suspended one', async () => {
    const ro = await follower.session({ sessionTimeoutMs: 400, canBeReadOnly: true });
    const seen = states(ro);
    net.partition([follower.id], others);
    await until(() => ro.state === 'LOST', 5000, 'LOST');
    assert.deepEqual(seen, ['READ_ONLY', 'LOST']);
    await rejectsWith(ro.getData('/'), 'SESSIONEXPIRED');
  });
});
