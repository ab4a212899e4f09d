import { createHash } from 'node:crypto';
import { Ids, type ACL } from './acl.js';
import { KeeperError, type ErrorCode, type OpResult } from './errors.js';
import { basename, childPath, parentOf, ROOT, SYSTEM_PATH } from './path.js';
import { DenseSlabs } from './slab.js';
import { copyStat, type Stat } from './stat.js';
import { NodeKind, type CreateTxn, type DeleteTxn, type SetACLTxn, type SetDataTxn, type Txn, type TxnOp } from './txn.js';
import type { Notification, WatchManager } from './watches.js';

/** One znode. Owned by the tree; never handed out (reads copy the Stat, share the data bytes). */
export interface ZNode {
  data: Uint8Array;
  acl: readonly ACL[];
  stat: Stat;
  /** Child names; the Stat's numChildren is kept equal to its size. */
  children: Set<string>;
  /** Cached sorted view of `children`, dropped on change. */
  sorted: string[] | null;
  /** Child-create counter: the next sequential suffix. */
  seq: number;
  kind: NodeKind;
  ttl: number;
}

/** A replicated session entry (ZooKeeper keeps these in the snapshot too). */
export interface SessionEntry {
  timeoutMs: number;
  origin: string;
  /**
   * Highest request id (cxid) of this session applied so far (absent: none). The leader's prep
   * drops a request at or below it, so a request resent after a failover never applies twice,
   * whichever leader sees it (snapshots written before this field existed load without it).
   */
  lastCxid?: number;
  /**
   * Results of the session's last {@link SESSION_REPLIES} applied requests, oldest first, for
   * remote sessions only (origin other than 'local'): a member answers a resent request that was
   * already applied from here. Filled by {@link DataTree.apply}, identical on every member.
   */
  replies?: SessionReply[];
}

/** One applied request of a remote session and the result it produced. */
export interface SessionReply {
  cxid: number;
  result: ApplyResult;
}

/**
 * How many results a remote session's entry keeps; a remote client keeps at most this many writes
 * outstanding, so the result of any write it may resend is still here.
 */
export const SESSION_REPLIES = 256;

/** The origin of sessions created in the member's own process (remote sessions carry an address). */
export const LOCAL_ORIGIN = 'local';

/**
 * A copy of a session entry that later applies do not change (snapshots, SNAP sync); result
 * objects are shared, they are never modified once recorded.
 */
export function copySessionEntry(e: SessionEntry): SessionEntry {
  const out: SessionEntry = { timeoutMs: e.timeoutMs, origin: e.origin };
  if (e.lastCxid !== undefined) out.lastCxid = e.lastCxid;
  if (e.replies !== undefined && e.replies.length > 0) out.replies = e.replies.slice();
  return out;
}

/**
 * What applying one txn produced, for the member to reply with. `zxid` is the txn's (set by
 * {@link DataTree.apply}); sessions use it to order a reply among the watch events they receive.
 */
export type ApplyResult = ApplyOutcome & { zxid?: bigint };

type ApplyOutcome =
  | { ok: true; op: 'create'; path: string; stat: Stat }
  | { ok: true; op: 'delete' }
  | { ok: true; op: 'setData'; stat: Stat }
  | { ok: true; op: 'setACL'; stat: Stat }
  | { ok: true; op: 'check' }
  | { ok: true; op: 'multi'; results: OpResult[] }
  | { ok: true; op: 'createSession' }
  | { ok: true; op: 'closeSession' }
  | { ok: false; code: ErrorCode; path?: string; results?: OpResult[] };

const EMPTY = new Uint8Array(0);

/** Interning of ACL lists: thousands of nodes with the same ACL share one array. */
const aclCache = new Map<string, readonly ACL[]>();
/** The last list interned and what it gave: decoded txns share one frozen ACL array (txnCodec). */
let lastAclIn: readonly ACL[] | undefined;
let lastAclOut: readonly ACL[] = [];
function internACL(acl: readonly ACL[]): readonly ACL[] {
  // Only a frozen list can be trusted to hold what it held when it was interned.
  if (acl === lastAclIn) return lastAclOut;
  let key = '';
  for (let i = 0; i < acl.length; i++) {
    const a = acl[i]!;
    key += `${a.perms}\u0000${a.scheme}\u0000${a.id}\u0001`;
  }
  let v = aclCache.get(key);
  if (v === undefined) {
    v = Object.freeze(acl.map((a) => Object.freeze({ perms: a.perms, scheme: a.scheme, id: a.id })));
    if (aclCache.size < 10_000) aclCache.set(key, v);
  }
  if (Object.isFrozen(acl) && acl.every((a) => Object.isFrozen(a))) {
    lastAclIn = acl;
    lastAclOut = v;
  }
  return v;
}

