import assert from 'node:assert/strict';
import type { Txn } from '../../../src/core/txn.js';
import type { MemoryStorage } from '../../../src/storage/memory.js';
import type { Storage } from '../../../src/storage/types.js';
import type { SimCluster } from '../../../src/testing/cluster.js';
import { assertHealthy, createOn, newCluster } from '../helpers.js';

/**
 * ZOOKEEPER-4882: after a transient disk error the follower kept going, leaving a gap in its
 * txn log that later recovery silently skipped. A failed durable write must stop the member.
 */
describe('ZOOKEEPER-4882: a failed log append stops the member instead of leaving a gap', function () {
  this.timeout(30_000);
  let c: SimCluster;
  afterEach(async () => {
    await c?.shutdown();
  });

  it('the member dies on the error, restarts cleanly and catches up; no gap in its log', async () => {
    let failNext = false;
    let failures = 0;
    let victim = 0;
    c = newCluster({
      seed: 4882,
      wrapStorage: (id, inner: MemoryStorage): Storage => {
        // Delegates everything to the real storage; only one append of the victim fails.
        return new Proxy(inner, {
          get(target, prop, receiver) {
            if (prop === 'append') {
              return (txns: readonly Txn[]) => {
                if (id === victim && failNext) {
                  failNext = false;
                  failures++;
                  return Promise.reject(new Error('EIO: simulated transient disk error'));
                }
                return target.append(txns);
              };
            }
            const v = Reflect.get(target, prop, receiver) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        }) as Storage;
      },
    });
    await c.startAll();
    victim = c.followers()[0]!.id;
    const s = await c.session(c.leader()!.id);
    await createOn(c, s, '/before');
    failNext = true;
    for (let i = 0; i < 5; i++) await createOn(c, s, `/after${i}`);
    assert.equal(failures, 1);
    assert.ok(c.violations.some((v) => v.includes(`member ${victim} failed`) && v.includes('EIO')), c.violations.join('\n'));
    c.violations.length = 0;
    await c.until(() => c.members.get(victim)?.stopped === true, 1000);
    c.members.set(victim, undefined);
    c.storages.get(victim)!.crash();
    await c.start(victim);
    await assertHealthy(c);
    // The log on disk is gap-free: consecutive counters within each epoch.
    let prev: bigint | undefined;
    for await (const batch of c.storages.get(victim)!.readLog(0n)) {
      for (const t of batch) {
        if (prev !== undefined && t.zxid >> 32n === prev >> 32n) assert.equal(t.zxid, prev + 1n, 'no gap');
        prev = t.zxid;
      }
    }
  });
});
