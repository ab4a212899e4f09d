import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { startAdminServer, type AdminServer } from '../api/adminServer.js';
import { ConfigError, loadConfig, type MemberProcessConfig } from '../api/config.js';
import { defaultLogger, type LogLevel } from '../api/log.js';
import { startMember, type Member } from '../api/member.js';
import { StorageError } from '../storage/errors.js';
import { tcpTransport, type ClientConnection, type TcpTransport } from '../transport/tcp.js';
import type { Transport } from '../transport/types.js';

/**
 * `conclave member`: one ensemble member as its own OS process, with zkServer.sh's story —
 * start (daemonized, detached, output to a log file), start --foreground, stop (SIGTERM to the PID
 * in dataDir's pid file → graceful member.stop()), status (asks the admin endpoint), restart.
 * Every start-up problem is one line (a StartupError) that says what to fix.
 */

/** A start-up problem, in one line that says what to fix. */
export class StartupError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message.replace(/\s*\n\s*/g, ' '));
    this.name = 'StartupError';
  }
}

/** Exit codes (documented in the README). */
export const EXIT = { ok: 0, failed: 1, notRunning: 3 } as const;

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

function print(line: string): void {
  process.stdout.write(line + '\n');
}

function warn(line: string): void {
  process.stderr.write(`conclave: warning: ${line}\n`);
}

/** loadConfig, with its ConfigError as a StartupError. */
export function readConfig(path: string): MemberProcessConfig {
  try {
    return loadConfig(path);
  } catch (e) {
    if (e instanceof ConfigError) throw new StartupError(e.message);
    throw e;
  }
}

/** Creates `dir` if needed and proves it writable (root ignores modes, so really write a file). */
function ensureWritableDir(dir: string, key: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = errno(e);
    if (code === 'ENOTDIR' || code === 'EEXIST') throw new StartupError(`${key} ${dir} cannot be created: part of that path is a file, not a directory; set ${key} to a directory path`);
    throw new StartupError(`${key} ${dir} cannot be created (${code}); create it and make it writable by this user, or set ${key} to a writable directory`);
  }
  const probe = join(dir, `.conclave-write-test-${process.pid}`);
  try {
    writeFileSync(probe, 'ok');
    rmSync(probe, { force: true });
  } catch (e) {
    throw new StartupError(`${key} ${dir} is not writable by this user (${errno(e)}); fix its owner or permissions (chown/chmod), or set ${key} to a writable directory`);
  }
}

/** The pid in the pid file, when there is one. */
export function readPid(file: string): number | undefined {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
  return /^\d+$/.test(raw) && Number(raw) > 0 ? Number(raw) : undefined;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === 'EPERM';
  }
}

/**
 * Whether `pid` is a `conclave member` process (guards against a stale pid file whose PID the
 * OS gave to another program). Where /proc is missing, trusts the pid file.
 */
function isMemberProcess(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return !existsSync('/proc/self/cmdline');
  }
  return cmdline.split('\0').includes('member');
}

/** Writes a file atomically (write a temp file, rename). */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Removes our pid/run files, only if they still name this process. */
function removeOwnFiles(c: MemberProcessConfig): void {
  if (readPid(c.pidFile) === process.pid) rmSync(c.pidFile, { force: true });
  try {
    const run = JSON.parse(readFileSync(c.runFile, 'utf8')) as { pid?: number };
    if (run.pid === process.pid) rmSync(c.runFile, { force: true });
  } catch {
    // absent or unreadable: nothing of ours
  }
}

