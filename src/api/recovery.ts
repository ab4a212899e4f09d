import { copySessionEntry, DataTree, type SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';
import { formatZxid } from '../core/zxid.js';
import { StorageError } from '../storage/errors.js';
import type { SnapshotHeader, Storage } from '../storage/types.js';
import type { Clock } from './clock.js';
import type { Logger } from './log.js';

export interface Recovered {
  tree: DataTree;
  currentEpoch: number;
  acceptedEpoch: number;
  snapshotZxid: bigint;
  lastZxid: bigint;
  /** The last `window` txns replayed (for ZAB's DIFF window). */
  recentLog: Txn[];
  /** The zxid `recentLog` follows: it holds every logged txn in (recentFrom, lastZxid] (recentFrom = lastZxid when empty). */
  recentFrom: bigint;
}

/**
 * Recovery: the newest valid snapshot, then every logged txn after it (replay is idempotent for
 * the txns a fuzzy snapshot already contains). With `upTo`, stops there (rebuild after TRUNC).
 * Progress is logged for large trees.
 */
export async function loadTree(storage: Storage, log: Logger, window: number, upTo?: bigint): Promise<Recovered> {
  const st = await storage.open().catch((e: Error) => {
    // Storage errors already name the directory and say what to do; keep their type and code.
    if (e instanceof StorageError) throw e;
    throw new Error(`cannot open storage ${storage.description}: ${e.message}`);
  });
  for (const d of st.damage ?? []) {
    const level = d.kind === 'snapshot-unfinished' ? 'info' : d.kind === 'log-before-snapshot-damaged' ? 'warn' : 'error';
    log[level]({ storage: storage.description, where: d.where, detail: d.detail, action: d.action }, `storage damage found on open: ${d.kind}`);
  }
  const tree = new DataTree();
  let snapshotZxid = 0n;
  const snap = await storage.latestSnapshot();
  if (snap) {
    const t0 = Date.now();
    let n = 0;
    let lastReport = t0;
    for await (const chunk of snap.chunks()) {
      for (const rec of chunk) tree.loadRecord(rec);
      n += chunk.length;
      if (Date.now() - lastReport > 2000) {
        lastReport = Date.now();
        log.info({ loaded: n, of: snap.header.nodeCount }, 'loading snapshot');
      }
    }
    for (const s of snap.header.sessions) tree.sessions.set(s.id, copySessionEntry(s));
    tree.lastZxid = snap.header.zxid;
    snapshotZxid = snap.header.zxid;
    log.info({ zxid: formatZxid(snapshotZxid), nodes: n, ms: Date.now() - t0 }, 'snapshot loaded');
  }
  if (upTo !== undefined && snapshotZxid > upTo) {
    throw new Error(`newest snapshot ${formatZxid(snapshotZxid)} is past ${formatZxid(upTo)}; cannot rebuild the tree`);
  }
  const recent: Txn[] = [];
  // The zxid just before recent[0]: the snapshot's, until txns are dropped from the front.
  let recentFrom = snapshotZxid;
  const keepLast = (n: number): void => {
    const drop = recent.length - n;
    if (drop <= 0) return;
    recentFrom = recent[drop - 1]!.zxid;
    recent.splice(0, drop);
  };
  let replayed = 0;
  let lastZxid = snapshotZxid;
  outer: for await (const batch of storage.readLog(snapshotZxid)) {
    for (const txn of batch) {
      if (upTo !== undefined && txn.zxid > upTo) break outer;
      tree.apply(txn, false);
      lastZxid = txn.zxid;
      replayed++;
      if (window > 0) {
        recent.push(txn);
        if (recent.length > window * 2) keepLast(window);
      }
    }
  }
  tree.notifications.length = 0;
  if (replayed > 0) log.info({ txns: replayed, lastZxid: formatZxid(lastZxid) }, 'log replayed');
  if (window > 0) keepLast(window);
  else recentFrom = lastZxid;
  return { tree, currentEpoch: st.currentEpoch, acceptedEpoch: st.acceptedEpoch, snapshotZxid, lastZxid, recentLog: recent, recentFrom };
}

/**
 * A fuzzy snapshot: the zxid is taken now; nodes are streamed in chunks, yielding to the event
 * loop between chunks so that writes continue meanwhile.
 *
 * The session table is taken again once the last chunk was produced (the storages read the
 * header after consuming the chunks): a session's recorded results must be those of the txns'
 * first application, and replaying a txn of the fuzzy window over nodes that already reflect it
 * can produce a different one (a create finds its node: NODEEXISTS). A table taken at the end
 * already holds those requests, and replay leaves them alone (DataTree.noteApplied). Replay from
 * `zxid` is still right for it: applies after the table's point only move it forward, and the
 * window is committed, so never truncated.
 */
export async function takeSnapshot(tree: DataTree, storage: Storage, clock: Clock, log: Logger): Promise<SnapshotHeader> {
  const sessionTable = (): SnapshotHeader['sessions'] => [...tree.sessions].map(([id, e]) => ({ id, ...copySessionEntry(e) }));
  const header: SnapshotHeader = {
    zxid: tree.lastZxid,
    time: clock.now(),
    sessions: [], // taken once the node stream ends (below); storages read it after the chunks
    nodeCount: tree.nodeCount,
  };
  const it = tree.records();
  async function* chunks(): AsyncGenerator<SnapshotNode[]> {
    for (;;) {
      const chunk: SnapshotNode[] = [];
      // Small chunks: the records (a stat copy each) are short-lived garbage, gone before the
      // next minor GC of a busy member rather than copied by it.
      for (let i = 0; i < 1000; i++) {
        const r = it.next();
        if (r.done) {
          header.sessions = sessionTable();
          if (chunk.length > 0) yield chunk;
          return;
        }
        chunk.push(r.value);
      }
      yield chunk;
      await clock.yield();
    }
  }
  log.debug({ zxid: formatZxid(header.zxid), nodes: header.nodeCount }, 'snapshot starting');
  await storage.writeSnapshot(header, chunks());
  return header;
}
