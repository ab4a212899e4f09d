import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import type { Command } from 'commander';
import type { Session } from '../../api/session.js';
import type { SessionOptions } from '../../api/types.js';
import { ConfigError, loadConfig } from '../../api/config.js';
import { StartupError } from '../daemon.js';
import { ZkShell, helpText, type SessionOpener, type ShellOutput } from '../zkcli.js';

/**
 * `conclave cli -server host:port[,host:port] [cmd args]`: the zkCli-like shell (src/cli/zkcli.ts),
 * interactive (readline, history in ~/.conclave_cli_history, tab completion of commands and
 * paths) or one-shot. Sessions come from the package's `connect()` (remote sessions).
 */

export interface CliArgs {
  servers: string;
  timeoutMs: number | undefined;
  readOnly: boolean;
  auth: { scheme: string; credentials: string }[];
  help: boolean;
  /** The one-shot command, if any. */
  command: string[];
}

/** zkCli's arguments: -server (or --server), -timeout, -r, plus --auth scheme:credentials and --config zoo.cfg; the rest is a command. */
export function parseCliArgs(argv: string[]): CliArgs {
  const out: CliArgs = { servers: '', timeoutMs: undefined, readOnly: false, auth: [], help: false, command: [] };
  let config: string | undefined;
  let i = 0;
  const value = (name: string): string => {
    const v = argv[++i];
    if (v === undefined) throw new StartupError(`${name} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-server' || a === '--server') out.servers = value(a);
    else if (a === '-timeout' || a === '--timeout') {
      const v = value(a);
      if (!/^\d+$/.test(v)) throw new StartupError(`${a} '${v}' is not a number of milliseconds`);
      out.timeoutMs = Number(v);
    } else if (a === '-r' || a === '--read-only') out.readOnly = true;
    else if (a === '--auth' || a === '-auth') {
      const v = value(a);
      const c = v.indexOf(':');
      if (c <= 0) throw new StartupError(`${a} '${v}' is not scheme:credentials (e.g. digest:bob:secret)`);
      out.auth.push({ scheme: v.slice(0, c), credentials: v.slice(c + 1) });
    } else if (a === '--config' || a === '-config') config = value(a);
    else if (a === '-h' || a === '-help' || a === '--help') out.help = true;
    else if (a === '--') {
      out.command = argv.slice(i + 1);
      break;
    } else {
      out.command = argv.slice(i);
      break;
    }
  }
  if (out.servers === '' && config !== undefined) {
    try {
      const c = loadConfig(config);
      out.servers = c.cfg.servers.length > 0 ? c.cfg.servers.map((s) => (s.host === '0.0.0.0' ? `127.0.0.1:${s.port}` : s.address)).join(',') : '127.0.0.1:2181';
    } catch (e) {
      if (e instanceof ConfigError) throw new StartupError(e.message);
      throw e;
    }
  }
  if (out.servers === '') out.servers = '127.0.0.1:2181';
  return out;
}

/** Opens remote sessions with the package's connect(), once that is available in this build. */
export const openRemote: SessionOpener = async (servers, options) => {
  const mod = (await import('../../index.js')) as unknown as Record<string, unknown>;
  const connect = mod.connect as ((addresses: string[], options?: SessionOptions) => Promise<Session>) | undefined;
  if (typeof connect !== 'function') throw new StartupError('this build of conclave has no remote sessions (connect() is missing); use member.session() in-process');
  try {
    return await connect(servers.split(',').map((s) => s.trim()).filter((s) => s !== ''), options);
  } catch (e) {
    throw new StartupError(`cannot open a session on ${servers}: ${(e as Error).message}`);
  }
};

function historyFile(): string | undefined {
  const env = process.env.CONCLAVE_CLI_HISTORY;
  if (env === '') return undefined;
  if (env) return env;
  try {
    return join(homedir(), '.conclave_cli_history');
  } catch {
    return undefined;
  }
}

const HISTORY_MAX = 1000;

function loadHistory(file: string | undefined): string[] {
  if (!file) return [];
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-HISTORY_MAX).reverse();
  } catch {
    return [];
  }
}

function saveHistoryLine(file: string | undefined, line: string): void {
  if (!file || line.trim() === '') return;
  try {
    appendFileSync(file, line + '\n', { mode: 0o600 });
    const all = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    if (all.length > 2 * HISTORY_MAX) writeFileSync(file, all.slice(-HISTORY_MAX).join('\n') + '\n', { mode: 0o600 });
  } catch {
    // history is a convenience
  }
}

/** Runs the shell: one-shot (returns the exit code) or interactive until quit / end of input. */
export async function runCli(args: CliArgs, open: SessionOpener = openRemote, io: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream; error: NodeJS.WritableStream } = { input: process.stdin, output: process.stdout, error: process.stderr }): Promise<number> {
  if (args.help) {
    for (const l of helpText()) io.output.write(l + '\n');
    return 0;
  }
  let rl: readline.Interface | undefined;
  let busy = false;
  const output: ShellOutput = {
    out: (l) => io.output.write(l + '\n'),
    err: (l) => io.error.write(l + '\n'),
    event: (lines) => {
      io.output.write(lines.join('\n') + '\n');
      // Between commands, show the prompt again; during one, its own prompt follows.
      if (rl && interactive && !busy) rl.prompt(true);
    },
  };
  const interactive = args.command.length === 0 && (io.input as { isTTY?: boolean }).isTTY === true;
  const sessionOptions: SessionOptions = {
    ...(args.timeoutMs !== undefined ? { sessionTimeoutMs: args.timeoutMs } : {}),
    ...(args.auth.length > 0 ? { auth: args.auth } : {}),
    ...(args.readOnly ? { canBeReadOnly: true } : {}),
  };
  const shell = new ZkShell({ servers: args.servers, open, output, sessionOptions });
  if (interactive) io.output.write(`Connecting to ${args.servers}\n`);
  await shell.connect();
  if (args.command.length > 0) {
    // One-shot: the words as zkCli would have tokenized them (quote those with spaces).
    const line = args.command.map((w) => (/[\s"']/.test(w) || w === '' ? JSON.stringify(w) : w)).join(' ');
    const ok = await shell.execute(line);
    await shell.closeSession().catch(() => undefined);
    return ok ? 0 : 1;
  }
  const file = interactive ? historyFile() : undefined;
  rl = readline.createInterface({
    input: io.input, output: io.output, terminal: interactive, history: loadHistory(file), historySize: HISTORY_MAX,
    completer: (line: string, cb: (err: null, result: [string[], string]) => void) => {
      void shell.complete(line).then((r) => cb(null, r), () => cb(null, [[], line]));
    },
  });
  if (interactive) io.output.write('\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n');
  rl.setPrompt(shell.prompt());
  if (interactive) rl.prompt();
  let failures = 0;
  for await (const line of rl) {
    saveHistoryLine(file, line);
    busy = true;
    if (!(await shell.execute(line))) failures++;
    busy = false;
    if (shell.quitting) break;
    rl.setPrompt(shell.prompt());
    if (interactive) rl.prompt();
  }
  rl.close();
  await shell.closeSession().catch(() => undefined);
  // Piped commands: like one-shot, report whether any failed.
  return interactive || failures === 0 ? 0 : 1;
}

/** Registers `conclave cli`. */
export function registerCli(program: Command): void {
  program
    .command('cli')
    .description('a zkCli-like shell: conclave cli -server host:port[,host:port] [cmd args] (no cmd = interactive)')
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption(false)
    .argument('[args...]', '-server host:port[,…] [-timeout ms] [-r] [--auth scheme:credentials] [--config zoo.cfg] [cmd args…]; -help lists the commands')
    .action(async (argv: string[]) => {
      const code = await runCli(parseCliArgs(argv));
      if (code !== 0) process.exitCode = code;
    });
}