/** Turns what startMember / the admin endpoint threw into one line that says what to fix. */
function startupMessage(c: MemberProcessConfig, e: unknown): string {
  const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
  const self = c.cfg.servers.find((s) => s.id === c.id);
  const where = self ? `server.${self.id} (${c.path}:${self.line})` : 'this member';
  if (e instanceof StorageError && e.code === 'LOCKED') {
    const pid = readPid(c.pidFile);
    return `data directory ${c.storageDir} is locked by another member${pid && pid !== process.pid && alive(pid) ? ` (process ${pid}, from ${c.pidFile})` : ''}; stop it first (conclave member stop --config ${c.path}) or give this member its own dataDir`;
  }
  if (/EADDRINUSE/.test(msg) || /already in use/.test(msg)) {
    if (/admin endpoint/.test(msg)) return `${msg.replace(/^admin endpoint/, 'the admin endpoint')} (admin.serverPort in ${c.path}; 0 = any free port)`;
    return `${c.listen ?? 'the member address'} is already in use (${where}): another member or program listens there; stop it (see: lsof -i :${c.listen?.replace(/^.*:/, '') ?? ''}) or give this member another port`;
  }
  if (/EADDRNOTAVAIL/.test(msg)) {
    return `${c.listen ?? 'the member address'} (${where}) is not an address of this machine; fix the host in that line, or set quorumListenOnAllIPs=true to listen on all addresses`;
  }
  if (/EACCES/.test(msg) && /listen/.test(msg)) {
    return `cannot listen on ${c.listen} (${where}): permission denied (ports below 1024 need privileges); use a port ≥ 1024`;
  }
  if (/permission|EACCES|EROFS|read-only/i.test(msg)) {
    return `data directory ${c.storageDir} cannot be written (${msg}); fix its permissions or set dataDir/dataLogDir to a writable directory`;
  }
  return msg;
}

function clientPortMessage(c: MemberProcessConfig, e: unknown): string {
  const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
  const port = c.clientListen?.replace(/^.*:/, '') ?? '';
  if (/EADDRINUSE|already in use/.test(msg)) return `clientPort ${c.clientListen} is already in use: another member or program listens there; stop it (see: lsof -i :${port}) or change clientPort in ${c.path}`;
  if (/EADDRNOTAVAIL/.test(msg)) return `clientPortAddress in ${c.path} (${c.clientListen}) is not an address of this machine; fix it or remove it to listen on all addresses`;
  return `cannot listen on clientPort ${c.clientListen}: ${msg}`;
}

interface Running {
  config: MemberProcessConfig;
  member: Member;
  admin: AdminServer | undefined;
  clients: TcpTransport | undefined;
}

/** The one-line reply of a member process to the `start` that spawned it. */
type StartReport = { t: 'started'; pid: number; id: number; admin: string | null; mode: string } | { t: 'failed'; message: string };

function report(r: StartReport): void {
  if (process.send && process.connected) {
    try {
      process.send(r);
    } catch {
      // the starter is gone; the log has it
    }
  }
}

/**
 * Runs the member in this process until SIGTERM/SIGINT (`conclave member --config` or
 * `start --foreground`). Resolves once running; the process then lives until stopped.
 */
export async function runForeground(configPath: string): Promise<Running> {
  let c: MemberProcessConfig | undefined;
  try {
    c = readConfig(configPath);
    for (const w of c.warnings) warn(w);
    return await boot(c);
  } catch (e) {
    const message = e instanceof StartupError ? e.message : c ? startupMessage(c, e) : (e as Error).message;
    report({ t: 'failed', message });
    throw new StartupError(message);
  }
}

