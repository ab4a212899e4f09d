/**
 * A 3-process ensemble on loopback, LevelDB with fsync on, over TCP and over libp2p — and, in the
 * same run, Apache ZooKeeper 3.8 (3 servers on loopback, forceSync=yes) driven by
 * node-zookeeper-client with the same workloads where they apply (issue 5).
 *
 *   npm run bench:cluster [-- --quick] [--with-zookeeper] [--skip-zookeeper] [--skip-libp2p] [--trials N]
 *
 * conclave: each member is its own OS process (test/cluster/memberProcess.ts); the load runs inside
 * the member processes, on a session local to them (the embedded use), driven by IPC commands:
 * create / setData / getData with 1 and 256 concurrent callers on the leader and on a follower.
 * Failover: kill -9 of the leader's PID → first write committed on a survivor's session (≥ 10
 * trials, the killed member restarted on its directory between trials). Remote sessions: a
 * separate client process with connect() (benchmarks/clusterClient.ts), when src/index.ts has it.
 * ZooKeeper: the Debian package (`apt-get install zookeeper`; with --with-zookeeper this script
 * installs it when missing, otherwise that part is skipped with a note), java started on the
 * packaged classpath, stopped by PID. Clients: 1, 16 and 256 callers pipelined over up to 16
 * connections to the leader or to a follower; failover after kill -9 of the ZooKeeper leader.
 *
 * JSON on stdout and in benchmarks/results/cluster.json; progress on stderr. Every load loop is
 * bounded in op count and in time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  agreedLeader, freePorts, killAll, libp2pIdentities, spawnMember, waitFor,
  type MemberProcess, type MemberProcessConfig,
} from '../test/cluster/harness.js';
import { distribution, measure, report, type Measurement } from './lib.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'with-zookeeper': { type: 'boolean', default: false },
    'skip-zookeeper': { type: 'boolean', default: false },
    'skip-libp2p': { type: 'boolean', default: false },
    'skip-conclave': { type: 'boolean', default: false },
    trials: { type: 'string' },
  },
});
const quick = args.quick!;
const WRITES = quick ? 3_000 : 40_000;
const READS = quick ? 30_000 : 500_000;
const MAX_MS = quick ? 2_000 : 6_000;
const TRIALS = Number(args.trials ?? (quick ? 3 : 10));
const WARMUP = quick ? 1_000 : 5_000;
const CONCURRENCY = [1, 256];
const ZK_CONCURRENCY = [1, 16, 256];
const ZK_JAR = '/usr/share/java/zookeeper.jar';

const progress = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.timeOrigin + performance.now();

// ------------------------------------------------------------------ conclave

async function memberConfigs(kind: 'tcp' | 'libp2p', root: string): Promise<MemberProcessConfig[]> {
  const ports = await freePorts(3);
  const ids = [1, 2, 3];
  const common = { sessionTimeoutMs: 10_000, forceSync: true, logLevel: 'error' as const };
  if (kind === 'tcp') {
    const ensemble = Object.fromEntries(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
    return ids.map((id) => ({ id, ensemble, transport: 'tcp', secret: 'bench-cluster-secret-0123456789', dir: join(root, `m${id}`), ...common }));
  }
  const keys = await libp2pIdentities(3);
  const ensemble = Object.fromEntries(ids.map((id, i) => [id, `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${keys[i]!.peerId}`]));
  return ids.map((id, i) => ({ id, ensemble, transport: 'libp2p', peerKey: keys[i]!.key, listen: `/ip4/127.0.0.1/tcp/${ports[i]}`, dir: join(root, `m${id}`), ...common }));
}

async function inMember(m: MemberProcess, a: Record<string, unknown>): Promise<Measurement> {
  const r = await m.call<Measurement>('bench', { ...a, maxMs: MAX_MS }, MAX_MS + 120_000);
  progress(`  ${r.name} ×${r.concurrency}: ${r.opsPerSec.toLocaleString('en')} ops/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (${r.ops} ops${r.errors ? `, ${r.errors} errors` : ''})`);
  return r;
}

async function conclaveThroughput(kind: string, members: MemberProcess[]): Promise<Measurement[]> {
  const out: Measurement[] = [];
  const leader = await agreedLeader(members, 30_000);
  const follower = members.find((m) => m !== leader)!;
  for (const [role, m] of [['leader', leader], ['follower', follower]] as const) {
    // Warm-up (JIT, connections, LevelDB files), not reported; ZooKeeper gets the same.
    const warm = await m.call<Measurement>('bench', { op: 'create', dir: `/warmup-${kind}-${role}`, concurrency: 64, ops: WARMUP, maxMs: MAX_MS }, MAX_MS + 60_000);
    await m.call('bench', { op: 'getData', dir: `/warmup-${kind}-${role}`, concurrency: 64, ops: 10 * WARMUP, existing: warm.ops, maxMs: MAX_MS }, MAX_MS + 60_000);
    for (const c of CONCURRENCY) {
      const dir = `/bench-${kind}-${role}-c${c}`;
      const w = await inMember(m, { op: 'create', dir, concurrency: c, ops: WRITES, name: `${kind} create on ${role}` });
      out.push(w);
      out.push(await inMember(m, { op: 'setData', dir, concurrency: c, ops: WRITES, existing: w.ops, name: `${kind} setData on ${role}` }));
      out.push(await inMember(m, { op: 'getData', dir, concurrency: c, ops: READS, existing: w.ops, name: `${kind} getData (local read) on ${role}` }));
    }
  }
  return out;
}

async function conclaveFailover(kind: string, members: MemberProcess[]): Promise<{ ms: number[]; trials: Record<string, unknown>[] }> {
  const ms: number[] = [];
  const trials: Record<string, unknown>[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const leader = await agreedLeader(members, 30_000);
    const survivor = members.find((m) => m !== leader)!;
    await survivor.call('session');
    await sleep(300);
    const t0 = now();
    await leader.kill9();
    const r = await survivor.call<{ ms: number; attempts: number }>('firstWrite', { t0, path: `/failover-${kind}-${t}`, limitMs: 30_000 }, 40_000);
    ms.push(r.ms);
    const newLeader = (await survivor.status()).leaderId;
    trials.push({ killedLeader: leader.id, writeOn: survivor.id, newLeader, ms: r.ms, attempts: r.attempts });
    progress(`  ${kind} failover trial ${t + 1}/${TRIALS}: killed leader ${leader.id} (pid ${leader.pid}); first write committed on member ${survivor.id} after ${r.ms.toFixed(1)} ms (new leader ${newLeader})`);
    const restarted = await spawnMember(leader.config);
    members[members.indexOf(leader)] = restarted;
    await restarted.call('ready', { timeoutMs: 60_000 }, 65_000);
    await agreedLeader(members, 30_000);
    await sleep(500);
  }
  return { ms, trials };
}

async function remoteSessions(members: MemberProcess[]): Promise<Record<string, unknown>> {
  const index = (await import('../src/index.js')) as Record<string, unknown>;
  if (typeof index.connect !== 'function') return { skipped: 'connect() is not in src/index.ts yet' };
  const addresses = members.map((m) => m.config.ensemble[m.id] as string);
  const script = fileURLToPath(new URL('./clusterClient.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, CONCLAVE_BENCH_CLIENT: JSON.stringify({ addresses, tag: 'tcp', writes: WRITES, reads: READS, maxMs: MAX_MS, concurrency: CONCURRENCY }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const limit = setTimeout(() => child.kill('SIGKILL'), 20 * MAX_MS + 120_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(limit);
  if (code !== 0) return { error: `client process exited with ${code}`, output: out.slice(-2000) };
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

async function conclave(kind: 'tcp' | 'libp2p'): Promise<Record<string, unknown>> {
  progress(`conclave: 3 member processes over ${kind}, LevelDB (fsync on)`);
  const root = mkdtempSync(join(os.tmpdir(), `conclave-bench-cluster-${kind}-`));
  try {
    const cfgs = await memberConfigs(kind, root);
    const members = await Promise.all(cfgs.map((c) => spawnMember(c)));
    const throughput = await conclaveThroughput(kind, members);
    const remote = kind === 'tcp' ? await remoteSessions(members) : undefined;
    const failover = await conclaveFailover(kind, members);
    await Promise.all(members.map((m) => m.stop()));
    return { throughput, ...(remote ? { remoteSessions: remote } : {}), failoverMs: distribution(failover.ms), failoverTrials: failover.trials };
  } finally {
    await killAll();
    rmSync(root, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ Apache ZooKeeper 3.8

interface ZkStat { version: number }
interface ZkClient {
  connect(): void;
  close(): void;
  once(event: 'connected' | 'disconnected' | 'expired', cb: () => void): void;
  create(path: string, data: Buffer | null, mode: number, cb: (e: Error | null, path?: string) => void): void;
  setData(path: string, data: Buffer, version: number, cb: (e: Error | null, stat?: ZkStat) => void): void;
  getData(path: string, cb: (e: Error | null, data?: Buffer, stat?: ZkStat) => void): void;
}
interface ZkModule {
  createClient(connect: string, options: { sessionTimeout?: number; spinDelay?: number; retries?: number }): ZkClient;
  CreateMode: { PERSISTENT: number };
}
const zookeeper = createRequire(import.meta.url)('node-zookeeper-client') as ZkModule;

const zkCall = <T>(f: (cb: (e: Error | null, v?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => f((e, v) => (e ? reject(e) : resolve(v as T))));

async function zkOpen(connect: string, timeoutMs = 20_000): Promise<ZkClient> {
  const c = zookeeper.createClient(connect, { sessionTimeout: 10_000, spinDelay: 10, retries: 0 });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      c.close();
      reject(new Error(`ZooKeeper client could not connect to ${connect} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.once('connected', () => {
      clearTimeout(t);
      resolve();
    });
    c.connect();
  });
  return c;
}

interface ZkServer {
  id: number;
  clientPort: number;
  cfg: string;
  log: string;
  proc: ChildProcess | undefined;
}

const zkProcs = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of zkProcs) p.kill('SIGKILL');
});

function zkStart(s: ZkServer): void {
  const out = openSync(s.log, 'a');
  const p = spawn('java', [
    '-Xms256m', '-Xmx1g', '-cp', `/etc/zookeeper/conf:${ZK_JAR}`,
    '-Dzookeeper.log.dir=' + join(s.log, '..'), '-Dzookeeper.root.logger=WARN,CONSOLE', '-Dzookeeper.admin.enableServer=false',
    'org.apache.zookeeper.server.quorum.QuorumPeerMain', s.cfg,
  ], { stdio: ['ignore', out, out] });
  zkProcs.add(p);
  p.once('exit', () => zkProcs.delete(p));
  s.proc = p;
}

async function zkKill(s: ZkServer, signal: NodeJS.Signals): Promise<void> {
  const p = s.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  process.kill(p.pid!, signal);
  const hard = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(hard);
}

/** The four-letter word `srvr` → "leader" | "follower" | undefined (not serving). */
function zkMode(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    const done = (v: string | undefined): void => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1000, () => done(undefined));
    sock.on('error', () => done(undefined));
    sock.on('connect', () => sock.write('srvr'));
    sock.on('data', (d) => {
      text += d.toString();
    });
    sock.on('end', () => done(/Mode: (\w+)/.exec(text)?.[1]));
  });
}

