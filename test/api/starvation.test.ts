import assert from 'node:assert/strict';
import { startMember, type Member } from '../../src/index.js';
import { memoryNetwork } from '../../src/transport/memory.js';

describe('api/starvation: a tight loop of local reads does not starve the member', function () {
  this.timeout(20_000);
  let members: Member[] = [];
  afterEach(async () => {
    for (const m of members) await m.stop();
    members = [];
  });

  it('the leader keeps its followers (and the epoch) through 1.5 s of back-to-back reads', async () => {
    const net = memoryNetwork();
    const ensemble = { 1: 'm1', 2: 'm2', 3: 'm3' };
    members = await Promise.all([1, 2, 3].map((id) => startMember({ id, ensemble, transport: net.transport(id), tickMs: 50, syncLimit: 5 })));
    await Promise.all(members.map((m) => m.ready(5000)));
    const leader = members.find((m) => m.state === 'leading')!;
    const epoch = leader.zab.epoch;
    const s = await leader.session();
    await s.create('/hot', 'x');
    const t0 = Date.now();
    let reads = 0;
    // Every read resolves without I/O: without the session's yield the event loop would never turn.
    while (Date.now() - t0 < 1500) {
      await s.getData('/hot');
      reads++;
    }
    assert.ok(reads > 10_000);
    assert.equal(leader.state, 'leading');
    assert.equal(leader.zab.epoch, epoch, 'no re-election happened');
    assert.ok(members.every((m) => m.serving));
  });
});
