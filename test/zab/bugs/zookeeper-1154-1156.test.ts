import assert from 'node:assert/strict';
import type { SimCluster } from '../../../src/testing/cluster.js';
import { assertHealthy, createOn, newCluster, track, valuesEverywhere } from '../helpers.js';

/**
 * ZOOKEEPER-1154 / -1156: the member with the highest zxid (an uncommitted txn of an old epoch)
 * joins after the others elected a leader; it must be truncated exactly to the last txn it
 * shares with the leader — never below it (over-truncation lost committed txns).
 */
describe('ZOOKEEPER-1154/-1156: a late member with the highest zxid is truncated exactly', function () {
  this.timeout(30_000);
  let c: SimCluster;
  afterEach(async () => {
    await c?.shutdown();
  });

  it('keeps every committed txn and drops only the uncommitted one', async () => {
    c = newCluster({ seed: 1154 });
    const a = await c.startAll();
    const [b, third] = c.followers().map((m) => m.id) as [number, number];
    await c.crash(third);
    const s = await c.session(a.id);
    for (let i = 0; i < 5; i++) await createOn(c, s, `/w${i}`, `w${i}`);
    // A logs X that nobody else gets, then A and B go down.
    c.filter((from, _to, msg) => (from === a.id && msg.t === 'proposal' ? 'drop' : 'deliver'));
    track(s.create('/x', 'uncommitted'));
    await c.runFor(20);
    await c.crash(a.id);
    c.filter(undefined);
    // B (which has w0..w4) and the lagging third member elect a leader and write Y.
    await c.start(third);
    await c.until(() => c.leader() !== undefined, 5000);
    assert.ok([b, third].includes(c.leader()!.id));
    const s2 = await c.session(c.leader()!.id);
    await createOn(c, s2, '/y', 'new-epoch');
    // A, whose last zxid is the highest of the old epoch, joins late.
    await c.start(a.id);
    await assertHealthy(c);
    for (let i = 0; i < 5; i++) for (const [, v] of valuesEverywhere(c, `/w${i}`)) assert.equal(v, `w${i}`);
    for (const [, v] of valuesEverywhere(c, '/x')) assert.equal(v, null);
    for (const [, v] of valuesEverywhere(c, '/y')) assert.equal(v, 'new-epoch');
  });

  it('a member that missed a whole epoch and holds a newer one of its own is reconciled', async () => {
    c = newCluster({ seed: 1156, logWindow: 500 });
    const a = await c.startAll();
    const s = await c.session(a.id);
    await createOn(c, s, '/base', 'b');
    const [b, third] = c.followers().map((m) => m.id) as [number, number];
    // Epoch 2 led by someone else with only `third`'s participation ...
    await c.crash(a.id);
    await c.until(() => c.leader() !== undefined, 5000);
    const l2 = c.leader()!;
    const s2 = await c.session(l2.id);
    await createOn(c, s2, '/epoch2', 'e2');
    const other = l2.id === b ? third : b;
    // ... then l2 logs a txn nobody gets and dies.
    c.filter((from, _to, msg) => (from === l2.id && msg.t === 'proposal' ? 'drop' : 'deliver'));
    track(s2.create('/orphan', 'o'));
    await c.runFor(20);
    await c.crash(l2.id);
    c.filter(undefined);
    await c.start(a.id);
    await c.until(() => c.leader() !== undefined, 5000);
    assert.ok([a.id, other].includes(c.leader()!.id));
    await c.start(l2.id);
    await assertHealthy(c);
    for (const [, v] of valuesEverywhere(c, '/epoch2')) assert.equal(v, 'e2');
    for (const [, v] of valuesEverywhere(c, '/orphan')) assert.equal(v, null);
    for (const [, v] of valuesEverywhere(c, '/base')) assert.equal(v, 'b');
  });
});
