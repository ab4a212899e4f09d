import type { Command } from 'commander';
import { ConfigError, loadConfig, parseZooCfg } from '../../api/config.js';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StartupError, fetchError, getJson } from '../daemon.js';

interface Row {
  server: string;
  ok: boolean;
  member?: number;
  mode?: string;
  leader?: number | null;
  zxid?: string;
  serving?: boolean;
  sessions?: number;
  lag?: string;
  error?: string;
}

/** The admin URLs to ask: --servers host:port,… (admin endpoints), or every server.N host with the config's admin.serverPort. */
export function adminTargets(opts: { servers?: string; config?: string }): string[] {
  if (opts.servers) {
    return opts.servers.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => (/^https?:\/\//.test(s) ? s.replace(/\/$/, '') : `http://${s}`));
  }
  if (!opts.config) throw new StartupError('say which members to ask: --servers host:adminPort[,host:adminPort…] or --config zoo.cfg');
  const path = resolve(opts.config);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StartupError(`${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let cfg;
  try {
    cfg = parseZooCfg(text, { source: path, baseDir: dirname(path) });
  } catch (e) {
    if (e instanceof ConfigError) throw new StartupError(e.message);
    throw e;
  }
  if (!cfg.admin.enabled) throw new StartupError(`${path} disables the admin endpoint (admin.enableServer=false); pass --servers host:adminPort,… instead`);
  if (cfg.servers.length <= 1) {
    // Standalone: this host, or the running process's actual endpoint.
    try {
      const c = loadConfig(path);
      const run = JSON.parse(readFileSync(c.runFile, 'utf8')) as { admin?: string };
      if (typeof run.admin === 'string') return [run.admin];
    } catch {
      // fall through to the configured port
    }
    if (cfg.admin.port === 0) throw new StartupError(`${path} has admin.serverPort=0 (any free port); pass --servers host:port of the admin endpoint`);
    return [`http://${cfg.admin.host === '0.0.0.0' ? '127.0.0.1' : cfg.admin.host}:${cfg.admin.port}`];
  }
  if (cfg.admin.port === 0) throw new StartupError(`${path} has admin.serverPort=0 (any free port), so the members' admin ports are unknown; pass --servers host:port,… of their admin endpoints`);
  return cfg.servers.map((s) => `http://${s.host.includes(':') ? `[${s.host}]` : s.host}:${cfg.admin.port}`);
}

/** Asks each member's admin endpoint for /status (in parallel, bounded by timeoutMs). */
export async function ensembleStatus(urls: string[], timeoutMs = 3000): Promise<Row[]> {
  return Promise.all(urls.map(async (url): Promise<Row> => {
    const server = url.replace(/^https?:\/\//, '');
    try {
      const s = await getJson(`${url}/status`, timeoutMs);
      const learners = (s.learners as { id: number; lagTxns: number | null }[] | undefined) ?? [];
      return {
        server, ok: true, member: s.memberId as number, mode: s.mode as string, leader: s.leaderId as number | null,
        zxid: s.zxid as string, serving: s.serving as boolean, sessions: (s.sessions as { local: unknown[] }).local.length,
        lag: learners.length > 0 ? learners.map((l) => `${l.id}:${l.lagTxns ?? '?'}`).join(' ') : '',
      };
    } catch (e) {
      return { server, ok: false, error: fetchError(e) };
    }
  }));
}

/** The table `conclave status` prints, and a summary line. */
export function statusTable(rows: Row[]): string[] {
  const head = ['SERVER', 'MEMBER', 'MODE', 'LEADER', 'ZXID', 'SERVING', 'SESSIONS', 'LAG (learner:txns)'];
  const cells = rows.map((r) => (r.ok
    ? [r.server, String(r.member), r.mode!, r.leader === null ? '-' : String(r.leader), r.zxid!, r.serving ? 'yes' : 'no', String(r.sessions), r.lag ?? '']
    : [r.server, '-', 'unreachable', '-', '-', '-', '-', r.error ?? '']));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!))).join('  ').trimEnd();
  const up = rows.filter((r) => r.ok);
  const leaders = [...new Set(up.filter((r) => r.mode === 'leader' || r.mode === 'standalone').map((r) => r.member))];
  const summary = `${up.length}/${rows.length} members answered; ${leaders.length === 1 ? `leader ${leaders[0]}` : leaders.length === 0 ? 'no leader' : `${leaders.length} members claim to lead (${leaders.join(', ')})`}; ${up.filter((r) => r.serving).length} serving`;
  return [line(head), ...cells.map(line), summary];
}

/** `conclave status`: each member's role, like zkServer.sh status for the whole ensemble. */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("show each member's role, leader, zxid and lag (asks their admin endpoints, like zkServer.sh status)")
    .option('--servers <list>', 'admin endpoints: host:port[,host:port…]')
    .option('-c, --config <file>', 'a zoo.cfg: asks every server.N host on its admin.serverPort')
    .option('--timeout <ms>', 'per-member timeout', '3000')
    .option('--json', 'print the answers as JSON')
    .addHelpText('after', '\nExit code: 0 when every member answered, 1 otherwise.')
    .action(async (opts: { servers?: string; config?: string; timeout: string; json?: boolean }) => {
      const urls = adminTargets(opts);
      const rows = await ensembleStatus(urls, Number(opts.timeout) || 3000);
      if (opts.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      else for (const l of statusTable(rows)) process.stdout.write(l + '\n');
      if (rows.some((r) => !r.ok)) process.exitCode = 1;
    });
}