/**
 * Leaves (most znodes) share one empty, never-modified set; a node gets its own set on its first
 * child. Saves an allocation and ~100 bytes per leaf.
 */
const NO_CHILDREN: Set<string> = new Set();

function addChild(parent: ZNode, name: string): void {
  if (parent.children === NO_CHILDREN) parent.children = new Set();
  parent.children.add(name);
}

function newStat(zxid: bigint, time: number, owner: bigint, dataLength: number): Stat {
  return {
    czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: time, mtime: time,
    version: 0, cversion: 0, aversion: 0, ephemeralOwner: owner, dataLength, numChildren: 0,
  };
}

/**
 * The replicated znode tree (ZooKeeper's DataTree): an O(1) map from full path to node, the
 * ephemeral index, container/TTL sets and the session table. It changes only through
 * {@link DataTree.apply}, which every member runs on the same txns in the same order.
 */
export class DataTree {
  readonly nodes = new Map<string, ZNode>();
  readonly ephemerals = new Map<bigint, Set<string>>();
  readonly containers = new Set<string>();
  readonly ttls = new Set<string>();
  readonly sessions = new Map<bigint, SessionEntry>();
  /** zxid of the last applied txn. */
  lastZxid = 0n;
  /** Sum of data lengths (for mntr's approximate data size). */
  dataBytes = 0;
  /** Optional watch registry of the member hosting this tree. */
  watches: WatchManager | undefined;
  /** Dense slabs of values repacked by snapshot passes ({@link DataTree.records}). */
  private readonly dense = new DenseSlabs();
  /** Notifications produced by the current apply (drained by the caller). */
  readonly notifications: Notification[] = [];
  /** Whether the current apply returns copies of Stats (see apply). */
  private copyStats = true;

  constructor() {
    this.nodes.set(ROOT, this.makeNode(EMPTY, Ids.OPEN_ACL_UNSAFE, newStat(0n, 0, 0n, 0), NodeKind.Persistent, 0));
    this.addSystemNode(SYSTEM_PATH);
    this.addSystemNode(SYSTEM_PATH + '/quota');
    this.addSystemNode(SYSTEM_PATH + '/config');
  }

  private makeNode(data: Uint8Array, acl: readonly ACL[], stat: Stat, kind: NodeKind, ttl: number): ZNode {
    return { data, acl: internACL(acl), stat, children: NO_CHILDREN, sorted: null, seq: 0, kind, ttl };
  }

  private addSystemNode(path: string): void {
    const parent = this.nodes.get(parentOf(path))!;
    this.nodes.set(path, this.makeNode(EMPTY, Ids.OPEN_ACL_UNSAFE, newStat(0n, 0, 0n, 0), NodeKind.Persistent, 0));
    addChild(parent, basename(path));
    parent.sorted = null;
    parent.stat.numChildren = parent.children.size;
  }

  /** Sets the system config node's data (ensemble description); not replicated, each member writes its own view. */
  setSystemConfig(text: string): void {
    const n = this.nodes.get(SYSTEM_PATH + '/config')!;
    n.data = new TextEncoder().encode(text);
    n.stat.dataLength = n.data.length;
  }

  get(path: string): ZNode | undefined {
    return this.nodes.get(path);
  }

  /** Sorted child names (cached until the children change). */
  sortedChildren(node: ZNode): string[] {
    if (node.sorted === null) node.sorted = [...node.children].sort();
    return node.sorted;
  }

  get nodeCount(): number {
    return this.nodes.size;
  }

  get ephemeralCount(): number {
    let n = 0;
    for (const s of this.ephemerals.values()) n += s.size;
    return n;
  }