async function zkQuorum(servers: ZkServer[], timeoutMs = 60_000): Promise<{ leader: ZkServer; followers: ZkServer[] }> {
  return waitFor(async () => {
    const modes = await Promise.all(servers.map((s) => zkMode(s.clientPort)));
    const li = modes.indexOf('leader');
    if (li < 0 || modes.filter((m) => m === 'follower').length !== servers.length - 1) return undefined;
    return { leader: servers[li]!, followers: servers.filter((_, i) => i !== li) };
  }, timeoutMs, 'a ZooKeeper leader and two followers', 100);
}

async function zkWorkloads(role: string, server: ZkServer): Promise<Measurement[]> {
  const out: Measurement[] = [];
  const clients = await Promise.all(Array.from({ length: 16 }, () => zkOpen(`127.0.0.1:${server.clientPort}`)));
  const payload = Buffer.alloc(100, 120);
  try {
    // Warm-up (JIT, connections), not reported; conclave gets the same.
    const wdir = `/zkwarmup-${role}`;
    await zkCall<string>((cb) => clients[0]!.create(wdir, null, zookeeper.CreateMode.PERSISTENT, cb));
    const warm = await measure(`zookeeper warm-up create on ${role}`, 64, WARMUP, MAX_MS, (wk, i) => zkCall<string>((cb) => clients[wk % 16]!.create(`${wdir}/n${i}`, payload, zookeeper.CreateMode.PERSISTENT, cb)));
    await measure(`zookeeper warm-up getData on ${role}`, 64, 10 * WARMUP, MAX_MS, (wk, i) => zkCall<Buffer>((cb) => clients[wk % 16]!.getData(`${wdir}/n${i % Math.max(1, warm.ops)}`, cb)));
    for (const c of ZK_CONCURRENCY) {
      const conns = Math.min(c, clients.length);
      const on = (w: number): ZkClient => clients[w % conns]!;
      const dir = `/zkbench-${role}-c${c}`;
      await zkCall<string>((cb) => clients[0]!.create(dir, null, zookeeper.CreateMode.PERSISTENT, cb));
      const w = await measure(`zookeeper create on ${role} (${conns} connections)`, c, WRITES, MAX_MS, (wk, i) => zkCall<string>((cb) => on(wk).create(`${dir}/n${i}`, payload, zookeeper.CreateMode.PERSISTENT, cb)));
      out.push(w);
      const existing = Math.max(1, w.ops);
      out.push(await measure(`zookeeper setData on ${role} (${conns} connections)`, c, WRITES, MAX_MS, (wk, i) => zkCall<ZkStat>((cb) => on(wk).setData(`${dir}/n${i % existing}`, payload, -1, cb))));
      out.push(await measure(`zookeeper getData on ${role} (${conns} connections)`, c, READS, MAX_MS, (wk, i) => zkCall<Buffer>((cb) => on(wk).getData(`${dir}/n${i % existing}`, cb))));
    }
  } finally {
    for (const c of clients) c.close();
  }
  return out;
}