async function boot(c: MemberProcessConfig): Promise<Running> {
  ensureWritableDir(c.dataDir, 'dataDir');
  if (c.storageDir !== c.dataDir) ensureWritableDir(c.storageDir, 'dataLogDir');
  const other = readPid(c.pidFile);
  if (other !== undefined && other !== process.pid && alive(other) && isMemberProcess(other)) {
    throw new StartupError(`a member already runs on ${c.dataDir} as process ${other} (pid file ${c.pidFile}); stop it first: conclave member stop --config ${c.path}`);
  }
  const voters = c.cfg.servers.length;
  if (voters > 1 && c.secret === undefined) {
    throw new StartupError(`no ensemble secret in ${c.path}: add secret=<at least 16 random characters, the same on every member> (e.g. from: openssl rand -hex 16), or secretFile=<path>, or set CONCLAVE_SECRET`);
  }
  const level = (c.cfg.logLevel ?? (process.env.CONCLAVE_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const logger = defaultLogger(level);
  // Remote sessions arrive on the member's TCP listener (and on clientPort, when it is another
  // address); they are handed to the member once it exists.
  let member: Member | undefined;
  const onClient = (conn: ClientConnection): void => {
    if (member) member.acceptClient(conn);
    else conn.close();
  };
  let transport: Transport | undefined;
  if (c.listen !== undefined) {
    // A standalone member still listens (for remote sessions); with no other member to
    // authenticate, a random secret will do.
    transport = tcpTransport({ listen: c.listen, secret: c.secret ?? randomBytes(32), onClient });
  }
  try {
    member = await startMember({ ...c.member, logger, ...(transport ? { transport } : {}) });
  } catch (e) {
    throw new StartupError(startupMessage(c, e));
  }
  let clients: TcpTransport | undefined;
  if (c.clientListen !== undefined) {
    // A listener for sessions only: no member knows its random secret, so none can join through it.
    clients = tcpTransport({ listen: c.clientListen, secret: randomBytes(32), onClient });
    try {
      await clients.start(c.id, new Map([[c.id, c.clientListen]]));
    } catch (e) {
      await member.stop().catch(() => undefined);
      throw new StartupError(clientPortMessage(c, e));
    }
  }
  let admin: AdminServer | undefined;
  if (c.admin.enabled) {
    try {
      admin = await startAdminServer(member, { host: c.admin.host, port: c.admin.port });
    } catch (e) {
      await clients?.stop().catch(() => undefined);
      await member.stop().catch(() => undefined);
      throw new StartupError(startupMessage(c, e));
    }
  }
  writeAtomic(c.pidFile, `${process.pid}\n`);
  writeAtomic(c.runFile, JSON.stringify({ pid: process.pid, id: c.id, admin: admin?.url ?? null, config: c.path, log: c.logFile, startedAt: new Date().toISOString() }) + '\n');
  const running: Running = { config: c, member, admin, clients };
  installStop(running);
  member.log.info({ id: c.id, config: c.path, admin: admin?.url ?? null, listen: c.listen ?? null, clientListen: c.clientListen ?? null, storage: c.storageDir, pid: process.pid, state: member.state }, 'member process started');
  report({ t: 'started', pid: process.pid, id: c.id, admin: admin?.url ?? null, mode: member.state });
  return running;
}

function installStop(r: Running): void {
  let stopping = false;
  const stop = (why: string, code: number): void => {
    if (stopping) {
      // A second signal: the operator wants out now.
      r.member.log.warn({ why }, 'second signal during shutdown; exiting now');
      removeOwnFiles(r.config);
      process.exit(130);
    }
    stopping = true;
    r.member.log.info({ why }, 'member process stopping');
    const deadline = setTimeout(() => {
      r.member.log.error({}, 'graceful stop took longer than 20 s; exiting');
      removeOwnFiles(r.config);
      process.exit(1);
    }, 20_000);
    void (async () => {
      try {
        await r.admin?.close();
        await r.clients?.stop();
        await r.member.stop();
      } catch (e) {
        r.member.log.error({ err: (e as Error).message }, 'error while stopping');
        code = 1;
      }
      clearTimeout(deadline);
      removeOwnFiles(r.config);
      r.member.log.info({}, 'member process stopped');
      // pino writes synchronously to fd 2; nothing is lost by exiting now.
      process.exit(code);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  process.on('SIGHUP', () => stop('SIGHUP', 0));
  r.member.on('error', (e) => {
    r.member.log.error({ err: e.message }, 'the member failed; the process exits');
    stop('fatal error', 1);
  });
}

function tail(file: string, bytes = 4096): string[] {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const len = Math.min(bytes, size);
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8').split('\n').filter((l) => l.trim() !== '');
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
}

/**
 * `conclave member start`: spawns a detached `member start --foreground` child with its output
 * in the log file and waits (bounded) for its one-line report: started, or what went wrong.
 */
export async function startDaemon(configPath: string, options: { waitMs?: number } = {}): Promise<void> {
  const c = readConfig(configPath);
  for (const w of c.warnings) warn(w);
  const pid = readPid(c.pidFile);
  if (pid !== undefined && alive(pid) && isMemberProcess(pid)) {
    throw new StartupError(`member ${c.id} is already running as process ${pid} (pid file ${c.pidFile}); use conclave member restart --config ${c.path} to restart it`);
  }
  ensureWritableDir(c.dataDir, 'dataDir');
  const log = openSync(c.logFile, 'a');
  const script = process.argv[1];
  if (!script) throw new StartupError('cannot tell which script to run for the member process (process.argv[1] is empty)');
  print(`Using config: ${c.path}`);
  process.stdout.write(`Starting conclave member ${c.id} ... `);
  const child = spawn(process.execPath, [...process.execArgv, script, 'member', 'start', '--foreground', '--config', c.path], {
    detached: true, stdio: ['ignore', log, log, 'ipc'], env: process.env,
  });
  closeSync(log);
  const waitMs = options.waitMs ?? 60_000;
  const outcome = await new Promise<StartReport | { t: 'exit'; code: number | null; signal: string | null } | { t: 'timeout' }>((resolve) => {
    const timer = setTimeout(() => resolve({ t: 'timeout' }), waitMs);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as StartReport);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ t: 'exit', code, signal });
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ t: 'failed', message: `cannot start ${process.execPath}: ${e.message}` });
    });
  });
  if (outcome.t === 'started') {
    if (child.connected) child.disconnect();
    child.unref();
    print('STARTED');
    print(`pid ${outcome.pid}, admin ${outcome.admin ?? 'disabled'}, log ${c.logFile}`);
    return;
  }
  print('FAILED');
  if (outcome.t === 'failed') throw new StartupError(outcome.message);
  if (outcome.t === 'timeout') {
    // We started it, and it did not come up: stop it by its PID rather than leave it half-started.
    if (child.pid !== undefined && alive(child.pid)) process.kill(child.pid, 'SIGTERM');
    throw new StartupError(`member ${c.id} did not report within ${Math.round(waitMs / 1000)} s and was stopped; see ${c.logFile}`);
  }
  const last = tail(c.logFile).filter((l) => !l.startsWith('{')).slice(-1)[0];
  throw new StartupError(`member process exited with ${outcome.code !== null ? `code ${outcome.code}` : `signal ${outcome.signal}`} before it started${last ? `: ${last.replace(/^conclave: /, '')}` : ''}; see ${c.logFile}`);
}

