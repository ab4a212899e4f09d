import assert from 'node:assert/strict';
import { CreateMode } from '../../../src/core/createMode.js';
import type { SimCluster } from '../../../src/testing/cluster.js';
import type { ZabMessage } from '../../../src/zab/messages.js';
import { assertHealthy, newCluster, valuesEverywhere } from '../helpers.js';

/**
 * ZOOKEEPER-2355: the closeSession proposal of an expired session was lost on a follower, which
 * kept the session's ephemeral node forever. A lost proposal must be noticed (gap) and repaired.
 */
describe('ZOOKEEPER-2355: a lost closeSession proposal never leaves an orphan ephemeral', function () {
  this.timeout(30_000);
  let c: SimCluster;
  afterEach(async () => {
    await c?.shutdown();
  });

  for (const followUp of [true, false]) {
    it(`the follower repairs itself ${followUp ? 'when the next proposal shows the gap' : 'from the COMMIT alone'}`, async () => {
      c = newCluster({ seed: followUp ? 2355 : 2356 });
      const leader = await c.startAll();
      const f = c.followers()[0]!.id;
      const owner = await c.session(f, { sessionTimeoutMs: 5000 });
      await c.settle(owner.create('/lock', '', { mode: CreateMode.EPHEMERAL }));
      let dropped = false;
      c.filter((from, to, raw) => {
        const msg = raw as ZabMessage;
        if (from === leader.id && to === f && msg.t === 'proposal' && msg.txns.some((t) => t.op.type === 'closeSession') && !dropped) {
          dropped = true;
          return 'drop';
        }
        return 'deliver';
      });
      await c.settle(leader.expireSession(owner.id));
      await c.until(() => dropped && leader.tree.get('/lock') === undefined, 3000);
      if (followUp) {
        const s = await c.session(leader.id);
        await c.settle(s.create('/next', 'n'));
      }
      c.filter(undefined);
      await assertHealthy(c);
      for (const [, v] of valuesEverywhere(c, '/lock')) assert.equal(v, null);
    });
  }
});
