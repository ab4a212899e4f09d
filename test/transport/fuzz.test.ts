import assert from 'node:assert/strict';
import { isPeerMessage } from '../../src/transport/frame.js';
import { tcpTransport, type TcpTransport } from '../../src/transport/tcp.js';
import type { PeerMessage } from '../../src/transport/types.js';
import { record, waitFor } from './compliance.js';
import { fuzzAddress } from './fuzz.js';

const SECRET = 'fuzz-ensemble-secret-0123456789';

describe('tcpTransport under hostile input (fuzz, real sockets)', function () {
  this.timeout(90_000);
  const ts: TcpTransport[] = [];
  after(async () => {
    await Promise.all(ts.map((t) => t.stop()));
  });

  it('survives ≥ 100,000 random and mutated frames, before and after a handshake, and still delivers legitimate messages', async () => {
    // Member 5 is the target, member 6 a legitimate peer, member 1 the identity the fuzzer authenticates as.
    const target = tcpTransport({ listen: '127.0.0.1:0', secret: SECRET, handshakeTimeoutMs: 2000 });
    const legit = tcpTransport({ listen: '127.0.0.1:0', secret: SECRET });
    ts.push(target, legit);
    const peers = new Map([[1, '127.0.0.1:1'], [5, await target.listen()], [6, await legit.listen()]]);
    const rt = record(target);
    const rl = record(legit);
    await target.start(5, peers);
    await legit.start(6, new Map([[5, peers.get(5)!], [6, peers.get(6)!]]));
    await waitFor(() => target.connected().includes(6) && legit.connected().includes(5), 5000, 'the legitimate pair');
    let warnDetails = 0;
    target.on('warn', (_m, d) => {
      if (d && typeof d.suppressedWarnings === 'number') warnDetails += d.suppressedWarnings;
    });
    const rssBefore = process.memoryUsage().rss;

    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const report = await fuzzAddress(target.address()!, { frames: 100_000, seed, member: { secret: SECRET, id: 1, targetId: 5 }, maxMs: 45_000 });
    const context = `fuzz seed ${seed} (replay with FUZZ_SEED=${seed}): ${JSON.stringify(report)}`;

    assert.ok(report.frames >= 100_000, `only ${report.frames} frames thrown; ${context}`);
    assert.ok(report.authenticated > 20, `the authenticated part did not run; ${context}`);
    assert.ok(report.refusals > 1000, `the target refused too few connections; ${context}`);
    assert.ok(rt.warns.length > 0 && rt.warns.length + warnDetails > 1000, `rejections were not reported (${rt.warns.length} warnings, ${warnDetails} suppressed)`);
    assert.ok(rt.warns.length < 2000, `${rt.warns.length} warnings: the rate limit does not hold`);
    // Nothing was attributed to a member the fuzzer did not authenticate as; everything delivered is a message.
    assert.ok(rt.messages.every(([from, m]) => (from === 1 || from === 6) && isPeerMessage(m)), context);
    assert.equal(rt.messages.filter(([from]) => from === 6).length, 0);
    assert.ok(rt.messages.filter(([from]) => from === 1).length > 10_000, `few fuzz messages got through the framing layer: ${context}`);
    assert.deepEqual(rt.downs.filter((p) => p === 6), [], 'the legitimate connection survived the fuzz');
    assert.deepEqual(rl.downs, []);
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < 512 * 1024 * 1024, `rss grew by ${grown} bytes`);

    // Legitimate traffic still flows, in order, both ways.
    const before = rt.messages.length;
    for (let i = 0; i < 1000; i++) {
      legit.send(5, { t: 'legit', n: i } as PeerMessage);
      target.send(6, { t: 'legit', n: i } as PeerMessage);
    }
    await waitFor(() => rt.messages.length - before === 1000 && rl.messages.length === 1000, 10_000, 'legitimate messages after the fuzz');
    assert.deepEqual(rt.messages.slice(before).map(([f, m]) => [f, (m as unknown as { n: number }).n]), Array.from({ length: 1000 }, (_, i) => [6, i]));
    assert.deepEqual(rl.messages.map(([, m]) => (m as unknown as { n: number }).n), Array.from({ length: 1000 }, (_, i) => i));
    // And a new member connection still authenticates.
    await legit.stop();
    await waitFor(() => rt.downs.includes(6), 5000, 'down(6)');
    await legit.start(6, new Map([[5, peers.get(5)!], [6, peers.get(6)!]]));
    await waitFor(() => target.connected().includes(6), 5000, 'a fresh authenticated connection after the fuzz');
    console.log(`      fuzz: ${report.frames} frames over ${report.connections} connections (${report.authenticated} authenticated) in ${report.ms} ms, seed ${seed}`);
  });
});
