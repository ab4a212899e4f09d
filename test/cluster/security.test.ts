import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  agreedLeader, freePorts, libp2pIdentities, processSuite, settledDigests, spawnMember, waitFor, type MemberProcess, type MemberProcessConfig, type MemberStatus,
} from './harness.js';

/**
 * SPEC §4 / issue 5 acceptance: a process that does not hold the ensemble secret (TCP), that is
 * not configured as a member, or whose libp2p peer id is not allow-listed cannot join, vote or
 * change anything. Intruders are real member processes configured to join the running ensemble;
 * while they try, the ensemble's leader, epoch, last zxid and tree digest stay as they were, and
 * no intruder ever serves.
 */

const common = { tickMs: 50, sessionTimeoutMs: 4000, logLevel: 'error' as const };
const WATCH_MS = 4000;

interface Baseline {
  leader: number;
  epoch: number | null;
  digests: { id: number; lastZxid: string; digest: string }[];
}

async function baseline(members: MemberProcess[]): Promise<Baseline> {
  const leader = await agreedLeader(members, 30_000);
  // Some state to protect, written through every member.
  for (const m of members) await m.call('write', { path: `/guarded/m${m.id}`, value: `written by member ${m.id}` });
  const digests = await settledDigests(members);
  assert.ok(digests.every((d) => d.digest === digests[0]!.digest));
  return { leader: leader.id, epoch: (await leader.status()).epoch, digests };
}

/** Watches the intruders for WATCH_MS: none may serve; then the ensemble must be exactly as before. */
async function intrudersChangeNothing(members: MemberProcess[], intruders: MemberProcess[], before: Baseline): Promise<void> {
  const warnsBefore = (await Promise.all(members.map((m) => m.status()))).reduce((n, s) => n + s.warns, 0);
  const deadline = Date.now() + WATCH_MS;
  let polls = 0;
  while (Date.now() < deadline) {
    const st = await Promise.all(intruders.map((m) => m.status()));
    for (const s of st) assert.ok(!s.serving && s.leaderId === null, `intruder ${s.id} (pid ${s.pid}) serves: ${JSON.stringify(s)}`);
    polls++;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(polls > 10);
  const st: MemberStatus[] = await Promise.all(members.map((m) => m.status()));
  for (const s of st) {
    assert.equal(s.leaderId, before.leader, `member ${s.id} follows ${s.leaderId}, not ${before.leader}`);
    assert.ok(s.serving);
  }
  assert.equal(st.find((s) => s.id === before.leader)!.epoch, before.epoch, 'the epoch changed');
  const after = await settledDigests(members);
  assert.deepEqual(after.map((d) => [d.id, d.lastZxid, d.digest]), before.digests.map((d) => [d.id, d.lastZxid, d.digest]), 'the ensemble\'s state changed');
  // The refusals were reported (logged) by the members.
  const warnsAfter = st.reduce((n, s) => n + s.warns, 0);
  assert.ok(warnsAfter > warnsBefore, `no member reported a refused connection: ${JSON.stringify(st.map((s) => s.lastWarns))}`);
  // The ensemble still serves.
  const z = await members[0]!.call<string>('write', { path: '/guarded/after', value: 'still serving' });
  assert.ok(BigInt(z) > BigInt(before.digests[0]!.lastZxid));
  const ds = await settledDigests(members);
  assert.ok(ds.every((d) => d.digest === ds[0]!.digest));
}

describe('intruder processes cannot join, vote or change anything', function () {
  this.timeout(90_000);
  const suite = processSuite('conclave-intruders-', { killAfter: 'each' });

  it('TCP: a wrong secret (as a new member id, or impersonating member 1) and a right secret with an id the ensemble does not list', async () => {
    const ports = await freePorts(6);
    const ensemble = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
    const secret = 'the-ensemble-secret-0123456789';
    const members = await Promise.all([1, 2, 3].map((id) => spawnMember({ id, ensemble, transport: 'tcp', secret, dir: join(suite.root, `tcp-m${id}`), ...common })));
    const before = await baseline(members);

    const intruderConfigs: MemberProcessConfig[] = [
      // Wrong secret, new id 4, lists the real members: it would be the 4th voter.
      { id: 4, ensemble: { ...ensemble, 4: `127.0.0.1:${ports[3]}` }, transport: 'tcp', secret: 'a-wrong-secret-0123456789', dir: join(suite.root, 'tcp-i4'), ...common },
      // Wrong secret, impersonating member 1 (lower id than everyone: it dials members 2 and 3).
      { id: 1, ensemble: { ...ensemble, 1: `127.0.0.1:${ports[4]}` }, transport: 'tcp', secret: 'a-wrong-secret-0123456789', dir: join(suite.root, 'tcp-i1'), ...common },
      // The right secret, but id 5 is not in the ensemble's configuration.
      { id: 5, ensemble: { ...ensemble, 5: `127.0.0.1:${ports[5]}` }, transport: 'tcp', secret, dir: join(suite.root, 'tcp-i5'), ...common },
    ];
    const intruders = await Promise.all(intruderConfigs.map((c) => spawnMember(c)));
    await intrudersChangeNothing(members, intruders, before);
    // The intruders saw their own attempts fail.
    const ist = await Promise.all(intruders.map((m) => m.status()));
    assert.ok(ist.every((s) => s.connected.length === 0), JSON.stringify(ist));
  });

  it('libp2p: peers that are not allow-listed (a new member id, or claiming member 1\'s id) with their own keys', async () => {
    const ports = await freePorts(5);
    const keys = await libp2pIdentities(5);
    const addr = (i: number): string => `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${keys[i]!.peerId}`;
    const ensemble = { 1: addr(0), 2: addr(1), 3: addr(2) };
    const members = await Promise.all([1, 2, 3].map((id, i) => spawnMember({
      id, ensemble, transport: 'libp2p', peerKey: keys[i]!.key, listen: `/ip4/127.0.0.1/tcp/${ports[i]}`, dir: join(suite.root, `p2p-m${id}`), ...common,
    })));
    const before = await baseline(members);

    const intruders = await Promise.all([
      spawnMember({ id: 4, ensemble: { ...ensemble, 4: addr(3) }, transport: 'libp2p', peerKey: keys[3]!.key, listen: `/ip4/127.0.0.1/tcp/${ports[3]}`, dir: join(suite.root, 'p2p-i4'), ...common }),
      spawnMember({ id: 1, ensemble: { ...ensemble, 1: addr(4) }, transport: 'libp2p', peerKey: keys[4]!.key, listen: `/ip4/127.0.0.1/tcp/${ports[4]}`, dir: join(suite.root, 'p2p-i1'), ...common }),
    ]);
    await waitFor(async () => (await Promise.all(members.map((m) => m.status()))).some((s) => s.warns > 0), 10_000, 'a member to refuse an intruder');
    await intrudersChangeNothing(members, intruders, before);
    const ist = await Promise.all(intruders.map((m) => m.status()));
    assert.ok(ist.every((s) => s.connected.length === 0), JSON.stringify(ist));
  });
});
