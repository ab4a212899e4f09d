import assert from 'node:assert/strict';
import type { SimCluster } from '../../../src/testing/cluster.js';
import { assertHealthy, createOn, newCluster, track, valuesEverywhere } from '../helpers.js';

/**
 * ZOOKEEPER-4785: a race between DIFF sync and proposals broadcast at the same time lost or
 * duplicated txns on the learner. ZOOKEEPER-4394: a COMMIT that arrived after the learner's
 * NEWLEADER ACK but before UPTODATE crashed the learner (NPE) instead of being applied.
 */
describe('ZOOKEEPER-4785 / -4394: writes racing a learner\'s sync', function () {
  this.timeout(30_000);
  let c: SimCluster;
  afterEach(async () => {
    await c?.shutdown();
  });

  for (const seed of [4785, 4786, 4787]) {
    it(`4785: proposals during DIFF sync are neither lost nor applied twice (seed ${seed})`, async () => {
      c = newCluster({ seed, fsyncMs: [1, 8] });
      const leader = await c.startAll();
      const f = c.followers()[0]!.id;
      const s = await c.session(leader.id);
      await c.crash(f);
      for (let i = 0; i < 10; i++) await createOn(c, s, `/pre${i}`);
      const writes = Array.from({ length: 40 }, (_, i) => track(s.create(`/during${i}`, String(i))));
      await c.start(f);
      await c.until(() => writes.every((w) => w.done()), 5000);
      await assertHealthy(c);
      assert.equal(c.member(f).tree.countDescendants('/'), c.leader()!.tree.countDescendants('/'));
    });
  }

  it('4394: COMMITs between NEWLEADER ACK and UPTODATE are applied, not fatal', async () => {
    c = newCluster({ seed: 4394 });
    const leader = await c.startAll();
    const f = c.followers()[0]!.id;
    const s = await c.session(leader.id);
    await c.crash(f);
    await createOn(c, s, '/pre');
    c.filter((_from, to, msg) => (to === f && msg.t === 'uptodate' ? 'hold' : 'deliver'));
    await c.start(f);
    await c.until(() => c.member(f).zab.currentEpoch === leader.zab.epoch, 2000);
    // The learner has ACKed NEWLEADER; the leader now commits more, with the learner's ACKs counting.
    for (let i = 0; i < 5; i++) await createOn(c, s, `/mid${i}`, String(i));
    assert.equal(c.release(), 1);
    c.filter(undefined);
    await assertHealthy(c);
    assert.equal(valuesEverywhere(c, '/mid4').get(f), '4');
  });
});
