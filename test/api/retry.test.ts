import assert from 'node:assert/strict';
import { startMember, type Member } from '../../src/index.js';
import { RetryNTimes } from '../../src/api/recipes/index.js';
import { memoryNetwork } from '../../src/transport/memory.js';

/**
 * SPEC §3: operations issued around a disconnect "never silently succeed twice". A local session
 * with a retry policy re-issues a write after CONNECTIONLOSS; when the first attempt was in fact
 * committed, the retry must be answered with its result, not applied a second time.
 */
describe('api/retry: a retried write whose reply was lost is applied once', function () {
  this.timeout(20_000);
  let members: Member[] = [];
  afterEach(async () => {
    for (const m of members) await m.stop();
    members = [];
  });

  it('setData on a follower: committed while the follower was cut off; the retry returns version 1, not 2', async () => {
    const net = memoryNetwork();
    const ensemble = { 1: 'm1', 2: 'm2', 3: 'm3' };
    members = await Promise.all([1, 2, 3].map((id) => startMember({ id, ensemble, transport: net.transport(id), tickMs: 50, syncLimit: 5 })));
    await Promise.all(members.map((m) => m.ready(5000)));
    const leader = members.find((m) => m.state === 'leading')!;
    const follower = members.find((m) => m.state === 'following')!;
    const others = members.filter((m) => m !== follower).map((m) => m.id);
    const s = await follower.session({ sessionTimeoutMs: 10_000, retry: new RetryNTimes(100, 20) });
    await s.create('/r', 'v0');
    // The follower never learns that the leader committed: COMMITs and pings to it are dropped.
    net.drop((from, to, msg) => from === leader.id && to === follower.id && (msg.t === 'commit' || msg.t === 'ping'));
    const write = s.setData('/r', 'v1');
    for (let i = 0; i < 200 && leader.tree.get('/r')!.stat.version === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(leader.tree.get('/r')!.stat.version, 1, 'the leader committed the write');
    // Cut the follower off: it gives up on its leader, the write fails with CONNECTIONLOSS and is retried.
    net.partition([follower.id], others);
    await new Promise((r) => setTimeout(r, 600));
    net.heal();
    const stat = await write;
    assert.equal(stat.version, 1, 'the retry was answered with the first attempt\'s result');
    await s.sync('/r');
    const now = await s.getData('/r');
    assert.equal(now.stat.version, 1, 'applied exactly once');
    assert.equal(new TextDecoder().decode(now.data), 'v1');
  });
});