async function zkFailover(servers: ZkServer[]): Promise<{ ms: number[]; trials: Record<string, unknown>[] }> {
  const ms: number[] = [];
  const trials: Record<string, unknown>[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const { leader, followers } = await zkQuorum(servers);
    // The client knows both survivors, as a real client's connection string would.
    const client = await zkOpen(followers.map((f) => `127.0.0.1:${f.clientPort}`).join(','));
    try {
      await zkCall<string>((cb) => client.create(`/zkfail-${t}-warm`, null, zookeeper.CreateMode.PERSISTENT, cb));
      const t0 = now();
      await zkKill(leader, 'SIGKILL');
      let attempts = 0;
      for (;;) {
        attempts++;
        try {
          await Promise.race([
            zkCall<string>((cb) => client.create(`/zkfail-${t}-${attempts}`, null, zookeeper.CreateMode.PERSISTENT, cb)),
            sleep(2000).then(() => { throw new Error('attempt timed out'); }),
          ]);
          break;
        } catch {
          if (now() - t0 > 60_000) throw new Error('ZooKeeper committed no write within 60 s of the leader kill');
          await sleep(1);
        }
      }
      const took = Math.round((now() - t0) * 1000) / 1000;
      ms.push(took);
      trials.push({ killedLeader: leader.id, ms: took, attempts });
      progress(`  zookeeper failover trial ${t + 1}/${TRIALS}: killed leader ${leader.id} (pid ${leader.proc?.pid}); first write committed after ${took.toFixed(1)} ms`);
    } finally {
      client.close();
    }
    zkStart(leader);
    await zkQuorum(servers);
    await sleep(500);
  }
  return { ms, trials };
}

