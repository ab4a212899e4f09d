/**
 * A 3-process ensemble on loopback, LevelDB with fsync on, over TCP and over libp2p — and, in the
 * same run, Apache ZooKeeper 3.8 (3 servers on loopback, forceSync=yes) driven by
 * node-zookeeper-client with the same workloads where they apply (issue 5).
 *
 *   npm run bench:cluster [-- --quick] [--with-zookeeper] [--skip-zookeeper] [--skip-libp2p] [--trials N] [--from-source]
 *
 * conclave runs as an application gets it: the compiled package (dist/, built here first with
 * `tsc -p tsconfig.build.json`). --from-source runs the TypeScript sources through tsx instead,
 * whose transform names every named closure at run time (a defineProperty each: measurably
 * slower on the write path).
 *
 * conclave: each member is its own OS process (test/cluster/memberProcess.ts); the load runs inside
 * the member processes, on a session local to them (the embedded use), driven by IPC commands:
 * create / setData / getData with 1, 16 and 256 concurrent callers on the leader and on a follower.
 * Failover: kill -9 of the leader's PID → first write committed on a survivor's session (≥ 10
 * trials, the killed member restarted on its directory between trials). Remote sessions: a
 * separate client process with connect() (benchmarks/clusterClient.ts), when src/index.ts has it.
 *
 * ZooKeeper: the Debian package (`apt-get install zookeeper`; with --with-zookeeper this script
 * installs it when missing, otherwise that part is skipped with a note), java on the packaged
 * classpath, stopped by PID. Clients: 1, 16 and 256 callers pipelined over up to 16 connections to
 * the leader or to a follower; failover after kill -9 of the ZooKeeper leader, the client knowing
 * both survivors.
 *
 * Both ensembles run at the same time and every workload is measured on conclave and then at once
 * on ZooKeeper (failover trials alternate too), so that the load of a shared machine hits both
 * alike. Each measurement also reports the CPU the three server processes used per operation
 * (conclave's includes the callers, which run inside the member; ZooKeeper's client runs here).
 *
 * JSON on stdout and in benchmarks/results/cluster.json; progress on stderr. Every load loop is
 * bounded in op count and in time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    trials: { type: 'string' },
    'from-source': { type: 'boolean', default: false },
  },
});
const FROM_SOURCE = args['from-source']!;
const quick = args.quick!;
const WRITES = quick ? 3_000 : 40_000;
const READS = quick ? 30_000 : 500_000;
const MAX_MS = quick ? 2_000 : 6_000;
const TRIALS = Math.max(1, Number(args.trials ?? (quick ? 3 : 10)));
const WARMUP = quick ? 1_000 : 5_000;
const CONCURRENCY = [1, 16, 256];
const ZK_JAR = '/usr/share/java/zookeeper.jar';
const ZK_CONNECTIONS = 16;

const progress = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.timeOrigin + performance.now();

type Row = Measurement & { system: string; op: string; role: string; cpuUsPerOp?: number; leaderTxnsPerFsync?: number; settledMs?: number | null };

function show(r: Row): Row {
  const extra = [r.cpuUsPerOp !== undefined ? `${r.cpuUsPerOp} µs CPU/op` : '', r.leaderTxnsPerFsync !== undefined ? `${r.leaderTxnsPerFsync} txns/fsync on the leader` : ''].filter(Boolean).join(', ');
  progress(`  ${r.name} ×${r.concurrency}: ${r.opsPerSec.toLocaleString('en')} ops/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (${r.ops} ops${r.errors ? `, ${r.errors} errors: ${Object.entries(r.errorCodes ?? {}).map(([k, v]) => `${v} ${k}`).join(', ')}` : ''}${extra ? `; ${extra}` : ''})`);
  return r;
}

// ------------------------------------------------------------------ conclave

interface MemberStats { cpu: { user: number; system: number }; fsyncBatches: number; fsyncTxns: number }

class Conclave {
  members: MemberProcess[] = [];
  private root = '';
  constructor(readonly kind: 'tcp' | 'libp2p') {}

  async start(): Promise<void> {
    this.root = mkdtempSync(join(os.tmpdir(), `conclave-bench-cluster-${this.kind}-`));
    const ports = await freePorts(3);
    const ids = [1, 2, 3];
    const common = { sessionTimeoutMs: 10_000, forceSync: true, logLevel: 'error' as const, dir: '' };
    let cfgs: MemberProcessConfig[];
    if (this.kind === 'tcp') {
      const ensemble = Object.fromEntries(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
      cfgs = ids.map((id) => ({ ...common, id, ensemble, transport: 'tcp', secret: 'bench-cluster-secret-0123456789', dir: join(this.root, `m${id}`) }));
    } else {
      const keys = await libp2pIdentities(3);
      const ensemble = Object.fromEntries(ids.map((id, i) => [id, `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${keys[i]!.peerId}`]));
      cfgs = ids.map((id, i) => ({ ...common, id, ensemble, transport: 'libp2p', peerKey: keys[i]!.key, listen: `/ip4/127.0.0.1/tcp/${ports[i]}`, dir: join(this.root, `m${id}`) }));
    }
    this.members = await Promise.all(cfgs.map((c) => spawnMember(c)));
    await agreedLeader(this.members, 30_000);
  }

  async roles(): Promise<{ leader: MemberProcess; follower: MemberProcess }> {
    const leader = await agreedLeader(this.members, 30_000);
    return { leader, follower: this.members.find((m) => m !== leader)! };
  }

  private stats(): Promise<MemberStats[]> {
    return Promise.all(this.members.map((m) => m.call<MemberStats>('stats')));
  }

  async run(role: string, m: MemberProcess, leader: MemberProcess, a: { op: string; dir: string; concurrency: number; ops: number; existing?: number }, label = a.op): Promise<Row> {
    const before = await this.stats();
    const r = await m.call<Measurement>('bench', { ...a, maxMs: MAX_MS, name: `conclave/${this.kind} ${label} on ${role}` }, MAX_MS + 120_000);
    const after = await this.stats();
    const cpu = after.reduce((n, s, i) => n + s.cpu.user + s.cpu.system - before[i]!.cpu.user - before[i]!.cpu.system, 0);
    const li = this.members.indexOf(leader);
    const batches = after[li]!.fsyncBatches - before[li]!.fsyncBatches;
    const row: Row = { ...r, system: `conclave/${this.kind}`, op: a.op, role, cpuUsPerOp: Math.round(cpu / Math.max(1, r.ops)) };
    if (a.op !== 'getData' && batches > 0) row.leaderTxnsPerFsync = Math.round(((after[li]!.fsyncTxns - before[li]!.fsyncTxns) / batches) * 10) / 10;
    return show(row);
  }

  async warmup(role: string, m: MemberProcess): Promise<void> {
    const dir = `/warmup-${this.kind}-${role}`;
    const w = await m.call<Measurement>('bench', { op: 'create', dir, concurrency: 64, ops: WARMUP, maxMs: MAX_MS }, MAX_MS + 60_000);
    await m.call('bench', { op: 'getData', dir, concurrency: 64, ops: 10 * WARMUP, existing: w.ops, maxMs: MAX_MS }, MAX_MS + 60_000);
  }

  /** kill -9 of the leader → first write committed on a survivor's local session; the killed member is restarted. */
  async failoverTrial(t: number): Promise<Record<string, unknown>> {
    const { leader, follower: survivor } = await this.roles();
    await survivor.call('session');
    await sleep(300);
    const t0 = now();
    await leader.kill9();
    const r = await survivor.call<{ ms: number; attempts: number }>('firstWrite', { t0, path: `/failover-${this.kind}-${t}`, limitMs: 30_000 }, 40_000);
    const newLeader = (await survivor.status()).leaderId;
    progress(`  conclave/${this.kind} failover trial ${t + 1}/${TRIALS}: killed leader ${leader.id} (pid ${leader.pid}); first write committed on member ${survivor.id} after ${r.ms.toFixed(1)} ms (new leader ${newLeader})`);
    const restarted = await spawnMember(leader.config);
    this.members[this.members.indexOf(leader)] = restarted;
    await restarted.call('ready', { timeoutMs: 60_000 }, 65_000);
    await agreedLeader(this.members, 30_000);
    await sleep(500);
    return { killedLeader: leader.id, writeOn: survivor.id, newLeader, ms: r.ms, attempts: r.attempts };
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    await killAll();
    if (this.root) rmSync(this.root, { recursive: true, force: true });
  }
}

