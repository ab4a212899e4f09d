import assert from 'node:assert/strict';
import type { SimCluster } from '../../../src/testing/cluster.js';
import type { ZabMessage } from '../../../src/zab/messages.js';
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
    // Once the learner has sent its NEWLEADER ACK, hold everything it sends (in order), so the
    // leader keeps it in sync phase while it commits more: the learner gets PROPOSALs and COMMITs
    // after its NEWLEADER ACK and before UPTODATE — ZOOKEEPER-4394's order.
    let holding = false;
    c.filter((from, to, raw) => {
      const msg = raw as ZabMessage;
      if (from === f && to === leader.id && msg.t === 'ack' && msg.newleader) holding = true;
      return from === f && holding ? 'hold' : 'deliver';
    });
    await c.start(f);
    await c.until(() => holding, 2000);
    const commitsSeen: bigint[] = [];
    c.filter((from, to, raw) => {
      const msg = raw as ZabMessage;
      if (to === f && msg.t === 'commit') commitsSeen.push(msg.zxid);
      return from === f ? 'hold' : 'deliver';
    });
    for (let i = 0; i < 5; i++) await createOn(c, s, `/mid${i}`, String(i));
    assert.ok(commitsSeen.length >= 5, 'the learner received COMMITs before UPTODATE');
    assert.ok(c.member(f).tree.get('/mid4') === undefined, 'not applied before UPTODATE');
    c.filter(undefined);
    assert.ok(c.release() > 0);
    await assertHealthy(c);
    assert.equal(valuesEverywhere(c, '/mid4').get(f), '4');
  });
});
