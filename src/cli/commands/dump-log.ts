import type { Command } from 'commander';
import { formatZxid, parseZxid } from '../../core/zxid.js';
import { StorageError } from '../../storage/errors.js';
import { out, txnLine } from '../render.js';
import { openForDump } from './storage-open.js';

/** `conclave dump-log DIR [--from ZXID]`: the txn log, one txn per line (like zkTxnLogToolkit). */
export function registerDumpLog(program: Command): void {
  program
    .command('dump-log')
    .description("print a data directory's txn log, one txn per line: zxid, time, session, cxid, type, path, details")
    .argument('<dir>', 'data directory of a (stopped) member')
    .option('--from <zxid>', 'only txns after this zxid (decimal or 0x hex)')
    .action(async (dir: string, opts: { from?: string }) => {
      let from = 0n;
      if (opts.from !== undefined) {
        try {
          from = parseZxid(opts.from);
        } catch {
          throw new StorageError('BAD_ARGUMENT', `--from: '${opts.from}' is not a zxid (use decimal or 0x-prefixed hex)`);
        }
      }
      const { storage, state } = await openForDump(dir);
      try {
        out(`# txn log of ${dir}: after ${formatZxid(from)}; newest valid snapshot ${formatZxid(state.snapshotZxid)}, last zxid ${formatZxid(state.lastZxid)}, currentEpoch ${state.currentEpoch}, acceptedEpoch ${state.acceptedEpoch}`);
        let n = 0;
        let damaged = 0;
        let first: bigint | undefined;
        let last: bigint | undefined;
        for await (const r of storage.inspectLog(from)) {
          first ??= r.zxid;
          last = r.zxid;
          if (r.txn) {
            n++;
            out(r.problem ? `${txnLine(r.txn)}  # DAMAGED: ${r.problem}` : txnLine(r.txn));
          } else {
            damaged++;
            out(`${formatZxid(r.zxid)}  # DAMAGED: ${r.problem}`);
          }
        }
        out(`# ${n} txn(s)${first !== undefined ? ` ${formatZxid(first)}..${formatZxid(last!)}` : ''}${damaged > 0 ? `, ${damaged} damaged record(s)` : ''}`);
      } finally {
        await storage.close();
      }
    });
}