  /** Number of descendants of `path` (not counting itself), as getAllChildrenNumber. */
  countDescendants(path: string): number {
    const node = this.nodes.get(path);
    if (!node) return 0;
    let n = 0;
    const stack: string[] = [path];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const nd = this.nodes.get(p)!;
      for (const c of nd.children) {
        n++;
        stack.push(childPath(p, c));
      }
    }
    return n;
  }

  // ---------------------------------------------------------------- apply

  /**
   * Applies one committed txn. Deterministic: the result depends only on the tree and the txn.
   * Idempotent for replays over a fuzzy snapshot (creates of existing nodes and deletes of
   * missing nodes are skipped; counters are set to the absolute values the txn carries).
   *
   * `wantResult` false: the caller discards the result (no session here awaits it), so its Stat
   * may be the node's own rather than a copy — except for remote sessions, whose results are
   * recorded in the session table (replicated state) and so always copied.
   */
  apply(txn: Txn, wantResult = true): ApplyResult {
    // Replaying over a fuzzy snapshot (txn.zxid ≤ lastZxid): still apply (idempotent) but never
    // move lastZxid back.
    this.copyStats = wantResult || (txn.cxid > 0 && (this.sessions.get(txn.sessionId)?.origin ?? LOCAL_ORIGIN) !== LOCAL_ORIGIN);
    const r: ApplyResult = this.applyOp(txn, txn.op);
    r.zxid = txn.zxid;
    if (txn.cxid > 0) this.noteApplied(txn, r);
    if (txn.zxid > this.lastZxid) this.lastZxid = txn.zxid;
    return r;
  }

  /**
   * Records a session's applied request id (and, for remote sessions, its result). Only forward:
   * a replay over a fuzzy snapshot whose session table already has this request leaves it as is,
   * so the result recorded when the request first applied is the one kept.
   */
  private noteApplied(txn: Txn, r: ApplyResult): void {
    const e = this.sessions.get(txn.sessionId);
    if (e === undefined || txn.cxid <= (e.lastCxid ?? 0)) return;
    e.lastCxid = txn.cxid;
    if (e.origin === LOCAL_ORIGIN) return;
    const ring = (e.replies ??= []);
    ring.push({ cxid: txn.cxid, result: r });
    if (ring.length > SESSION_REPLIES) ring.shift();
  }

  private applyOp(txn: Txn, op: TxnOp): ApplyOutcome {
    switch (op.type) {
      case 'create': {
        const stat = this.applyCreate(txn, op);
        return stat ? { ok: true, op: 'create', path: op.path, stat } : { ok: false, code: 'NODEEXISTS', path: op.path };
      }
      case 'delete':
        return this.applyDelete(txn, op) ? { ok: true, op: 'delete' } : { ok: false, code: 'NONODE', path: op.path };
      case 'setData': {
        const stat = this.applySetData(txn, op);
        return stat ? { ok: true, op: 'setData', stat } : { ok: false, code: 'NONODE', path: op.path };
      }
      case 'setACL': {
        const stat = this.applySetACL(op);
        return stat ? { ok: true, op: 'setACL', stat } : { ok: false, code: 'NONODE', path: op.path };
      }
      case 'check':
        return { ok: true, op: 'check' };
      case 'multi': {
        const results: OpResult[] = [];
        for (const sub of op.ops) {
          switch (sub.type) {
            case 'create': this.applyCreate(txn, sub); results.push({ type: 'create', path: sub.path }); break;
            case 'delete': this.applyDelete(txn, sub); results.push({ type: 'delete' }); break;
            case 'setData': {
              const stat = this.applySetData(txn, sub);
              results.push({ type: 'setData', stat: stat ?? copyStat(this.nodes.get(sub.path)?.stat ?? newStat(0n, 0, 0n, 0)) });
              break;
            }
            case 'check': results.push({ type: 'check' }); break;
          }
        }
        return { ok: true, op: 'multi', results };
      }
      case 'error': {
        if (op.failedOp !== undefined && op.opCount !== undefined) {
          const results: OpResult[] = [];
          for (let i = 0; i < op.opCount; i++) {
            results.push({ type: 'error', code: i < op.failedOp ? 'OK' : i === op.failedOp ? op.code : 'RUNTIMEINCONSISTENCY' });
          }
          return op.path === undefined ? { ok: false, code: op.code, results } : { ok: false, code: op.code, path: op.path, results };
        }
        return op.path === undefined ? { ok: false, code: op.code } : { ok: false, code: op.code, path: op.path };
      }
      case 'createSession':
        // Kept when present: a replay over a snapshot whose session table already has the session
        // must not forget the requests it applied since (session ids are never reused).
        if (!this.sessions.has(txn.sessionId)) this.sessions.set(txn.sessionId, { timeoutMs: op.timeoutMs, origin: op.origin });
        return { ok: true, op: 'createSession' };
      case 'closeSession':
        this.killSession(txn, op.deletes);
        return { ok: true, op: 'closeSession' };
    }
  }

  private applyCreate(txn: Txn, op: CreateTxn): Stat | undefined {
    const parentPath = parentOf(op.path);
    const parent = this.nodes.get(parentPath);
    if (parent === undefined) {
      // Only possible when replaying over a fuzzy snapshot in which a later delete already removed the parent.
      return undefined;
    }
    parent.stat.cversion = op.pcv;
    if (op.pseq > parent.seq) parent.seq = op.pseq;
    // Set even when the child already exists (replay over a fuzzy snapshot that captured the parent
    // before this create): otherwise the parent keeps a stale pzxid (ZOOKEEPER-3145).
    parent.stat.pzxid = txn.zxid;
    if (this.nodes.has(op.path)) return undefined;
    const name = basename(op.path);
    const stat = newStat(txn.zxid, txn.time, op.kind === NodeKind.Ephemeral ? op.ephemeralOwner : 0n, op.data.length);
    this.nodes.set(op.path, this.makeNode(op.data, op.acl, stat, op.kind, op.ttl));
    this.dataBytes += op.data.length;
    addChild(parent, name);
    parent.sorted = null;
    parent.stat.numChildren = parent.children.size;
    if (op.kind === NodeKind.Ephemeral) {
      let set = this.ephemerals.get(op.ephemeralOwner);
      if (set === undefined) {
        set = new Set();
        this.ephemerals.set(op.ephemeralOwner, set);
      }
      set.add(op.path);
    } else if (op.kind === NodeKind.Container) {
      this.containers.add(op.path);
    } else if (op.kind === NodeKind.Ttl) {
      this.ttls.add(op.path);
    }
    const w = this.watches;
    if (w) {
      w.trigger('NodeCreated', op.path, txn.zxid, this.notifications);
      w.trigger('NodeChildrenChanged', parentPath, txn.zxid, this.notifications);
    }
    return this.copyStats ? copyStat(stat) : stat;
  }

  private applyDelete(txn: Txn, op: DeleteTxn): boolean {
    const parentPath = parentOf(op.path);
    const parent = this.nodes.get(parentPath);
    const node = this.nodes.get(op.path);
    if (parent !== undefined) {
      parent.stat.cversion = op.pcv;
      // Also when the node is already gone (fuzzy-snapshot replay), as for create (ZOOKEEPER-3145).
      parent.stat.pzxid = txn.zxid;
    }
    if (node === undefined) return false;
    if (node.children.size !== 0) {
      // Cannot happen for a txn prepared against this state; on replay the children are deleted by later txns first.
      throw new KeeperError('SYSTEMERROR', op.path, 'apply: delete of a node with children');
    }
    this.removeNode(op.path, node, parent);
    const w = this.watches;
    if (w) {
      w.trigger('NodeDeleted', op.path, txn.zxid, this.notifications);
      w.trigger('NodeChildrenChanged', parentPath, txn.zxid, this.notifications);
    }
    return true;
  }

  private removeNode(path: string, node: ZNode, parent: ZNode | undefined): void {
    this.nodes.delete(path);
    this.dataBytes -= node.data.length;
    if (parent) {
      parent.children.delete(basename(path));
      parent.sorted = null;
      parent.stat.numChildren = parent.children.size;
    }
    if (node.kind === NodeKind.Ephemeral) {
      const set = this.ephemerals.get(node.stat.ephemeralOwner);
      if (set) {
        set.delete(path);
        if (set.size === 0) this.ephemerals.delete(node.stat.ephemeralOwner);
      }
    } else if (node.kind === NodeKind.Container) {
      this.containers.delete(path);
    } else if (node.kind === NodeKind.Ttl) {
      this.ttls.delete(path);
    }
  }

  private applySetData(txn: Txn, op: SetDataTxn): Stat | undefined {
    const node = this.nodes.get(op.path);
    if (node === undefined) return undefined;
    this.dataBytes += op.data.length - node.data.length;
    node.data = op.data;
    node.stat.version = op.version;
    node.stat.mzxid = txn.zxid;
    node.stat.mtime = txn.time;
    node.stat.dataLength = op.data.length;
    if (this.watches) this.watches.trigger('NodeDataChanged', op.path, txn.zxid, this.notifications);
    return this.copyStats ? copyStat(node.stat) : node.stat;
  }

  private applySetACL(op: SetACLTxn): Stat | undefined {
    const node = this.nodes.get(op.path);
    if (node === undefined) return undefined;
    node.acl = internACL(op.acl);
    node.stat.aversion = op.aversion;
    return copyStat(node.stat);
  }

  /** closeSession: deletes the ephemerals prep listed (absolute parent cversions), then the session. */
  private killSession(txn: Txn, deletes: DeleteTxn[]): void {
    const sid = txn.sessionId;
    for (const d of deletes) this.applyDelete(txn, d);
    this.sessions.delete(sid);
    const left = this.ephemerals.get(sid);
    if (left && left.size > 0) {
      // Prep lists every ephemeral of a closing session; a leftover means prep and apply disagree.
      throw new KeeperError('SYSTEMERROR', [...left][0], `apply: closeSession left ${left.size} ephemeral(s) of session 0x${sid.toString(16)}`);
    }
  }

  // ---------------------------------------------------------------- snapshots and digests

  /**
   * Yields every node as a plain record, parents before children (a fuzzy snapshot when the
   * tree changes between chunks; replaying the log from the snapshot's start zxid fixes it up).
   */
  *records(start = this.lastZxid): Generator<SnapshotNode> {
    // In the map's insertion order, which puts a parent before its children: a node is inserted
    // only while its parent exists, and a parent is only removed once it has no children (a parent
    // created again is inserted again, before any child it then gets). Map iteration keeps that
    // order while the tree changes between chunks (a fuzzy snapshot): deleted entries not yet
    // reached are skipped, new ones come at the end. Nodes created after the snapshot began are
    // left out — replaying the log after the snapshot's zxid creates them — so a node deleted and
    // created again meanwhile is never written twice. (`start` is read when records() is called,
    // not at the first next(): a generator runs its body only then.)
    // Values that share a buffer (decode slabs, Node's Buffer pool, dense slabs the last pass
    // found mostly dead) are copied into dense slabs as the snapshot passes: a long-lived value
    // must not keep a slab of dead neighbours (a config node written between updates of a hot node pinned 8 KiB
    // for its 100 bytes). The bytes are the same; readers copy them out, so nobody sees the swap.
    const dense = this.dense;
    dense.beginPass();
    for (const [path, n] of this.nodes) {
      if (n.stat.czxid > start) continue;
      n.data = dense.repack(n.data);
      yield {
        path, data: n.data, acl: n.acl as ACL[], stat: copyStat(n.stat), seq: n.seq, kind: n.kind, ttl: n.ttl,
      };
    }
  }

  /** Loads one snapshot record (parents first). */
  loadRecord(r: SnapshotNode): void {
    if (r.path === ROOT || r.path.startsWith(SYSTEM_PATH + '/') || r.path === SYSTEM_PATH) {
      const existing = this.nodes.get(r.path);
      if (existing) {
        existing.data = r.data;
        existing.acl = internACL(r.acl);
        const kids = existing.stat.numChildren;
        existing.stat = { ...r.stat, numChildren: kids };
        existing.seq = r.seq;
        return;
      }
    }
    const parentPath = parentOf(r.path);
    const parent = this.nodes.get(parentPath);
    if (!parent) throw new KeeperError('SYSTEMERROR', r.path, 'snapshot record before its parent');
    const node = this.makeNode(r.data, r.acl, { ...r.stat, numChildren: 0 }, r.kind, r.ttl);
    node.seq = r.seq;
    this.nodes.set(r.path, node);
    this.dataBytes += r.data.length;
    addChild(parent, basename(r.path));
    parent.sorted = null;
    parent.stat.numChildren = parent.children.size;
    if (r.kind === NodeKind.Ephemeral) {
      let set = this.ephemerals.get(r.stat.ephemeralOwner);
      if (!set) {
        set = new Set();
        this.ephemerals.set(r.stat.ephemeralOwner, set);
      }
      set.add(r.path);
    } else if (r.kind === NodeKind.Container) this.containers.add(r.path);
    else if (r.kind === NodeKind.Ttl) this.ttls.add(r.path);
  }

  /**
   * A digest of the whole replicated state (nodes with data, stat and ACL, and sessions), equal on
   * replicas that applied the same txns — the equivalent of ZooKeeper's tree digest.
   */
  digest(): string {
    const h = createHash('sha256');
    const paths = [...this.nodes.keys()].sort();
    for (const p of paths) {
      if (p === SYSTEM_PATH + '/config') continue; // each member's own view of the ensemble
      const n = this.nodes.get(p)!;
      const s = n.stat;
      h.update(p);
      h.update('\0');
      h.update(n.data);
      h.update(`\0${s.czxid},${s.mzxid},${s.pzxid},${s.ctime},${s.mtime},${s.version},${s.cversion},${s.aversion},${s.ephemeralOwner},${s.numChildren},${n.seq},${n.kind},${n.ttl}\0`);
      h.update(JSON.stringify(n.acl));
    }
    const sids = [...this.sessions.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const sid of sids) h.update(`s${sid}:${this.sessions.get(sid)!.timeoutMs}`);
    return h.digest('hex');
  }
}

/** A node as stored in a snapshot. */
export interface SnapshotNode {
  path: string;
  data: Uint8Array;
  acl: ACL[];
  stat: Stat;
  seq: number;
  kind: NodeKind;
  ttl: number;
}
