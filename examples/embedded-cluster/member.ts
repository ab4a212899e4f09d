/**
 * One process of the embedded cluster: a conclave member inside an ordinary Node.js program.
 * Three of these (ids 1, 2, 3) form an ensemble over TCP on 127.0.0.1 (or libp2p with
 * `--transport libp2p`), each durable in its own LevelDB directory. Each one
 *   - says who leads, and again whenever that changes;
 *   - takes part in a shared lock (/app/lock, the Mutex recipe: ephemeral-sequential nodes), holding
 *     it for a moment of "work" and passing it on;
 *   - watches a configuration value (/app/config) and prints every change;
 *   - changes the configuration when you type `config <value>` on its standard input.
 *
 *   npx tsx examples/embedded-cluster/member.ts --id 1 [--transport tcp|libp2p] [--data DIR] [--ports 7301,7302,7303]
 *
 * Stop it with Ctrl-C (a graceful stop: its session closes and its lock node goes at once), or
 * kill -9 it: the others carry on, and its lock node goes when its session expires.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generatePeerKey, libp2pTransport, peerIdFromKey, startMember, type Member, type Session } from '../../src/index.js';
import { Mutex } from '../../src/api/recipes/index.js';

const { values: args } = parseArgs({
  options: {
    id: { type: 'string' },
    transport: { type: 'string', default: 'tcp' },
    data: { type: 'string', default: join(os.tmpdir(), 'conclave-embedded-cluster') },
    ports: { type: 'string', default: '7301,7302,7303' },
    'hold-ms': { type: 'string', default: '2000' },
    'session-timeout-ms': { type: 'string', default: '3000' },
    /** Stop when standard input ends (run.ts sets it, so members never outlive it). */
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});

const id = Number(args.id);
const ports = args.ports!.split(',').map(Number);
const ids = [1, 2, 3];
if (![1, 2, 3].includes(id) || ports.length !== 3 || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
  console.error('usage: member.ts --id 1|2|3 [--transport tcp|libp2p] [--data DIR] [--ports P1,P2,P3]');
  process.exit(2);
}
const kind = args.transport === 'libp2p' ? 'libp2p' : 'tcp';
const holdMs = Number(args['hold-ms']);
const sessionTimeoutMs = Number(args['session-timeout-ms']);
const myDir = join(args.data!, `m${id}`);

