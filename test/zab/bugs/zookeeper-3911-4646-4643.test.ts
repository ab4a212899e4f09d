import assert from 'node:assert/strict';
import type { SimCluster } from '../../../src/testing/cluster.js';
import type { AckMsg, ZabMessage } from '../../../src/zab/messages.js';
import { assertHealthy, createOn, newCluster, track } from '../helpers.js';

/**
 * ZOOKEEPER-3911, -4646, -4643: a learner ACKed NEWLEADER (or a proposal) before the txns it
 * had received were durable, or persisted currentEpoch before the txns, so a crash right after
 * lost committed data. Here every ACK a learner sends is checked against its durable storage at
 * the moment it leaves, with slow fsyncs and writes racing the sync.
 */
describe('ZOOKEEPER-3911/-4646/-4643: a learner never ACKs what is not durable', function () {
  this.timeout(30_000);
  let c: SimCluster;
  afterEach(async () => {
    await c?.shutdown();
  });

  for (const seed of [1, 2, 3]) {
    it(`every ACK (proposal and NEWLEADER) is backed by durable storage, seed ${seed}`, async () => {
      c = newCluster({ seed, fsyncMs: [3, 25] });
      const leader = await c.startAll();
      const f = c.followers()[0]!.id;
      const problems: string[] = [];
      /** Highest zxid the leader sent to f before its latest NEWLEADER. */
      let sentBeforeNewLeader = 0n;
      let sentToF = 0n;
      let ackedByF = 0n;
      c.filter((from, to, raw) => {
        const msg = raw as ZabMessage;
        if (from !== f && to === f) {
          if (msg.t === 'diff') for (const t of msg.txns) if (t.zxid > sentToF) sentToF = t.zxid;
          if (msg.t === 'proposal') for (const t of msg.txns) if (t.zxid > sentToF) sentToF = t.zxid;
          if (msg.t === 'newleader') sentBeforeNewLeader = sentToF;
          if (msg.t === 'snap') sentToF = msg.zxid;
        }
        if (from === f && msg.t === 'ack') {
          const ack = msg as AckMsg;
          const d = c.storages.get(f)!.durableState();
          if (ack.newleader) {
            if (d.currentEpoch < ack.epoch) problems.push(`NEWLEADER ACK for epoch ${ack.epoch} with durable currentEpoch ${d.currentEpoch}`);
            if (d.lastZxid < sentBeforeNewLeader) problems.push(`NEWLEADER ACK with durable log at ${d.lastZxid} < synced ${sentBeforeNewLeader}`);
          } else if (d.lastZxid < ack.zxid) {
            problems.push(`ACK ${ack.zxid} with durable log at ${d.lastZxid}`);
          }
          if (!ack.newleader && ack.zxid > ackedByF) ackedByF = ack.zxid;
        }
        return 'deliver';
      });
      const s = await c.session(leader.id);
      await c.crash(f);
      for (let i = 0; i < 20; i++) await createOn(c, s, `/a${i}`);
      // Writes keep flowing while f restarts and syncs.
      const writes = Array.from({ length: 30 }, (_, i) => track(s.create(`/b${i}`)));
      await c.start(f);
      await c.until(() => writes.every((w) => w.done()), 5000);
      assert.deepEqual(problems, []);
      // Crash f now; everything it acknowledged must be on its disk (what it only applied need not be).
      await c.crash(f);
      assert.ok(ackedByF > 0n, 'the follower acknowledged proposals');
      assert.ok(c.storages.get(f)!.durableState().lastZxid >= ackedByF);
      await c.start(f);
      await assertHealthy(c);
      assert.deepEqual(problems, []);
    });
  }
});
