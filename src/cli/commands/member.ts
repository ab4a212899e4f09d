import type { Command } from 'commander';
import { EXIT, StartupError, runForeground, startDaemon, statusDaemon, stopDaemon } from '../daemon.js';

const ACTIONS = ['start', 'stop', 'status', 'restart', 'start-foreground'] as const;
type Action = (typeof ACTIONS)[number];

function seconds(v: string, name: string): number {
  if (!/^\d+(\.\d+)?$/.test(v)) throw new StartupError(`${name} '${v}' is not a number of seconds`);
  return Number(v) * 1000;
}

/**
 * `conclave member [start|stop|status|restart|start-foreground] --config zoo.cfg`, like zkServer.sh.
 * Without an action the member runs in the foreground (`conclave member --config zoo.cfg`).
 */
export function registerMember(program: Command): void {
  program
    .command('member')
    .description('run an ensemble member as its own process from a zoo.cfg (start | stop | status | restart | start-foreground; no action = foreground)')
    .argument('[action]', `one of ${ACTIONS.join(', ')}`)
    .requiredOption('-c, --config <file>', 'the zoo.cfg file')
    .option('--foreground', 'with start: run in this process instead of daemonizing')
    .option('--wait <seconds>', 'start: how long to wait for the member to come up', '60')
    .option('--timeout <seconds>', 'stop: how long to wait for the member to exit after SIGTERM', '30')
    .addHelpText('after', `
Files (in dataDir): conclave_member.pid (the PID), conclave_member.json (admin URL of the running
process), conclave_member.out (output of a daemonized member; logFile= in zoo.cfg to move it).
Exit codes: 0 done; 1 a start-up problem (one line says what to fix) or a failed stop;
status: 0 running, 1 running but not answering, 3 not running.`)
    .action(async (action: string | undefined, opts: { config: string; foreground?: boolean; wait: string; timeout: string }) => {
      const a = (action ?? 'start-foreground') as Action;
      if (!ACTIONS.includes(a)) throw new StartupError(`unknown action '${action}'; use one of ${ACTIONS.join(', ')}`);
      switch (a) {
        case 'start':
          if (opts.foreground) await runForeground(opts.config);
          else await startDaemon(opts.config, { waitMs: seconds(opts.wait, '--wait') });
          return;
        case 'start-foreground':
          await runForeground(opts.config);
          return;
        case 'stop':
          await stopDaemon(opts.config, { timeoutMs: seconds(opts.timeout, '--timeout') });
          return;
        case 'restart':
          await stopDaemon(opts.config, { timeoutMs: seconds(opts.timeout, '--timeout') });
          await startDaemon(opts.config, { waitMs: seconds(opts.wait, '--wait') });
          return;
        case 'status': {
          const code = await statusDaemon(opts.config);
          if (code !== EXIT.ok) process.exitCode = code;
          return;
        }
      }
    });
}