const log = (msg: string): void => console.log(`${new Date().toISOString().slice(11, 23)} [m${id}] ${msg}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/**
 * libp2p: each member has a key of its own, generated once into its data directory. The others
 * allow-list it by its peer id; in this one-machine demo every process can read every member's
 * key file to learn the peer ids (on real machines you would hand out the peer ids instead).
 */
async function peerKeyOf(member: number): Promise<string> {
  const dir = join(args.data!, `m${member}`);
  const file = join(dir, 'peer.key');
  mkdirSync(dir, { recursive: true });
  try {
    return readFileSync(file, 'utf8');
  } catch {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(tmp, await generatePeerKey(), { mode: 0o600 });
    try {
      linkSync(tmp, file); // atomic: if two processes race, one key wins and both read it
    } catch {
      // another process created it first
    } finally {
      rmSync(tmp, { force: true });
    }
    return readFileSync(file, 'utf8');
  }
}

async function start(): Promise<Member> {
  mkdirSync(myDir, { recursive: true });
  const storage = join(myDir, 'db');
  if (kind === 'tcp') {
    // With an ensemble and a secret, startMember listens on this member's address over TCP.
    const ensemble = Object.fromEntries(ids.map((i) => [i, `127.0.0.1:${ports[i - 1]}`]));
    log(`starting (PID ${process.pid}): TCP on ${ensemble[id]}, LevelDB in ${storage}`);
    return startMember({ id, ensemble, secret: process.env.CONCLAVE_SECRET ?? 'embedded-cluster-demo-secret', storage, logLevel: 'error' });
  }
  const keys = await Promise.all(ids.map((i) => peerKeyOf(i)));
  const peerIds = await Promise.all(keys.map((k) => peerIdFromKey(k)));
  // A member's address names its peer id: only those peers may connect (Noise proves the key).
  const ensemble = Object.fromEntries(ids.map((i) => [i, `/ip4/127.0.0.1/tcp/${ports[i - 1]}/p2p/${peerIds[i - 1]}`]));
  log(`starting (PID ${process.pid}): libp2p as ${peerIds[id - 1]} on /ip4/127.0.0.1/tcp/${ports[id - 1]}, LevelDB in ${storage}`);
  const transport = libp2pTransport({ listen: `/ip4/127.0.0.1/tcp/${ports[id - 1]}`, peerKey: keys[id - 1]! });
  return startMember({ id, ensemble, transport, storage, logLevel: 'error' });
}

let member: Member;
try {
  member = await start();
} catch (e) {
  console.error(`[m${id}] cannot start: ${(e as Error).message}`);
  process.exit(1);
}

let stopping = false;
let lastLeader: number | undefined;
const reportLeader = (): void => {
  const leader = member.leaderId;
  if (leader === undefined || leader === lastLeader) return;
  lastLeader = leader;
  log(`leader: member ${leader}${leader === id ? ' (me)' : ''}`);
};
member.on('leader', reportLeader);
member.on('state', (s) => {
  if (s === 'looking' && !stopping) log('looking for a leader…');
});

await member.ready(60_000);
reportLeader();

// One session for this process's application code, served by the member in this process.
let session: Session = await member.session({ sessionTimeoutMs });
let lastConfig = '';

async function ensureNodes(s: Session): Promise<void> {
  for (const [path, data] of [['/app', ''], ['/app/config', 'color=blue'], ['/app/lock', '']] as const) {
    try {
      await s.create(path, data);
    } catch (e) {
      if ((e as { code?: string }).code !== 'NODEEXISTS') throw e;
    }
  }
}

async function showConfig(s: Session, why: string): Promise<void> {
  const { data, stat } = await s.getData('/app/config');
  const value = text(data);
  if (value === lastConfig && why !== 'start') return;
  lastConfig = value;
  log(`config ${why}: "${value}" (version ${stat.version})`);
}

async function watchConfig(s: Session): Promise<void> {
  // A persistent watch: it survives failover (re-registered on the new leader's terms, gap closed).
  await s.addWatch('/app/config', (ev) => {
    if (ev.type === 'NodeDataChanged' || ev.type === 'NodeCreated') void showConfig(s, 'changed').catch(() => undefined);
  });
  await showConfig(s, 'start');
}

async function lockLoop(): Promise<void> {
  for (let round = 0; !stopping && round < 100_000; round++) {
    const s = session;
    if (s.state === 'LOST' || s.state === 'CLOSED') {
      await sleep(100);
      continue;
    }
    const mutex = new Mutex(s, '/app/lock');
    let acquired = false;
    try {
      acquired = await mutex.acquire({ timeoutMs: 30_000 });
    } catch (e) {
      if (!stopping) log(`lock: waiting interrupted (${(e as Error).message}); trying again`);
      await sleep(200);
      continue;
    }
    if (!acquired) continue;
    const lost = new Promise<string>((r) => mutex.once('lost', (state) => r(state)));
    log(`lock: acquired /app/lock (fencing token 0x${mutex.fencingToken.toString(16)})`);
    const how = await Promise.race([sleep(holdMs).then(() => 'done'), lost]);
    if (how === 'done') {
      await mutex.release().catch(() => undefined);
      if (!stopping) log('lock: released');
    } else if (!stopping) {
      log(`lock: lost (session ${how}); stopped the protected work`);
    }
    await sleep(300 + Math.floor(Math.random() * 400));
  }
}

function follow(s: Session): void {
  s.on('state', (state) => {
    if (stopping) return;
    log(`session: ${state}`);
    // LOST: the ensemble expired the session (this member was cut off too long): start a new one.
    if (state === 'LOST' && s === session) void renew();
  });
}

async function renew(): Promise<void> {
  for (let attempt = 0; attempt < 100 && !stopping; attempt++) {
    try {
      session = await member.session({ sessionTimeoutMs });
      follow(session);
      await watchConfig(session);
      log('session: a new one');
      return;
    } catch {
      await sleep(500);
    }
  }
}

follow(session);
await ensureNodes(session);
await watchConfig(session);
void lockLoop();

// `config <value>` on stdin changes the shared configuration (run.ts uses this too).
process.stdin.setEncoding('utf8');
let buffered = '';
process.stdin.on('data', (chunk: string) => {
  buffered += chunk;
  for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
    const line = buffered.slice(0, i).trim();
    buffered = buffered.slice(i + 1);
    const m = /^config\s+(.+)$/.exec(line);
    if (!m) continue;
    session.setData('/app/config', m[1]!).then(
      (st) => log(`set config to "${m[1]}" (version ${st.version})`),
      (e: unknown) => log(`could not set config: ${(e as Error).message}`),
    );
  }
});

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping (session closes, lock node goes)`);
  const hard = setTimeout(() => process.exit(1), 10_000);
  await member.stop().catch(() => undefined);
  clearTimeout(hard);
  log('stopped');
  process.exit(0);
}
if (args['exit-with-stdin']) process.stdin.on('end', () => void shutdown('end of input'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