async function remoteSessions(c: Conclave): Promise<Record<string, unknown>> {
  const index = (await import('../src/index.js')) as Record<string, unknown>;
  if (typeof index.connect !== 'function') return { skipped: 'connect() is not in src/index.ts yet' };
  const addresses = c.members.map((m) => m.config.ensemble[m.id] as string);
  const script = fileURLToPath(new URL('./clusterClient.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, CONCLAVE_BENCH_CLIENT: JSON.stringify({ addresses, tag: 'tcp', writes: WRITES, reads: READS, maxMs: MAX_MS, concurrency: CONCURRENCY }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const limit = setTimeout(() => child.kill('SIGKILL'), 30 * MAX_MS + 120_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (x) => r(x)));
  clearTimeout(limit);
  if (code !== 0) return { error: `client process exited with ${code}`, output: out.slice(-2000) };
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
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
  // spinDelay 10 ms: the client retries a lost server quickly (its default, 1 s, would dominate failover).
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

/** utime + stime of a process in µs (from /proc; 0 when unreadable). */
function procCpuUs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // fields 14 and 15, in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

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

class ZooKeeper {
  servers: ZkServer[] = [];

  /** PIDs of the running servers. */
  pids(): number[] {
    return this.servers.flatMap((s) => (s.proc?.pid ? [s.proc.pid] : []));
  }
  version = 'unknown';
  private root = '';
  private clients = new Map<ZkServer, ZkClient[]>();

  async start(): Promise<void> {
    try {
      this.version = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'zookeeper'], { encoding: 'utf8' });
    } catch {
      // not from the Debian package
    }
    this.root = mkdtempSync(join(os.tmpdir(), 'conclave-bench-zk-'));
    const ports = await freePorts(9);
    this.servers = [1, 2, 3].map((id) => ({ id, clientPort: ports[id - 1]!, cfg: join(this.root, `zk${id}`, 'zoo.cfg'), log: join(this.root, `zk${id}`, 'server.log'), proc: undefined }));
    const serverLines = [1, 2, 3].map((id) => `server.${id}=127.0.0.1:${ports[2 + id]}:${ports[5 + id]}`);
    for (const s of this.servers) {
      const dir = join(this.root, `zk${s.id}`);
      mkdirSync(join(dir, 'data'), { recursive: true });
      writeFileSync(join(dir, 'data', 'myid'), `${s.id}\n`);
      writeFileSync(s.cfg, [
        'tickTime=2000', 'initLimit=10', 'syncLimit=5', `dataDir=${join(dir, 'data')}`, `clientPort=${s.clientPort}`, 'clientPortAddress=127.0.0.1',
        'forceSync=yes', 'maxClientCnxns=0', 'admin.enableServer=false', '4lw.commands.whitelist=srvr,ruok,mntr', 'autopurge.snapRetainCount=3', ...serverLines, '',
      ].join('\n'));
    }
    for (const s of this.servers) this.startServer(s);
    await this.quorum(90_000);
  }

  startServer(s: ZkServer): void {
    const out = openSync(s.log, 'a');
    const p = spawn('java', [
      '-Xms256m', '-Xmx1g', '-cp', `/etc/zookeeper/conf:${ZK_JAR}`,
      `-Dzookeeper.log.dir=${join(s.log, '..')}`, '-Dzookeeper.root.logger=WARN,CONSOLE', '-Dzookeeper.admin.enableServer=false',
      'org.apache.zookeeper.server.quorum.QuorumPeerMain', s.cfg,
    ], { stdio: ['ignore', out, out] });
    zkProcs.add(p);
    p.once('exit', () => zkProcs.delete(p));
    s.proc = p;
  }

  async kill(s: ZkServer, signal: NodeJS.Signals): Promise<void> {
    const p = s.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    process.kill(p.pid!, signal);
    const hard = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(hard);
  }

  async quorum(timeoutMs = 60_000): Promise<{ leader: ZkServer; follower: ZkServer; followers: ZkServer[] }> {
    return waitFor(async () => {
      const modes = await Promise.all(this.servers.map((s) => zkMode(s.clientPort)));
      const li = modes.indexOf('leader');
      if (li < 0 || modes.filter((m) => m === 'follower').length !== this.servers.length - 1) return undefined;
      const followers = this.servers.filter((_, i) => i !== li);
      return { leader: this.servers[li]!, follower: followers[0]!, followers };
    }, timeoutMs, 'a ZooKeeper leader and two followers', 100);
  }

  private async connections(s: ZkServer): Promise<ZkClient[]> {
    let list = this.clients.get(s);
    if (!list) {
      list = await Promise.all(Array.from({ length: ZK_CONNECTIONS }, () => zkOpen(`127.0.0.1:${s.clientPort}`)));
      this.clients.set(s, list);
    }
    return list;
  }

  async run(role: string, s: ZkServer, a: { op: string; dir: string; concurrency: number; ops: number; existing?: number }): Promise<Row> {
    const clients = await this.connections(s);
    const conns = Math.min(a.concurrency, clients.length);
    const on = (w: number): ZkClient => clients[w % conns]!;
    const payload = Buffer.alloc(100, 120);
    const existing = Math.max(1, a.existing ?? 1);
    if (a.op === 'create') await zkCall<string>((cb) => clients[0]!.create(a.dir, null, zookeeper.CreateMode.PERSISTENT, cb));
    const op = a.op === 'create'
      ? (w: number, i: number) => zkCall<string>((cb) => on(w).create(`${a.dir}/n${i}`, payload, zookeeper.CreateMode.PERSISTENT, cb))
      : a.op === 'setData'
        ? (w: number, i: number) => zkCall<ZkStat>((cb) => on(w).setData(`${a.dir}/n${i % existing}`, payload, -1, cb))
        : (w: number, i: number) => zkCall<Buffer>((cb) => on(w).getData(`${a.dir}/n${i % existing}`, cb));
    const cpu0 = this.servers.reduce((n, x) => n + procCpuUs(x.proc?.pid), 0);
    const r = await measure(`zookeeper ${a.op} on ${role} (${conns} connection${conns > 1 ? 's' : ''})`, a.concurrency, a.ops, MAX_MS, op);
    const cpu = this.servers.reduce((n, x) => n + procCpuUs(x.proc?.pid), 0) - cpu0;
    const row: Row = { ...r, system: 'zookeeper', op: a.op, role, cpuUsPerOp: Math.round(cpu / Math.max(1, r.ops)) };
    progress(`    (ZooKeeper servers: ${row.cpuUsPerOp} µs CPU/op)`);
    return row;
  }

  async warmup(role: string, s: ZkServer): Promise<void> {
    const w = await this.run(role, s, { op: 'create', dir: `/zkwarmup-${role}`, concurrency: 64, ops: WARMUP });
    await this.run(role, s, { op: 'getData', dir: `/zkwarmup-${role}`, concurrency: 64, ops: 10 * WARMUP, existing: w.ops });
  }

  closeClients(): void {
    for (const list of this.clients.values()) for (const c of list) c.close();
    this.clients.clear();
  }

  async failoverTrial(t: number): Promise<Record<string, unknown>> {
    this.closeClients();
    const { leader, followers } = await this.quorum();
    // The client knows both survivors, as a real client's connection string would.
    const client = await zkOpen(followers.map((f) => `127.0.0.1:${f.clientPort}`).join(','));
    let took: number;
    let attempts = 0;
    try {
      await zkCall<string>((cb) => client.create(`/zkfail-${t}-warm`, null, zookeeper.CreateMode.PERSISTENT, cb));
      const t0 = now();
      await this.kill(leader, 'SIGKILL');
      for (;;) {
        attempts++;
        try {
          await Promise.race([
            zkCall<string>((cb) => client.create(`/zkfail-${t}-${attempts}`, null, zookeeper.CreateMode.PERSISTENT, cb)),
            sleep(2000).then(() => {
              throw new Error('attempt timed out');
            }),
          ]);
          break;
        } catch {
          if (now() - t0 > 60_000) throw new Error('ZooKeeper committed no write within 60 s of the leader kill');
          await sleep(1);
        }
      }
      took = Math.round((now() - t0) * 1000) / 1000;
      progress(`  zookeeper failover trial ${t + 1}/${TRIALS}: killed leader ${leader.id} (pid ${leader.proc?.pid}); first write committed after ${took.toFixed(1)} ms`);
    } finally {
      client.close();
    }
    this.startServer(leader);
    await this.quorum();
    await sleep(500);
    return { killedLeader: leader.id, ms: took, attempts };
  }

  async stop(): Promise<void> {
    this.closeClients();
    await Promise.all(this.servers.map((s) => this.kill(s, 'SIGTERM')));
    if (this.root) rmSync(this.root, { recursive: true, force: true });
  }
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

// ------------------------------------------------------------------ the run

const SETTLE_WINDOW_MS = 1_000;
const SETTLE_MAX_MS = 20_000;
/** Share of one core that the six server processes together may use over a window and count as quiet. */
const SETTLE_QUIET = 0.05;

/**
 * Waits until the server processes of both systems are quiet — together under {@link SETTLE_QUIET} of
 * one core over {@link SETTLE_WINDOW_MS} — so that background work one measurement leaves behind
 * (a snapshot being written, LevelDB compaction, a JVM's or V8's GC, JIT) finishes before the next
 * measurement starts, whichever system that one is. Gives up after {@link SETTLE_MAX_MS}; returns
 * how long it waited and whether the processes went quiet.
 */
async function settle(pids: number[]): Promise<{ ms: number; quiet: boolean }> {
  const t0 = performance.now();
  const total = (): number => pids.reduce((n, pid) => n + procCpuUs(pid), 0);
  let before = total();
  for (;;) {
    await sleep(SETTLE_WINDOW_MS);
    const after = total();
    const ms = Math.round(performance.now() - t0);
    if (after - before <= SETTLE_QUIET * SETTLE_WINDOW_MS * 1000) return { ms, quiet: true };
    if (ms >= SETTLE_MAX_MS) return { ms, quiet: false };
    before = after;
  }
}

/**
 * Same workloads on both systems, interleaved: conclave, then ZooKeeper. Every measurement starts
 * once both ensembles are quiet ({@link settle}); the wait is in the row (`settledMs`).
 */
async function sideBySide(c: Conclave, zk: ZooKeeper | undefined): Promise<{ conclave: Row[]; zookeeper: Row[] }> {
  const ours: Row[] = [];
  const theirs: Row[] = [];
  const { leader, follower } = await c.roles();
  const zr = zk ? await zk.quorum() : undefined;
  const pids = [...c.members.map((m) => m.pid), ...(zk ? zk.pids() : [])];
  const settled = async <T extends Row>(measure: () => Promise<T>): Promise<T> => {
    const s = await settle(pids);
    if (!s.quiet) progress(`  (the servers did not go quiet within ${SETTLE_MAX_MS} ms; measuring anyway)`);
    const row = await measure();
    row.settledMs = s.quiet ? s.ms : null;
    return row;
  };
  for (const role of ['leader', 'follower'] as const) {
    const m = role === 'leader' ? leader : follower;
    const z = zr ? (role === 'leader' ? zr.leader : zr.follower) : undefined;
    progress(`${role}: warm-up`);
    await c.warmup(role, m);
    if (zk && z) await zk.warmup(role, z);
    for (const conc of CONCURRENCY) {
      const dir = `/bench-${role}-c${conc}`;
      const w = await settled(() => c.run(role, m, leader, { op: 'create', dir, concurrency: conc, ops: WRITES }));
      const zw = zk && z ? await settled(() => zk.run(role, z, { op: 'create', dir, concurrency: conc, ops: WRITES })) : undefined;
      ours.push(w);
      if (zw) theirs.push(zw);
      ours.push(await settled(() => c.run(role, m, leader, { op: 'setData', dir, concurrency: conc, ops: WRITES, existing: w.ops })));
      if (zk && z && zw) theirs.push(await settled(() => zk.run(role, z, { op: 'setData', dir, concurrency: conc, ops: WRITES, existing: zw.ops })));
      ours.push(await settled(() => c.run(role, m, leader, { op: 'getData', dir, concurrency: conc, ops: READS, existing: w.ops }, 'getData (local read)')));
      if (zk && z && zw) theirs.push(await settled(() => zk.run(role, z, { op: 'getData', dir, concurrency: conc, ops: READS, existing: zw.ops })));
    }
  }
  return { conclave: ours, zookeeper: theirs };
}

async function failovers(c: Conclave, zk: ZooKeeper | undefined): Promise<{ conclave: Record<string, unknown>[]; zookeeper: Record<string, unknown>[] }> {
  const ours: Record<string, unknown>[] = [];
  const theirs: Record<string, unknown>[] = [];
  for (let t = 0; t < TRIALS; t++) {
    ours.push(await c.failoverTrial(t));
    if (zk) theirs.push(await zk.failoverTrial(t));
  }
  return { conclave: ours, zookeeper: theirs };
}

function best(list: Row[] | undefined, op: string, role?: string, conc?: number): Row | undefined {
  return (list ?? []).filter((r) => r.op === op && (role === undefined || r.role === role) && (conc === undefined || r.concurrency === conc)).sort((a, b) => b.opsPerSec - a.opsPerSec)[0];
}

function targets(tcp: Row[] | undefined, zk: Row[] | undefined, fo: Record<string, unknown> | undefined, zfo: Record<string, unknown> | undefined, remote: Row[] | undefined): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const fmt = (r: Row | undefined): string | null => (r ? `${r.opsPerSec} ops/s (${r.role} ×${r.concurrency})` : null);
  for (const op of ['create', 'setData']) {
    const o = best(tcp, op);
    const z = best(zk, op);
    rows.push({
      target: `durable ${op}/s, 3-process TCP ensemble ≥ 2× ZooKeeper's (best of leader/follower and 1/16/256 callers)`,
      conclave: fmt(o), zookeeper: fmt(z), ratio: o && z ? Math.round((o.opsPerSec / z.opsPerSec) * 100) / 100 : null, met: o && z ? o.opsPerSec >= 2 * z.opsPerSec : null,
    });
  }
  for (const role of ['leader', 'follower']) {
    const o = best(tcp, 'create', role, 1);
    const z = best(zk, 'create', role, 1);
    rows.push({
      target: `p99 sequential write latency (create ×1 on the ${role}) ≤ ZooKeeper's`,
      conclave: o ? { p50Ms: o.p50Ms, p99Ms: o.p99Ms } : null, zookeeper: z ? { p50Ms: z.p50Ms, p99Ms: z.p99Ms } : null, met: o && z ? o.p99Ms <= z.p99Ms : null,
    });
  }
  const f = fo as { max: number } | undefined;
  rows.push({ target: 'failover (kill -9 of the leader → first committed write) ≤ 300 ms', conclave: fo ?? null, zookeeper: zfo ?? null, met: f ? f.max <= 300 : null });
  const r = (remote ?? []).filter((x) => /getData/.test(x.name)).sort((a, b) => b.opsPerSec - a.opsPerSec)[0];
  const zr = best(zk, 'getData');
  rows.push({
    target: "remote-session reads/s ≥ ZooKeeper's getData/s (best concurrency each)",
    conclave: r ? `${r.opsPerSec} ops/s (one session ×${r.concurrency})` : null, zookeeper: fmt(zr),
    ratio: r && zr ? Math.round((r.opsPerSec / zr.opsPerSec) * 100) / 100 : null, met: r && zr ? r.opsPerSec >= zr.opsPerSec : null,
  });
  return rows;
}

const result: Record<string, unknown> = {
  setup: {
    conclave: '3 member processes on 127.0.0.1, each with LevelDB (forceSync: true), default tickMs 100; the load runs inside the member processes on a local session (IPC-driven); 100-byte values',
    zookeeper: '3 servers on 127.0.0.1 (QuorumPeerMain from the Debian package, tickTime 2000), forceSync=yes; node-zookeeper-client in the benchmark process, 1/16/256 callers over up to 16 connections to one server; 100-byte values',
    interleaved: 'both ensembles run at once; each workload runs on conclave and then on ZooKeeper; failover trials alternate',
    settled: `each throughput measurement starts once the six server processes together used under ${SETTLE_QUIET * 100}% of one core over ${SETTLE_WINDOW_MS} ms (waiting at most ${SETTLE_MAX_MS} ms; the row's settledMs), so that background work one measurement leaves behind (snapshots, compaction, GC, JIT) does not land in the next one`,
    cpuUsPerOp: 'CPU (user+system) of the three server processes per operation; conclave\'s includes the callers (they run inside the member), ZooKeeper\'s does not include its client',
    code: FROM_SOURCE ? 'conclave from its TypeScript sources through tsx' : 'conclave as the compiled package (dist/, built by the benchmark with tsc)',
    writes: WRITES, reads: READS, maxMsPerMeasurement: MAX_MS, failoverTrials: TRIALS, quick,
  },
  loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
};

/** Builds dist/ and makes member processes (and the remote client) run on it (see the header). */
function useCompiledPackage(): void {
  if (FROM_SOURCE) return;
  const root = fileURLToPath(new URL('..', import.meta.url));
  progress('conclave: building the package (tsc -p tsconfig.build.json)');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  process.env.CONCLAVE_CLUSTER_DIST = '1';
}

async function main(): Promise<void> {
  useCompiledPackage();
  const missing = args['skip-zookeeper'] ? '--skip-zookeeper' : ensureZooKeeper();
  if (missing) progress(`zookeeper: skipped — ${missing}`);
  const tcp = new Conclave('tcp');
  const zk = missing ? undefined : new ZooKeeper();
  try {
    progress('conclave: 3 member processes over tcp, LevelDB (fsync on)');
    await tcp.start();
    if (zk) {
      progress('zookeeper: 3 servers on loopback, forceSync=yes');
      await zk.start();
      progress(`  zookeeper ${zk.version}: leader server ${(await zk.quorum()).leader.id}`);
    }
    const tput = await sideBySide(tcp, zk);
    progress('remote sessions (connect() from a separate process)');
    const remote = await remoteSessions(tcp);
    zk?.closeClients();
    progress('failover: kill -9 of the leader');
    const fo = await failovers(tcp, zk);
    const foMs = distribution(fo.conclave.map((t) => t.ms as number));
    const zfoMs = zk ? distribution(fo.zookeeper.map((t) => t.ms as number)) : undefined;
    result.conclaveTcp = { throughput: tput.conclave, remoteSessions: remote, failoverMs: foMs, failoverTrials: fo.conclave };
    result.zookeeper = zk
      ? { version: zk.version, config: 'tickTime=2000 initLimit=10 syncLimit=5 forceSync=yes (Debian defaults, fsync on)', throughput: tput.zookeeper, failoverMs: zfoMs, failoverTrials: fo.zookeeper }
      : { skipped: missing };
    result.targets = targets(tput.conclave, zk ? tput.zookeeper : undefined, foMs, zfoMs, (remote as { results?: Row[] }).results);
  } finally {
    await tcp.stop();
    await zk?.stop();
  }
  if (!args['skip-libp2p']) {
    const p2p = new Conclave('libp2p');
    try {
      progress('conclave: 3 member processes over libp2p, LevelDB (fsync on)');
      await p2p.start();
      const tput = await sideBySide(p2p, undefined);
      const fo: Record<string, unknown>[] = [];
      for (let t = 0; t < TRIALS; t++) fo.push(await p2p.failoverTrial(t));
      result.conclaveLibp2p = { throughput: tput.conclave, failoverMs: distribution(fo.map((t) => t.ms as number)), failoverTrials: fo };
    } catch (e) {
      progress(`libp2p part failed: ${(e as Error).stack}`);
      result.conclaveLibp2p = { error: (e as Error).message };
    } finally {
      await p2p.stop();
    }
  }
  result.loadAverageAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  report('cluster', result);
}

try {
  await main();
} finally {
  await killAll();
  for (const p of zkProcs) p.kill('SIGKILL');
}
process.exit(0);