/** `conclave member stop`: SIGTERM to the PID in the pid file, then wait (bounded) for it to exit. */
export async function stopDaemon(configPath: string, options: { timeoutMs?: number } = {}): Promise<void> {
  const c = readConfig(configPath);
  print(`Using config: ${c.path}`);
  const pid = readPid(c.pidFile);
  if (pid === undefined) {
    print(`member ${c.id} is not running (no pid file at ${c.pidFile})`);
    return;
  }
  if (!alive(pid)) {
    rmSync(c.pidFile, { force: true });
    print(`member ${c.id} is not running (removed the stale pid file of process ${pid})`);
    return;
  }
  if (!isMemberProcess(pid)) {
    throw new StartupError(`process ${pid} named in ${c.pidFile} is not a conclave member (the pid file is stale and the PID was reused); remove ${c.pidFile} by hand`);
  }
  process.stdout.write(`Stopping conclave member ${c.id} (pid ${pid}) ... `);
  process.kill(pid, 'SIGTERM');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const step = 100;
  for (let waited = 0; waited < timeoutMs; waited += step) {
    if (!alive(pid)) {
      print('STOPPED');
      return;
    }
    await new Promise((r) => setTimeout(r, step));
  }
  print('FAILED');
  throw new StartupError(`process ${pid} did not exit within ${Math.round(timeoutMs / 1000)} s of SIGTERM; see ${c.logFile}, or force it: kill -9 ${pid}`);
}

