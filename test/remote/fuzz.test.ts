import assert from 'node:assert/strict';
import { connect, CreateMode } from '../../src/index.js';
import { connectTcpClient, type ClientConnection } from '../../src/transport/tcp.js';
import type { PeerMessage } from '../../src/transport/types.js';
import { recordingLogger, sleep, tcpEnsemble, waitFor, type TcpEnsemble } from './helpers.js';
import { mulberry32 as prng } from '../../src/testing/random.js';

/**
 * Hostile clients: thousands of random and mutated client-protocol messages — before and after a
 * genuine connect, re-attaches with forged ids and passwords, garbage requests of every kind —
 * thrown at live members over TCP. No member may crash or log an internal error; afterwards the
 * ensemble serves a legitimate remote session and the replicas agree. Replay with FUZZ_SEED.
 */


const OPS = ['write', 'getData', 'exists', 'getChildren', 'getACL', 'getAllChildrenNumber', 'getEphemerals', 'sync', 'addAuth', 'addWatch', 'removeWatch'];
const TYPES = ['create', 'delete', 'setData', 'setACL', 'check', 'multi', 'createSession', 'closeSession', 'reap', 'nope'];

class Fuzz {
  readonly rnd: () => number;
  constructor(seed: number) {
    this.rnd = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  path(): unknown {
    return this.pick<() => unknown>([
      () => '/', () => '/fz', () => `/fz/${this.int(20)}`, () => `/fz/${this.int(5)}/${this.int(5)}`, () => '/zookeeper/config',
      () => 'relative', () => '/a//b', () => '/trailing/', () => '/a/./b', () => '/\u0000', () => '/' + 'x'.repeat(this.int(5000)),
      () => this.value(1),
    ])();
  }
  value(depth = 0): unknown {
    const leaf = [
      () => undefined, () => null, () => true, () => false, () => 0, () => -1, () => 1.5, () => 2 ** 53 - 1, () => -(2 ** 40),
      () => Number.NaN, () => Number.POSITIVE_INFINITY, () => '', () => 'x'.repeat(this.int(100)), () => String.fromCharCode(this.int(0xffff)),
      () => BigInt(this.int(1e9)), () => -1n, () => (1n << 63n) - 1n, () => new Uint8Array(this.int(64)), () => this.int(1 << 30),
    ];
    if (depth > 2) return this.pick(leaf)();
    const nested = [
      () => [], () => Array.from({ length: this.int(5) }, () => this.value(depth + 1)), () => ({}),
      () => ({ t: this.pick(['req', 'connect', 'ping', 'x']), [this.pick(['xid', 'op', 'path'])]: this.value(depth + 1) }),
      () => Object.fromEntries(Array.from({ length: this.int(4) }, () => [this.pick(['a', 'path', 'data', 'acl', 'version', 'type', 'ops']), this.value(depth + 1)])),
    ];
    return this.rnd() < 0.7 ? this.pick(leaf)() : this.pick(nested)();
  }
  maybe<T>(v: () => T): T | unknown {
    return this.rnd() < 0.8 ? v() : this.value();
  }
  acl(): unknown {
    return this.maybe(() => Array.from({ length: this.int(4) }, () => this.maybe(() => ({
      perms: this.maybe(() => this.int(40)), scheme: this.maybe(() => this.pick(['world', 'ip', 'digest', 'auth', 'super', 'x'])),
      id: this.maybe(() => this.pick(['anyone', '127.0.0.1', '10.0.0.0/8', '::1/129', 'u:x', 'bad'])),
    }))));
  }
  writeReq(): unknown {
    const type = this.pick(TYPES);
    if (type === 'multi') return { type, ops: this.maybe(() => Array.from({ length: this.int(6) }, () => this.writeReq())) };
    return {
      type, path: this.path(), data: this.maybe(() => new Uint8Array(this.int(256))), version: this.maybe(() => this.int(5) - 2),
      acl: this.acl(), mode: this.maybe(() => this.int(9) - 1), ttl: this.maybe(() => this.int(3) * 1000),
      ...(this.rnd() < 0.1 ? { extra: this.value() } : {}),
    };
  }
  request(xid: unknown): unknown {
    const op = this.rnd() < 0.01 ? 'close' : this.rnd() < 0.9 ? this.pick(OPS) : this.value();
    const m: Record<string, unknown> = { t: 'req', xid, op };
    if (op === 'write') m.req = this.writeReq();
    for (const k of ['path', 'watch', 'prefix', 'scheme', 'credentials', 'recursive', 'kind']) {
      if (this.rnd() < 0.6) {
        m[k] = k === 'path' || k === 'prefix' ? this.path() : k === 'kind' ? this.maybe(() => this.pick(['persistent', 'recursive'])) : k === 'scheme' ? this.maybe(() => this.pick(['digest', 'ip', 'x'])) : this.value();
      }
    }
    return m;
  }
  connectMsg(reattach: { sessionId: bigint; password: Uint8Array } | undefined): unknown {
    const m: Record<string, unknown> = {
      t: 'connect', v: this.maybe(() => 1), timeoutMs: this.maybe(() => 100 + this.int(3000)), lastZxid: this.maybe(() => BigInt(this.int(1000))),
      auth: this.maybe(() => Array.from({ length: this.int(3) }, () => ({ scheme: this.maybe(() => 'digest'), credentials: this.maybe(() => this.pick(['u:p', 'nocolon', ':p'])) }))),
    };
    if (reattach || this.rnd() < 0.2) {
      m.sessionId = reattach && this.rnd() < 0.7 ? reattach.sessionId : this.value();
      m.password = reattach && this.rnd() < 0.5 ? reattach.password : this.maybe(() => new Uint8Array(this.int(40)));
      m.watches = this.maybe(() => ({ data: this.maybe(() => [this.path()]), exist: [], child: this.maybe(() => [this.path(), this.path()]), persistent: this.value(), recursive: [] }));
    }
    return m;
  }
}

/** One hostile connection; `answers` counts request answers (results or errors) it got back. */
async function fuzzConnection(address: string, f: Fuzz, frames: number, known: { sessionId: bigint; password: Uint8Array }[]): Promise<{ sent: number; answers: number }> {
  let c: ClientConnection;
  try {
    c = await connectTcpClient(address, { timeoutMs: 3000 });
  } catch {
    return { sent: 0, answers: 0 };
  }
  let answers = 0;
  let connected = false;
  c.on('message', (m) => {
    if ((m as { t: string }).t === 'res') answers++;
    const msg = m as unknown as { t: string; sessionId?: bigint; password?: Uint8Array };
    if (msg.t === 'connected') {
      connected = true;
      if (known.length < 50) known.push({ sessionId: msg.sessionId!, password: msg.password! });
    }
  });
  let sent = 0;
  const style = f.int(4);
  // 0: garbage from the start; 1: a genuine connect, then mutated requests; 2: re-attach attempts; 3: mixed.
  if (style === 1 || style === 3) {
    c.send({ t: 'connect', v: 1, timeoutMs: 2000, lastZxid: 0n, auth: [] } as PeerMessage);
    sent++;
    await waitFor(() => connected || c.closed, 2000, 'connected').catch(() => undefined);
  } else if (style === 2) {
    c.send(f.connectMsg(known.length > 0 ? f.pick(known) : undefined) as PeerMessage);
    sent++;
  }
  let xid = 1;
  for (let i = 0; i < frames && !c.closed; i++) {
    // After a genuine connect, mostly requests (answered with errors or results); else anything.
    const r = style === 1 ? f.rnd() * 0.6 : f.rnd();
    let m: unknown;
    if (r < 0.6) m = f.request(f.rnd() < (style === 1 ? 0.995 : 0.85) ? xid++ : f.value());
    else if (r < 0.7) m = f.connectMsg(known.length > 0 ? f.pick(known) : undefined);
    else if (r < 0.8) m = { t: 'ping', ...(f.rnd() < 0.5 ? { x: f.value() } : {}) };
    else if (r < 0.9) m = { t: f.pick(['res', 'ev', 'connected', 'bye', 'expired', 'pong', 'refused', 'x'.repeat(f.int(300))]), xid: f.value(), v: f.value() };
    else m = f.value();
    if (m === null || typeof m !== 'object' || Array.isArray(m) || typeof (m as { t?: unknown }).t !== 'string') m = { t: String(f.int(100)), junk: m };
    try {
      c.send(m as PeerMessage);
    } catch {
      // unencodable on our side (e.g. NaN keys); not the member's problem
    }
    sent++;
    if (i % 50 === 49) await sleep(0);
  }
  // Mostly wait for the answers (a few connections leave with requests in flight).
  if (f.rnd() < 0.8) {
    let before = -1;
    for (let i = 0; i < 50 && before !== answers && !c.closed; i++) {
      before = answers;
      await sleep(20);
    }
  }
  c.close();
  return { sent, answers };
}

describe('remote sessions: hostile client frames never crash a member (SPEC §4)', function () {
  this.timeout(90_000);
  let ens: TcpEnsemble;
  const log = recordingLogger();
  before(async () => {
    ens = await tcpEnsemble({ size: 3, logger: log });
  });
  after(async () => {
    await ens.stopAll();
  });

  it('a write with malformed ACL entries, sent to a follower: INVALIDACL there, and the follower keeps its link to the leader', async () => {
    // Once forwarded to the leader such a request could not be encoded, and the follower dropped
    // its connection to the leader (the fuzz below found it: a client could make members re-elect).
    // Sent raw: connect()'s own checks would refuse it before it left the client.
    const follower = ens.followers()[0]!;
    const changes: string[] = [];
    const onState = (st: string): void => {
      changes.push(st);
    };
    follower.on('state', onState);
    const warned = log.warnings.length;
    const c = await connectTcpClient(ens.addresses.get(follower.id)!, { timeoutMs: 3000 });
    const answers = new Map<number, { e?: { code: string } }>();
    let connected = false;
    c.on('message', (m) => {
      const msg = m as unknown as { t: string; xid?: number; e?: { code: string } };
      if (msg.t === 'connected') connected = true;
      if (msg.t === 'res') answers.set(msg.xid!, msg);
    });
    try {
      c.send({ t: 'connect', v: 1, timeoutMs: 4000, lastZxid: 0n, auth: [] } as PeerMessage);
      await waitFor(() => connected, 3000, 'connected');
      const bad = [[null], [{ perms: 'all', scheme: 'world', id: 'anyone' }], [{ perms: 31, scheme: 7, id: 'anyone' }], [{ perms: 31, scheme: 'world' }], [5]];
      let xid = 0;
      for (const acl of bad) {
        const create = { type: 'create', path: '/malformed-acl', data: new Uint8Array(0), acl, mode: 0, ttl: 0 };
        c.send({ t: 'req', xid: ++xid, op: 'write', req: create } as unknown as PeerMessage);
        c.send({ t: 'req', xid: ++xid, op: 'write', req: { type: 'multi', ops: [create] } } as unknown as PeerMessage);
      }
      await waitFor(() => answers.size === xid, 5000, 'every answer');
      for (const [id, a] of answers) assert.equal(a.e?.code, 'INVALIDACL', `request ${id}`);
      const s = await follower.session();
      await s.create('/after-malformed', 'ok');
      assert.equal(await s.exists('/malformed-acl'), null);
      await s.close();
      assert.deepEqual(changes, [], 'the follower never lost its leader');
      assert.deepEqual(log.warnings.slice(warned).filter((w) => /cannot send/.test(w)), []);
    } finally {
      follower.off('state', onState);
      c.close();
    }
  });

  it('a few thousand random and mutated messages, then the ensemble still serves and agrees', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const f = new Fuzz(seed);
    const known: { sessionId: bigint; password: Uint8Array }[] = [];
    const legit = await connect(ens.all(), { sessionTimeoutMs: 4000 });
    await legit.create('/fz', '');
    let sent = 0;
    let answers = 0;
    const t0 = Date.now();
    const workers = Array.from({ length: 6 }, async () => {
      for (let k = 0; k < 12; k++) {
        const r = await fuzzConnection(f.pick(ens.all()), f, 10 + f.int(120), known);
        sent += r.sent;
        answers += r.answers;
      }
    });
    await Promise.all(workers);
    const report = { seed, sent, answers, knownSessions: known.length, ms: Date.now() - t0, warnings: log.warnings.length };
    if (process.env.CONCLAVE_REMOTE_TIMINGS) console.log(`      ${JSON.stringify(report)}`);
    if (process.env.FUZZ_DEBUG) console.log([...new Set(log.warnings.map((w) => w.slice(0, 90)))].join("\n"));
    assert.ok(sent >= 2000, `only ${sent} messages sent (seed ${seed})`);
    // How many answers arrive before each connection closes depends on load; 100 shows the fuzz got past the connect.
    assert.ok(answers >= 100, `only ${answers} requests were answered: the fuzz hardly got past the connect (seed ${seed})`);
    assert.deepEqual(log.errors, [], `members logged internal errors (seed ${seed})`);
    assert.ok(log.warnings.some((w) => /client protocol error/.test(w)), 'protocol errors are logged');
    for (const m of ens.members.values()) assert.ok(m!.serving, `member ${m!.id} serves (seed ${seed})`);
    // The legitimate session was not disturbed; a new one works end to end.
    assert.equal(legit.state, 'CONNECTED');
    const fresh = await connect(ens.all(), { sessionTimeoutMs: 3000 });
    // (outside /fz: the fuzz may well have deleted /fz with a valid request)
    await fresh.create('/legit-after', 'ok', { mode: CreateMode.EPHEMERAL });
    let fired = false;
    await legit.exists('/legit-after', { watch: () => (fired = true) });
    await fresh.delete('/legit-after');
    await legit.sync();
    assert.ok(fired);
    await fresh.close();
    await legit.close();
    // Replicas agree once they have applied everything.
    const last = ens.leader().lastZxid;
    for (const m of ens.members.values()) await waitFor(() => m!.lastZxid >= last, 5000, `member ${m!.id} to catch up`);
    const digests = new Set([...ens.members.values()].map((m) => m!.tree.digest()));
    assert.equal(digests.size, 1, `replicas differ (seed ${seed})`);
  });
});
