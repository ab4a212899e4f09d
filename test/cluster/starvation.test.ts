import assert from 'node:assert/strict';
import { join } from 'node:path';
import { agreedLeader, freePorts, processSuite, spawnMember, type MemberProcess } from './harness.js';

/**
 * Found by the cluster benchmark: local reads resolve without I/O, so a loop of them on the
 * leader's process never let its event loop turn; its ticks and sockets starved and the
 * followers (in other processes) elected a new leader after syncLimit ticks. The session now
 * yields the event loop after 50 ms without a turn.
 */
describe('3 member processes: a non-yielding loop of local reads on the leader', function () {
  this.timeout(60_000);
  const suite = processSuite('conclave-starve-');

  it('does not cost the leader its leadership', async () => {
    const ports = await freePorts(3);
    const ensemble = Object.fromEntries([1, 2, 3].map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
    const members: MemberProcess[] = await Promise.all([1, 2, 3].map((id) => spawnMember({
      id, ensemble, transport: 'tcp', secret: 'starvation-test', dir: join(suite.root, `m${id}`), tickMs: 50, sessionTimeoutMs: 4000, logLevel: 'error',
    })));
    const leader = await agreedLeader(members, 30_000);
    const before = await leader.status();
    // yieldEveryMs 0: the benchmark loop itself never yields; 3 s is 60 ticks (syncLimit is 10).
    await leader.call('bench', { op: 'getData', dir: '/starve', concurrency: 1, ops: 50_000_000, maxMs: 3000, existing: 1, yieldEveryMs: 0 }, 30_000);
    const after = await leader.status();
    assert.equal(after.state, 'leading');
    assert.equal(after.epoch, before.epoch, 'no new election');
    for (const m of members) assert.equal((await m.status()).leaderId, leader.id);
  });
});
