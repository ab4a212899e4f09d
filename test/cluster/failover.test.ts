import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  agreedLeader, freePorts, libp2pIdentities, missingAcks, processSuite, settledDigests, spawnMember, waitFor, type MemberProcess, type MemberProcessConfig,
} from './harness.js';

/**
 * Issue 5 acceptance: three member processes over real TCP (and over libp2p), each writing on its
 * own local session; the leader is killed with SIGKILL; writes resume on the survivors, no
 * acknowledged write is lost, and the killed member restarts on its directory and catches up
 * (equal tree digests at equal zxids).
 */

type Kind = 'tcp' | 'libp2p';

async function configs(kind: Kind, root: string, tag: string): Promise<MemberProcessConfig[]> {
  const ports = await freePorts(3);
  const ids = [1, 2, 3];
  const common = { tickMs: 50, sessionTimeoutMs: 4000, logLevel: 'error' as const };
  if (kind === 'tcp') {
    const ensemble = Object.fromEntries(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
    return ids.map((id) => ({ id, ensemble, transport: 'tcp', secret: `cluster-test-secret-${tag}`, dir: join(root, `m${id}`), ...common }));
  }
  const keys = await libp2pIdentities(3);
  const ensemble = Object.fromEntries(ids.map((id, i) => [id, `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${keys[i]!.peerId}`]));
  return ids.map((id, i) => ({
    id, ensemble, transport: 'libp2p', peerKey: keys[i]!.key, listen: `/ip4/127.0.0.1/tcp/${ports[i]}`, dir: join(root, `m${id}`), ...common,
  }));
}

function acksAfter(m: MemberProcess, seq: number): number {
  return m.acks.filter((a) => a.seq > seq).length;
}

for (const kind of ['tcp', 'libp2p'] as const) {
  describe(`3 member processes over ${kind}: kill -9 of the leader`, function () {
    this.timeout(90_000);
    const suite = processSuite(`conclave-cluster-${kind}-`);

    it('writes from all members resume after the leader dies, no acknowledged write is lost, and the killed member catches up', async () => {
      const light = kind === 'libp2p';
      const cfgs = await configs(kind, suite.root, 'a');
      const members: MemberProcess[] = await Promise.all(cfgs.map((c) => spawnMember(c)));
      const leader = await agreedLeader(members, 30_000);
      const survivors = members.filter((m) => m !== leader);

      // Everybody writes on their own local session.
      const writerArgs = (m: MemberProcess, round: string) => ({ prefix: `/w-${round}-m${m.id}-`, concurrency: light ? 2 : 4, maxOps: 20_000, maxMs: 30_000 });
      await Promise.all(members.map((m) => m.call('writer.start', writerArgs(m, 'r1'))));
      await waitFor(() => members.every((m) => m.acks.length >= (light ? 30 : 100)), 20_000, 'acknowledged writes from all 3 members');

      // kill -9 the leader while everyone writes.
      const killedAcks = leader.acks.length;
      const killSeq = Math.max(-1, ...members.flatMap((m) => m.acks.map((a) => a.seq)));
      await leader.kill9();
      assert.ok(killedAcks > 0);

      // Writes resume on both survivors under a new leader.
      const newLeader = await agreedLeader(survivors, 20_000);
      assert.notEqual(newLeader.id, leader.id);
      await waitFor(() => survivors.every((m) => acksAfter(m, killSeq) >= (light ? 30 : 100)), 20_000, 'writes to resume on the survivors');

      // Restart the killed member on its own directory while the survivors keep writing.
      const restarted = await spawnMember(leader.config);
      await restarted.call('ready', { timeoutMs: 30_000 }, 35_000);
      await restarted.call('writer.start', writerArgs(restarted, 'r2'));
      await waitFor(() => restarted.acks.length >= 20, 20_000, 'writes from the restarted member').catch(async (e: Error) => {
        const st = await Promise.all([restarted, ...survivors].map(async (m) => ({ status: await m.status(), writer: await m.call('writer.status') })));
        throw new Error(`${e.message}; ${JSON.stringify(st)}`);
      });
      const all = [restarted, ...survivors];
      await Promise.all(all.map((m) => m.call('writer.stop', {}, 30_000)));

      // Every write acknowledged to any client, the killed leader's included, is on every member.
      const acks = [...members, restarted].flatMap((m) => m.acks);
      for (const m of all) {
        const problems = await missingAcks(m, acks);
        assert.deepEqual(problems.slice(0, 10), [], `${problems.length} acknowledged writes lost or wrong on member ${m.id}`);
      }
      const ds = await settledDigests(all, 30_000);
      assert.ok(ds.every((d) => d.digest === ds[0]!.digest), `digests differ at ${ds[0]!.lastZxid}: ${JSON.stringify(ds)}`);
      assert.ok(ds[0]!.nodes > acks.filter((a) => a.kind === 'create').length);
      console.log(`      ${kind}: ${acks.length} acknowledged writes (${killedAcks} by the killed leader ${leader.id}); new leader ${newLeader.id}; digests equal at ${ds[0]!.lastZxid}`);
      await Promise.all(all.map((m) => m.stop()));
    });
  });
}