function ensureZooKeeper(): string | undefined {
  if (existsSync(ZK_JAR)) return undefined;
  if (!args['with-zookeeper']) {
    return `Apache ZooKeeper is not installed (${ZK_JAR} missing): run with --with-zookeeper to have this benchmark apt-get install it, or apt-get install -y zookeeper`;
  }
  progress('installing Apache ZooKeeper (apt-get install -y zookeeper)…');
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'zookeeper'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  } catch (e) {
    return `installing zookeeper failed: ${(e as Error).message}`;
  }
  return existsSync(ZK_JAR) ? undefined : `zookeeper installed, but ${ZK_JAR} is missing`;
}

async function zooKeeper(): Promise<Record<string, unknown>> {
  const missing = ensureZooKeeper();
  if (missing) {
    progress(`zookeeper: skipped — ${missing}`);
    return { skipped: missing };
  }
  const version = (() => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'zookeeper'], { encoding: 'utf8' });
    } catch {
      return 'unknown';
    }
  })();
  progress(`zookeeper ${version}: 3 servers on loopback, forceSync=yes`);
  const root = mkdtempSync(join(os.tmpdir(), 'conclave-bench-zk-'));
  const ports = await freePorts(9);
  const servers: ZkServer[] = [1, 2, 3].map((id) => ({ id, clientPort: ports[id - 1]!, cfg: join(root, `zk${id}`, 'zoo.cfg'), log: join(root, `zk${id}`, 'server.log'), proc: undefined }));
  const serverLines = [1, 2, 3].map((id) => `server.${id}=127.0.0.1:${ports[2 + id]}:${ports[5 + id]}`);
  for (const s of servers) {
    const dir = join(root, `zk${s.id}`);
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'data', 'myid'), `${s.id}\n`);
    writeFileSync(s.cfg, [
      'tickTime=2000', 'initLimit=10', 'syncLimit=5', `dataDir=${join(dir, 'data')}`, `clientPort=${s.clientPort}`, 'clientPortAddress=127.0.0.1',
      'forceSync=yes', 'maxClientCnxns=0', 'admin.enableServer=false', '4lw.commands.whitelist=srvr,ruok,mntr', 'autopurge.snapRetainCount=3', ...serverLines, '',
    ].join('\n'));
  }
  try {
    for (const s of servers) zkStart(s);
    const { leader, followers } = await zkQuorum(servers, 90_000);
    progress(`  zookeeper quorum: leader server ${leader.id}`);
    const throughput = [...(await zkWorkloads('leader', leader)), ...(await zkWorkloads('follower', followers[0]!))];
    const failover = await zkFailover(servers);
    return { version, config: 'tickTime=2000 initLimit=10 syncLimit=5 forceSync=yes (Debian package defaults, fsync on)', throughput, failoverMs: distribution(failover.ms), failoverTrials: failover.trials };
  } finally {
    await Promise.all(servers.map((s) => zkKill(s, 'SIGTERM')));
    rmSync(root, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ comparison

type Row = { name: string; concurrency: number; opsPerSec: number; p50Ms: number; p99Ms: number };
function find(list: unknown, re: RegExp, c: number): Row | undefined {
  return Array.isArray(list) ? (list as Row[]).find((m) => re.test(m.name) && m.concurrency === c) : undefined;
}
function best(list: unknown, re: RegExp): Row | undefined {
  if (!Array.isArray(list)) return undefined;
  return (list as Row[]).filter((m) => re.test(m.name)).sort((a, b) => b.opsPerSec - a.opsPerSec)[0];
}

function targets(tcp: Record<string, unknown> | undefined, zk: Record<string, unknown> | undefined): Record<string, unknown>[] {
  const ours = tcp?.throughput;
  const theirs = zk?.throughput;
  const rows: Record<string, unknown>[] = [];
  for (const op of ['create', 'setData']) {
    const o = best(ours, new RegExp(`^tcp ${op} on`));
    const z = best(theirs, new RegExp(`^zookeeper ${op} on`));
    rows.push({
      target: `durable ${op}/s on the 3-process TCP ensemble ≥ 2× ZooKeeper's (best of leader/follower, any concurrency)`,
      conclave: o ? `${o.opsPerSec} (${o.name} ×${o.concurrency})` : null, zookeeper: z ? `${z.opsPerSec} (${z.name} ×${z.concurrency})` : null,
      ratio: o && z ? Math.round((o.opsPerSec / z.opsPerSec) * 100) / 100 : null, met: o && z ? o.opsPerSec >= 2 * z.opsPerSec : null,
    });
  }
  for (const role of ['leader', 'follower']) {
    const o = find(ours, new RegExp(`^tcp create on ${role}`), 1);
    const z = find(theirs, new RegExp(`^zookeeper create on ${role}`), 1);
    rows.push({
      target: `p99 sequential write (create ×1) latency on the ${role} ≤ ZooKeeper's`,
      conclave: o ? { p50Ms: o.p50Ms, p99Ms: o.p99Ms } : null, zookeeper: z ? { p50Ms: z.p50Ms, p99Ms: z.p99Ms } : null, met: o && z ? o.p99Ms <= z.p99Ms : null,
    });
  }
  const f = tcp?.failoverMs as { p50: number; p90: number; max: number } | undefined;
  const zf = zk?.failoverMs as { p50: number; p90: number; max: number } | undefined;
  rows.push({ target: 'failover after kill -9 of the leader → first committed write ≤ 300 ms', conclave: f ?? null, zookeeper: zf ?? null, met: f ? f.max <= 300 : null });
  const remote = (tcp?.remoteSessions as { results?: unknown } | undefined)?.results;
  const r = best(remote, /^remote session getData/);
  const zr = best(theirs, /^zookeeper getData on/);
  rows.push({
    target: "remote-session reads/s ≥ ZooKeeper's getData/s",
    conclave: r ? `${r.opsPerSec} (×${r.concurrency})` : (tcp?.remoteSessions as Record<string, unknown> | undefined) ?? null,
    zookeeper: zr ? `${zr.opsPerSec} (${zr.name} ×${zr.concurrency})` : null, met: r && zr ? r.opsPerSec >= zr.opsPerSec : null,
  });
  return rows;
}

// ------------------------------------------------------------------ main

const result: Record<string, unknown> = {
  setup: {
    conclave: '3 member processes on 127.0.0.1, each with LevelDB (forceSync: true), default tickMs 100; load runs inside the member processes on a local session (IPC-driven), 100-byte values',
    zookeeper: '3 servers on 127.0.0.1 (QuorumPeerMain from the Debian package), forceSync=yes; node-zookeeper-client in the benchmark process, 1/16/256 callers over up to 16 connections to one server, 100-byte values',
    writes: WRITES, reads: READS, maxMsPerMeasurement: MAX_MS, failoverTrials: TRIALS, quick,
  },
};
let tcp: Record<string, unknown> | undefined;
let zk: Record<string, unknown> | undefined;
try {
  if (!args['skip-conclave']) {
    tcp = await conclave('tcp');
    result.conclaveTcp = tcp;
    if (!args['skip-libp2p']) result.conclaveLibp2p = await conclave('libp2p');
  }
  zk = args['skip-zookeeper'] ? { skipped: '--skip-zookeeper' } : await zooKeeper();
  result.zookeeper = zk;
  result.targets = targets(tcp, zk);
  report('cluster', result);
} finally {
  await killAll();
  for (const p of zkProcs) p.kill('SIGKILL');
}
process.exit(0);
