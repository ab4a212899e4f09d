/**
 * Replays one seeded simulation: `npm run sim -- --seed 42 [--members 5] [--observers 1]
 * [--steps 3000] [--clients 5] [--sync-limit 5] [--init-limit 10] [--snap-count 150] [--log-window 60] [--verbose]`. The same seed always produces the same run.
 */
import { Command } from 'commander';
import type { Logger } from '../api/log.js';
import { runSimulation } from './simulation.js';

const program = new Command()
  .name('conclave-sim')
  .description('run one deterministic simulation of an ensemble with seeded faults')
  .option('--seed <n>', 'seed', '1')
  .option('--members <n>', 'voting members', '3')
  .option('--observers <n>', 'observers', '0')
  .option('--steps <ms>', 'virtual duration of the faulty phase in ms', '3000')
  .option('--clients <n>', 'client sessions', '5')
  .option('--sync-limit <ticks>', 'syncLimit of every member', '5')
  .option('--init-limit <ticks>', 'initLimit of every member', '10')
  .option('--snap-count <n>', 'txns between snapshots (small, to exercise snapshots)', '150')
  .option('--log-window <n>', 'txns a leader keeps for DIFF (small, to exercise SNAP sync)', '60')
  .option('--runs <n>', 'run this many consecutive seeds', '1')
  .option('--no-faults', 'no crashes, partitions or message faults')
  .option('--verbose', 'print fault and lifecycle events as they happen')
  .option('--log <level>', 'print member logs at this level (debug, info, warn)')
  .option('--history', 'print the recorded client history');
program.parse();
const o = program.opts<{ seed: string; members: string; observers: string; steps: string; clients: string; syncLimit: string; initLimit: string; snapCount: string; logWindow: string; runs: string; faults: boolean; verbose?: boolean; history?: boolean; log?: string }>();

const levels = ['debug', 'info', 'warn', 'error'];
function consoleLogger(min: string, bindings: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (obj: Record<string, unknown>, msg: string): void => {
    if (levels.indexOf(level) < levels.indexOf(min)) return;
    console.error(`${level} ${msg} ${JSON.stringify({ ...bindings, ...obj }, (_k, v: unknown) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v))}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (b) => consoleLogger(min, { ...bindings, ...b }) };
}

let failed = 0;
const first = Number(o.seed);
for (let seed = first; seed < first + Number(o.runs); seed++) {
  const t0 = Date.now();
  const r = await runSimulation({
    seed, voters: Number(o.members), observers: Number(o.observers), durationMs: Number(o.steps),
    clients: Number(o.clients), syncLimit: Number(o.syncLimit), initLimit: Number(o.initLimit),
    snapCount: Number(o.snapCount), logWindow: Number(o.logWindow), faults: o.faults, verbose: o.verbose === true,
    ...(o.log ? { logger: consoleLogger(o.log) } : {}),
  });
  const line = { seed, ok: r.ok, ms: Date.now() - t0, ...r.stats, violations: r.violations };
  console.log(JSON.stringify(line));
  if (o.history) for (const e of r.history) console.log(JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  if (!r.ok) {
    failed++;
    if (!o.verbose) console.error(r.events.join('\n'));
  }
}
process.exitCode = failed > 0 ? 1 : 0;
