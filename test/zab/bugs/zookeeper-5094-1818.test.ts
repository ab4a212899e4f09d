import assert from 'node:assert/strict';
import type { SimCluster } from '../../../src/testing/cluster.js';
import { assertHealthy, createOn, newCluster, track, valuesEverywhere } from '../helpers.js';

/**
 * ZOOKEEPER-5094: a learner crashed after applying TRUNC but before NEWLEADER, and came back with
 * a log and a tree that disagreed. ZOOKEEPER-1818: members that had accepted different epochs
 * confused the election. Both must end with one history and one leader per epoch.
 */
describe('ZOOKEEPER-5094 / -1818: interrupted TRUNC and inconsistent epochs', function () {
  this.timeout(30_000);
  let c: SimCluster;
  afterEach(async () => {
    await c?.shutdown();
  });

  it('5094: TRUNC applied, then a crash before NEWLEADER: the learner restarts consistent', async () => {
    c = newCluster({ seed: 5094 });
    const old = await c.startAll();
    const s = await c.session(old.id);
    await createOn(c, s, '/keep', 'k');
    c.filter((from, _to, msg) => (from === old.id && msg.t === 'proposal' ? 'drop' : 'deliver'));
    track(s.create('/trunc-me', 't'));
    await c.runFor(20);
    await c.crash(old.id);
    c.filter(undefined);
    await c.until(() => c.leader() !== undefined, 5000);
    const s2 = await c.session(c.leader()!.id);
    await createOn(c, s2, '/e2', 'x');
    let truncSeen = false;
    c.filter((_from, to, msg) => {
      if (to === old.id && msg.t === 'trunc') truncSeen = true;
      return to === old.id && msg.t === 'newleader' ? 'drop' : 'deliver';
    });
    await c.start(old.id);
    await c.until(() => truncSeen && c.storages.get(old.id)!.durableState().lastZxid < c.member(old.id).lastZxid + 10n, 2000);
    await c.runFor(30);
    assert.ok(truncSeen);
    await c.crash(old.id);
    c.filter(undefined);
    await c.start(old.id);
    await assertHealthy(c);
    for (const [, v] of valuesEverywhere(c, '/trunc-me')) assert.equal(v, null);
    for (const [, v] of valuesEverywhere(c, '/keep')) assert.equal(v, 'k');
  });

  it('1818: a member that accepted an epoch that never got established does not split the ensemble', async () => {
    c = newCluster({ seed: 1818, voters: 5 });
    await c.startAll();
    const s = await c.session(c.leader()!.id);
    await createOn(c, s, '/base');
    // Kill the leader; while the new leader syncs, two learners get LEADERINFO but never NEWLEADER,
    // and the new leader dies before establishing.
    const firstLeader = c.leader()!.id;
    c.filter((_from, _to, msg) => (msg.t === 'newleader' ? 'drop' : 'deliver'));
    await c.crash(firstLeader);
    await c.until(() => c.live().some((id) => c.member(id).state === 'leading'), 3000);
    await c.runFor(50);
    const would = c.live().find((id) => c.member(id).state === 'leading')!;
    const accepted = c.live().map((id) => c.storages.get(id)!.durableState().acceptedEpoch);
    assert.ok(new Set(accepted).size >= 1);
    await c.crash(would);
    c.filter(undefined);
    await c.until(() => c.leader() !== undefined, 5000);
    await c.start(firstLeader);
    await c.start(would);
    await assertHealthy(c);
    const epochs = [...c.leaders.entries()];
    assert.equal(new Set(epochs.map(([e]) => e)).size, epochs.length, 'one leader per epoch');
  });
});
