import type { Command } from 'commander';
import { formatZxid, parseZxid } from '../../core/zxid.js';
import { StorageError } from '../../storage/errors.js';
import { hex, isoTime, nodeLine, out } from '../render.js';
import { openForDump } from './storage-open.js';

/** `conclave dump-snapshot DIR [--zxid ZXID]`: a snapshot's header and nodes (like zkSnapShotToolkit). */
export function registerDumpSnapshot(program: Command): void {
  program
    .command('dump-snapshot')
    .description("print a data directory's snapshots, then the newest valid one (or --zxid): header, sessions, each node with stat and data preview")
    .argument('<dir>', 'data directory of a (stopped) member')
    .option('--zxid <zxid>', 'dump this snapshot instead of the newest valid one')
    .option('--no-nodes', 'print the header and sessions only')
    .action(async (dir: string, opts: { zxid?: string; nodes: boolean }) => {
      let want: bigint | undefined;
      if (opts.zxid !== undefined) {
        try {
          want = parseZxid(opts.zxid);
        } catch {
          throw new StorageError('BAD_ARGUMENT', `--zxid: '${opts.zxid}' is not a zxid (use decimal or 0x-prefixed hex)`);
        }
      }
      const { storage } = await openForDump(dir);
      try {
        const list = await storage.snapshots();
        out(`# snapshots in ${dir}: ${list.length}`);
        for (const s of list) out(`#   ${formatZxid(s.zxid)}  ${s.status}${s.header ? `  ${isoTime(s.header.time)}  ${s.header.nodeCount ?? '?'} nodes` : ''}${s.problem ? `  (${s.problem})` : ''}`);
        const pick = want ?? list.find((s) => s.status === 'valid')?.zxid;
        if (pick === undefined) {
          out('# no valid snapshot');
          return;
        }
        const snap = await storage.readSnapshot(pick);
        const h = snap.header;
        out(`snapshot ${formatZxid(h.zxid)}  time=${isoTime(h.time)}  nodes=${h.nodeCount ?? '?'}  sessions=${h.sessions.length}`);
        for (const s of h.sessions) out(`session ${hex(s.id)}  timeout=${s.timeoutMs}ms  origin=${s.origin}`);
        if (!opts.nodes) return;
        let n = 0;
        let bytes = 0;
        for await (const chunk of snap.chunks()) {
          for (const node of chunk) {
            n++;
            bytes += node.data.length;
            out(nodeLine(node));
          }
        }
        out(`# ${n} node(s), ${bytes} data byte(s)`);
      } finally {
        await storage.close();
      }
    });
}
