import assert from 'node:assert/strict';
import type { SimCluster } from '../../../src/testing/cluster.js';
import { assertHealthy, createOn, newCluster, track, valuesEverywhere } from '../helpers.js';

/**
 * ZOOKEEPER-2845: a leader logged (and, on restart, applied) a txn no follower received; after
 * re-election it was TRUNCated from the log but stayed in the in-memory tree, so replicas diverged.
 */
describe('ZOOKEEPER-2845: an old leader\'s uncommitted txn does not survive re-election', function () {
  this.timeout(30_000);
  let c: SimCluster;
  afterEach(async () => {
    await c?.shutdown();
  });

  it('the txn is truncated from the log and the tree, on the old leader and after a full restart', async () => {
    c = newCluster({ seed: 2845 });
    const old = await c.startAll();
    const s = await c.session(old.id);
    await createOn(c, s, '/committed', 'yes');
    c.filter((from, _to, msg) => (from === old.id && msg.t === 'proposal' ? 'drop' : 'deliver'));
    track(s.create('/uncommitted', 'only-on-old-leader'));
    await c.until(() => c.storages.get(old.id)!.durableState().lastZxid === old.lastZxid + 1n || old.tree.get('/uncommitted') !== undefined, 500);
    await c.runFor(20);
    await c.crash(old.id);
    c.filter(undefined);
    await c.until(() => c.leader() !== undefined, 5000);
    const s2 = await c.session(c.leader()!.id);
    await createOn(c, s2, '/new-epoch', 'x');
    // The old leader restarts: its log has the txn, so recovery applies it to its tree first.
    await c.start(old.id);
    await assertHealthy(c);
    for (const [, v] of valuesEverywhere(c, '/uncommitted')) assert.equal(v, null);
    for (const [, v] of valuesEverywhere(c, '/committed')) assert.equal(v, 'yes');
    // And from disk: restart everyone.
    for (const id of c.ids) await c.crash(id);
    for (const id of c.ids) await c.start(id);
    await assertHealthy(c);
    for (const [, v] of valuesEverywhere(c, '/uncommitted')) assert.equal(v, null);
    for (const [, v] of valuesEverywhere(c, '/new-epoch')) assert.equal(v, 'x');
  });
});
