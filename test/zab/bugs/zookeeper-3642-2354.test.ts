import assert from 'node:assert/strict';
import type { SimCluster } from '../../../src/testing/cluster.js';
import { assertHealthy, createOn, newCluster, valuesEverywhere } from '../helpers.js';

/**
 * ZOOKEEPER-3642: the leader died after sending a SNAP but before NEWLEADER; the learner had the
 * snapshot only in memory and later served/led with state that was not on its disk.
 * ZOOKEEPER-2354: a crash between writing the snapshot and updating currentEpoch left a member
 * that could not start or voted with a wrong epoch.
 */
describe('ZOOKEEPER-3642 / -2354: SNAP sync interrupted by crashes', function () {
  this.timeout(30_000);
  let c: SimCluster;
  afterEach(async () => {
    await c?.shutdown();
  });

  async function behindBySnap(seed: number): Promise<{ leader: number; f: number }> {
    c = newCluster({ seed, logWindow: 10 });
    const leader = await c.startAll();
    const f = c.followers()[0]!.id;
    await c.crash(f);
    const s = await c.session(leader.id);
    for (let i = 0; i < 30; i++) await createOn(c, s, `/s${i}`, String(i));
    return { leader: leader.id, f };
  }

  it('3642: leader dies after SNAP, before NEWLEADER: nothing is lost and the learner is consistent', async () => {
    const { leader, f } = await behindBySnap(3642);
    c.filter((_from, to, msg) => (to === f && (msg.t === 'newleader' || msg.t === 'uptodate') ? 'drop' : 'deliver'));
    await c.start(f);
    await c.until(() => c.member(f).lastZxid === c.member(leader).lastZxid, 2000);
    await c.crash(leader);
    c.filter(undefined);
    await c.until(() => c.leader() !== undefined, 5000);
    await c.start(leader);
    await assertHealthy(c);
    for (const [, v] of valuesEverywhere(c, '/s29')) assert.equal(v, '29');
  });

  it('3642: the learner crashes right after installing the SNAP in memory: it recovers a consistent state', async () => {
    const { f } = await behindBySnap(3643);
    c.filter((_from, to, msg) => (to === f && msg.t === 'newleader' ? 'drop' : 'deliver'));
    await c.start(f);
    await c.until(() => c.member(f).tree.get('/s29') !== undefined, 2000);
    await c.crash(f); // possibly before the snapshot was durable
    c.filter(undefined);
    await c.start(f);
    await assertHealthy(c);
    assert.equal(valuesEverywhere(c, '/s0').get(f), '0');
  });

  it('2354: crash after the snapshot is durable but before currentEpoch: restart and rejoin', async () => {
    const { leader, f } = await behindBySnap(2354);
    // Move the ensemble to a newer epoch while f is down, so its sync must update currentEpoch.
    const epoch = c.leader()!.zab.epoch;
    await c.crash(leader);
    await c.start(leader);
    await c.until(() => c.leader() !== undefined && c.leader()!.zab.epoch > epoch, 5000);
    const s = await c.session(c.leader()!.id);
    for (let i = 0; i < 15; i++) await createOn(c, s, `/t${i}`);
    c.filter((_from, to, msg) => (to === f && msg.t === 'newleader' ? 'drop' : 'deliver'));
    await c.start(f);
    await c.until(() => c.storages.get(f)!.durableState().lastZxid === c.leader()!.lastZxid, 2000);
    const before = c.storages.get(f)!.durableState();
    await c.crash(f);
    c.filter(undefined);
    assert.ok(before.currentEpoch < c.leader()!.zab.epoch, 'currentEpoch was not yet updated');
    await c.start(f);
    await assertHealthy(c);
  });
});
