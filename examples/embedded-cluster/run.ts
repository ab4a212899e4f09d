/**
 * The embedded cluster, end to end (`npm run example:cluster [-- --transport libp2p]`): starts the
 * three member processes of member.ts, changes the shared configuration, kills the leader with
 * `kill -9` (by its PID), shows the new leader and the lock moving on, restarts the killed member
 * on its own data directory, and stops everything. Every step waits for what the members print,
 * with a time limit; on any failure all three processes are killed and the exit code is 1.
 *
 *   npx tsx examples/embedded-cluster/run.ts [--transport tcp|libp2p] [--data DIR] [--keep]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    transport: { type: 'string', default: 'tcp' },
    data: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const kind = args.transport === 'libp2p' ? 'libp2p' : 'tcp';
const MEMBER = fileURLToPath(new URL('./member.ts', import.meta.url));
const root = args.data ?? mkdtempSync(join(os.tmpdir(), 'conclave-embedded-cluster-'));

const say = (msg: string): void => console.log(`${new Date().toISOString().slice(11, 23)} [run] ${msg}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Line {
  id: number;
  text: string;
  at: number;
}
const lines: Line[] = [];
const waiters = new Set<() => void>();
const expectedExits = new Set<ChildProcess>();
let failure: Error | undefined;
const failListeners = new Set<(e: Error) => void>();
function fail(e: Error): void {
  failure ??= e;
  for (const f of failListeners) f(e);
}

/** Waits (at most `timeoutMs`) for a line printed after index `from` that matches. */
function waitLine(what: string, match: (l: Line) => boolean, timeoutMs: number, from = 0): Promise<Line> {
  return new Promise((resolve, reject) => {
    if (failure) return reject(failure);
    const done = (): void => {
      waiters.delete(check as () => void);
      failListeners.delete(onFail);
      clearTimeout(timer);
    };
    const onFail = (e: Error): void => {
      done();
      reject(e);
    };
    const check = (): boolean => {
      const l = lines.slice(from).find(match);
      if (!l) return false;
      done();
      resolve(l);
      return true;
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`waited ${timeoutMs} ms for ${what}`));
    }, timeoutMs);
    failListeners.add(onFail);
    if (!check()) waiters.add(check as () => void);
  });
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

const ports = await freePorts(3);
const procs = new Map<number, ChildProcess>();

function launch(id: number): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MEMBER, '--id', String(id), '--transport', kind, '--data', root, '--ports', ports.join(','), '--exit-with-stdin'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  procs.set(id, child);
  child.once('exit', (code, signal) => {
    if (!expectedExits.has(child)) fail(new Error(`member ${id} (PID ${child.pid}) exited unexpectedly (${signal ?? `code ${code}`})`));
  });
  createInterface({ input: child.stdout! }).on('line', (text) => {
    console.log(text);
    lines.push({ id, text, at: performance.now() });
    for (const w of [...waiters]) w();
  });
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function stopAll(): Promise<void> {
  await Promise.all([...procs.values()].map(async (child) => {
    expectedExits.add(child);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited(child);
    clearTimeout(hard);
  }));
}

const leaderLine = /leader: member (\d+)/;
const leaderIn = (l: Line): number | undefined => {
  const m = leaderLine.exec(l.text);
  return m ? Number(m[1]) : undefined;
};

/** Waits until each of `ids` has most recently printed the same leader; returns it. */
async function agreedLeader(ids: number[], from: number, timeoutMs: number): Promise<number> {
  const latest = (): number | undefined => {
    const seen = ids.map((id) => {
      const own = lines.slice(from).filter((l) => l.id === id && leaderIn(l) !== undefined);
      return own.length > 0 ? leaderIn(own[own.length - 1]!) : undefined;
    });
    return seen.every((s) => s !== undefined && s === seen[0]) ? seen[0] : undefined;
  };
  await waitLine(`members ${ids.join(', ')} to agree on a leader`, () => latest() !== undefined, timeoutMs, from);
  return latest()!;
}

