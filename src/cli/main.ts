#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerDumpLog } from './commands/dump-log.js';
import { registerDumpSnapshot } from './commands/dump-snapshot.js';
import { registerCli } from './commands/cli.js';
import { registerMember } from './commands/member.js';
import { registerStatus } from './commands/status.js';

/**
 * `conclave` — the command line. Each subcommand lives in its own file under ./commands and
 * registers itself on the program; add yours to `COMMANDS`.
 */
const COMMANDS: ((program: Command) => void)[] = [registerDumpLog, registerDumpSnapshot, registerMember, registerStatus, registerCli];

function version(): string {
  try {
    // src/cli/main.ts and dist/cli/main.js both sit two levels below package.json.
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function buildProgram(): Command {
  const program = new Command()
    .name('conclave')
    .description('conclave: embeddable ZooKeeper-equivalent coordination for Node.js')
    .version(version())
    .showHelpAfterError();
  for (const register of COMMANDS) register(program);
  return program;
}

// `| head` closes stdout early: stop quietly rather than with an EPIPE stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (e) {
  process.stderr.write(`conclave: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
