import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fuzzAddress } from '../transport/fuzz.js';
import { agreedLeader, freePorts, missingAcks, processSuite, settledDigests, spawnMember, waitFor, type MemberProcess } from './harness.js';

/**
 * Issue 5, hostile input at the ensemble level: ≥ 100,000 random and mutated frames thrown at a
 * live member of a 3-process TCP ensemble (garbage, truncated, oversized, mutated handshakes,
 * and — authenticated with the secret as a configured observer that no process runs — mutated
 * ZAB messages), while the other members keep writing. Afterwards the ensemble still serves
 * writes, every acknowledged write is everywhere, and the replicas' digests agree.
 */
describe('a 3-process ensemble under ≥ 100,000 hostile frames', function () {
  this.timeout(150_000);
  const suite = processSuite('conclave-cluster-fuzz-');

  it('still serves, loses no acknowledged write, and its replicas agree', async () => {
    const ports = await freePorts(4);
    const secret = 'fuzzed-ensemble-secret-0123456789';
    // Member 1 is an observer slot that no process fills: the fuzzer authenticates as it (its id
    // must be below the target's to get a data channel), so the real members' links stay intact.
    const ensemble = {
      1: { address: `127.0.0.1:${ports[0]}`, role: 'observer' as const },
      2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}`, 4: `127.0.0.1:${ports[3]}`,
    };
    const members: MemberProcess[] = await Promise.all([2, 3, 4].map((id) => spawnMember({
      id, ensemble, transport: 'tcp', secret, dir: join(suite.root, `m${id}`), tickMs: 50, sessionTimeoutMs: 6000, logLevel: 'error',
    })));
    const leader = await agreedLeader(members, 30_000);
    const target = leader;
    const others = members.filter((m) => m !== target);

    // Legitimate load on the other members for the whole fuzz.
    await Promise.all(others.map((m) => m.call('writer.start', { prefix: `/fuzz-w-m${m.id}-`, concurrency: 2, maxOps: 50_000, maxMs: 120_000, pauseMs: 2 })));
    await waitFor(() => others.every((m) => m.acks.length >= 20), 20_000, 'writes before the fuzz');

    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const report = await fuzzAddress(`127.0.0.1:${ports[members.indexOf(target) + 1]}`, {
      frames: 100_000, seed, member: { secret, id: 1, targetId: target.id }, maxMs: 90_000, concurrency: 16,
    });
    const context = `fuzz seed ${seed} (replay with FUZZ_SEED=${seed}) against member ${target.id} (the leader): ${JSON.stringify(report)}`;
    assert.ok(report.frames >= 100_000, `only ${report.frames} frames thrown; ${context}`);
    assert.ok(report.authenticated > 20, `the authenticated part did not run; ${context}`);

    // Every member process is alive and the target still serves.
    for (const m of members) assert.ok(m.running, `member ${m.id} died: ${m.stderrTail()}; ${context}`);
    const st = await target.status();
    assert.ok(st.warns > 0, 'the target reported no rejected input');

    // Writes keep going through every member (the target included) after the fuzz.
    const ackedBefore = members.map((m) => m.acks.length);
    await target.call('writer.start', { prefix: `/fuzz-after-m${target.id}-`, concurrency: 2, maxOps: 50_000, maxMs: 60_000 });
    await waitFor(() => members.every((m, i) => m.acks.length >= ackedBefore[i]! + 20), 30_000, `writes on every member after the fuzz; ${context}`);
    await Promise.all(members.map((m) => m.call('writer.stop', {}, 30_000)));

    const acks = members.flatMap((m) => m.acks);
    for (const m of members) {
      const problems = await missingAcks(m, acks);
      assert.deepEqual(problems.slice(0, 10), [], `${problems.length} acknowledged writes lost on member ${m.id}; ${context}`);
    }
    const ds = await settledDigests(members, 30_000);
    assert.ok(ds.every((d) => d.digest === ds[0]!.digest), `digests differ: ${JSON.stringify(ds)}; ${context}`);
    console.log(`      fuzz: ${report.frames} frames (${report.authenticated} authenticated connections) in ${report.ms} ms at leader ${target.id}, seed ${seed}; ${acks.length} acknowledged writes meanwhile; digests equal at ${ds[0]!.lastZxid}`);
    await Promise.all(members.map((m) => m.stop()));
  });
});