/** The admin endpoint of a configured member: the running process's actual one, else the config's. */
export function adminUrlOf(c: MemberProcessConfig): string | undefined {
  try {
    const run = JSON.parse(readFileSync(c.runFile, 'utf8')) as { pid?: number; admin?: string | null };
    if (run.pid !== undefined && alive(run.pid) && typeof run.admin === 'string') return run.admin;
  } catch {
    // not running, or an older process: use the config
  }
  if (!c.admin.enabled || c.admin.port === 0) return undefined;
  const host = c.admin.host === '0.0.0.0' ? '127.0.0.1' : c.admin.host === '::' ? '::1' : c.admin.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${c.admin.port}`;
}

/** GET `url` as JSON, bounded by `timeoutMs`. */
export async function getJson(url: string, timeoutMs = 3000): Promise<Record<string, unknown>> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body = (await r.json()) as Record<string, unknown>;
  if (!r.ok) throw new Error(typeof body.error === 'string' ? body.error : `HTTP ${r.status}`);
  return body;
}

export function fetchError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  if ((e as Error).name === 'TimeoutError') return 'timed out';
  return (e as Error).message;
}

/** `conclave member status`: what the member says about itself (exit 0), or why it cannot (exit 1 / 3). */
export async function statusDaemon(configPath: string): Promise<number> {
  const c = readConfig(configPath);
  print(`Using config: ${c.path}`);
  const pid = readPid(c.pidFile);
  const running = pid !== undefined && alive(pid);
  const url = adminUrlOf(c);
  if (url === undefined) {
    if (running) {
      print(`member ${c.id} is running as process ${pid}, but has no admin endpoint to ask (admin.enableServer=false or admin.serverPort=0 without a run file)`);
      return EXIT.ok;
    }
    print(`member ${c.id} is not running`);
    return EXIT.notRunning;
  }
  let s: Record<string, unknown>;
  try {
    s = await getJson(`${url}/status`);
  } catch (e) {
    if (running) {
      print(`member ${c.id} is running as process ${pid}, but its admin endpoint ${url} does not answer (${fetchError(e)}); see ${c.logFile}`);
      return EXIT.failed;
    }
    print(`member ${c.id} is not running${pid !== undefined ? ` (stale pid file of process ${pid})` : ''}`);
    return EXIT.notRunning;
  }
  const ls = (s.learners as { id: number; observer: boolean; phase: string; lagTxns: number | null; lagTicks: number }[] | undefined) ?? [];
  print(`Member: ${String(s.memberId)}${typeof s.pid === 'number' ? ` (pid ${s.pid})` : ''}`);
  print(`Mode: ${String(s.mode)}`);
  print(`Leader: ${s.leaderId === null ? 'none' : String(s.leaderId)}`);
  print(`Zxid: ${String(s.zxid)} (epoch ${String(s.epoch)})`);
  print(`Serving: ${s.serving ? 'yes' : 'no'}`);
  if (ls.length > 0) print(`Learners: ${ls.map((l) => `${l.id}${l.observer ? ' (observer)' : ''} ${l.phase}, lag ${l.lagTxns ?? '?'} txns`).join('; ')}`);
  const sessions = s.sessions as { global: number; local: unknown[] } | undefined;
  if (sessions) print(`Sessions: ${sessions.local.length} on this member, ${sessions.global} in the ensemble`);
  print(`Znodes: ${String(s.nodeCount)}`);
  print(`Admin: ${url}`);
  return EXIT.ok;
}