async function main(): Promise<void> {
  say(`starting 3 member processes over ${kind} on 127.0.0.1 ports ${ports.join(', ')}; data in ${root}`);
  for (const id of [1, 2, 3]) launch(id);
  say(`PIDs: ${[...procs].map(([id, c]) => `member ${id} = ${c.pid}`).join(', ')}`);

  const leader = await agreedLeader([1, 2, 3], 0, 60_000);
  say(`all three agree: member ${leader} leads`);
  for (const id of [1, 2, 3]) await waitLine(`member ${id} to watch the config`, (l) => l.id === id && l.text.includes('config start:'), 20_000);
  await waitLine('someone to take the lock', (l) => l.text.includes('lock: acquired'), 20_000);

  const follower = [1, 2, 3].find((id) => id !== leader)!;
  let mark = lines.length;
  say(`changing the configuration through member ${follower}: color=green`);
  procs.get(follower)!.stdin!.write('config color=green\n');
  for (const id of [1, 2, 3]) await waitLine(`member ${id} to see color=green`, (l) => l.id === id && l.text.includes('config changed: "color=green"'), 10_000, mark);
  say('every member saw the change through its watch');
  const holds = lines.length;
  await waitLine(`member ${leader} (the leader) to hold the lock`, (l) => l.id === leader && l.text.includes('lock: acquired'), 30_000, holds);

  const victim = procs.get(leader)!;
  const survivors = [1, 2, 3].filter((id) => id !== leader);
  mark = lines.length;
  const killedAt = performance.now();
  say(`kill -9 ${victim.pid} (member ${leader}: the leader, and it holds the lock)`);
  expectedExits.add(victim);
  process.kill(victim.pid!, 'SIGKILL');
  await exited(victim);
  const newLeader = await agreedLeader(survivors, mark, 30_000);
  say(`members ${survivors.join(' and ')} agree on a new leader: member ${newLeader}, ${Math.round(performance.now() - killedAt)} ms after the kill`);

  const m2 = lines.length;
  say(`changing the configuration through member ${survivors[0]}: color=red`);
  procs.get(survivors[0]!)!.stdin!.write('config color=red\n');
  for (const id of survivors) await waitLine(`member ${id} to see color=red`, (l) => l.id === id && l.text.includes('config changed: "color=red"'), 10_000, m2);
  const moved = await waitLine('a survivor to take the lock', (l) => survivors.includes(l.id) && l.text.includes('lock: acquired'), 30_000, mark);
  say(`the lock moved on: member ${moved.id} holds it, ${Math.round(moved.at - killedAt)} ms after the kill (the dead holder's session expired and its lock node went with it)`);

  const m3 = lines.length;
  say(`restarting member ${leader} on its data directory`);
  const again = launch(leader);
  say(`member ${leader} is PID ${again.pid} now`);
  await waitLine(`member ${leader} to rejoin`, (l) => l.id === leader && leaderIn(l) !== undefined, 60_000, m3);
  await waitLine(`member ${leader} to read the current config`, (l) => l.id === leader && l.text.includes('config start: "color=red"'), 20_000, m3);
  say(`member ${leader} rejoined as a follower and caught up (it reads color=red, written while it was dead)`);
  await waitLine(`member ${leader} to take part in the lock again`, (l) => l.id === leader && l.text.includes('lock: acquired'), 30_000, m3);
  say('stopping all three (SIGTERM: graceful stop)');
  await stopAll();
  say('done');
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`[run] ${signal}: killing the members`);
    for (const child of procs.values()) {
      expectedExits.add(child);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (!args.keep && !args.data) rmSync(root, { recursive: true, force: true });
    process.exit(130);
  });
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`[run] FAILED: ${(e as Error).message}`);
  for (const child of procs.values()) {
    expectedExits.add(child);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
} finally {
  if (!args.keep && !args.data) rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
