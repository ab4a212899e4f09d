import { checkACL, fixupACL, Perms, type ACL } from './acl.js';
import { isContainerMode, isEphemeralMode, isSequential, isTtlMode } from './createMode.js';
import { KeeperError } from './errors.js';
import { parentOf, sequenceSuffix, validatePath } from './path.js';
import type {
  CheckRequest, CreateRequest, DeleteRequest, MultiOpRequest, Request, SetACLRequest, SetDataRequest,
} from './request.js';
import type { DataTree } from './tree.js';
import { NodeKind, type CheckTxn, type CreateTxn, type DeleteTxn, type SetDataTxn, type TxnOp } from './txn.js';

/**
 * The state of one path as prep sees it: the applied tree plus every txn prepared but not yet
 * applied (ZooKeeper's ChangeRecord / outstandingChanges).
 */
interface ChangeRecord {
  zxid: bigint;
  path: string;
  exists: boolean;
  version: number;
  cversion: number;
  aversion: number;
  childCount: number;
  seq: number;
  acl: readonly ACL[];
  ephemeralOwner: bigint;
  kind: NodeKind;
  /** mtime as prep knows it (for TTL reaping decisions). */
  mtime: number;
  ttl: number;
}

/**
 * The leader's request processor (ZooKeeper's PrepRequestProcessor): validates a request against
 * the latest *proposed* state — versions, ACLs, existence, sequential names, session liveness —
 * and turns it into a txn that every member can apply without deciding anything. A request that
 * fails here still becomes a txn (an error txn) so that the session's replies stay in order.
 */
export class Preparer {
  /** path → latest outstanding record. */
  private readonly changes = new Map<string, ChangeRecord>();
  /** Outstanding records in zxid order, to drop as txns are applied. */
  private readonly queue: ChangeRecord[] = [];
  private queueHead = 0;
  /** Sessions whose createSession is prepared but not applied. */
  private readonly pendingSessions = new Map<bigint, bigint>();
  /** Sessions whose closeSession is prepared (further writes fail with SESSIONEXPIRED). */
  private readonly closing = new Map<bigint, bigint>();
  /** Records staged by the request being prepared (committed to `changes` only if it succeeds). */
  private readonly scratch = new Map<string, ChangeRecord>();
  /** Request ids prepared in this leadership, per session (a bounded window), to drop duplicates. */
  private readonly seen = new Map<bigint, { ids: Set<number>; order: number[] }>();

  constructor(private readonly tree: DataTree) {}

  /** Number of txns prepared but not yet applied. */
  get outstanding(): number {
    return this.queue.length - this.queueHead;
  }

  /** Forget everything prepared (on losing leadership; the new leader starts from its log). */
  reset(): void {
    this.changes.clear();
    this.queue.length = 0;
    this.queueHead = 0;
    this.pendingSessions.clear();
    this.closing.clear();
    this.seen.clear();
  }

  /**
   * True when this (session, request id) was already applied, or prepared in this leadership: a
   * network that duplicates a forwarded request, or a client that resends one, must not make a
   * write apply twice. Internal requests (id ≤ 0)
   * are never duplicates.
   */
  isDuplicate(req: Request): boolean {
    if (req.cxid <= 0) return false;
    // Applied already, maybe under an earlier leader: a remote client resends its unanswered
    // requests with their ids after a failover (the serving member answers those from the
    // session's recorded results, or from the original's commit).
    const applied = this.tree.sessions.get(req.sessionId)?.lastCxid;
    if (applied !== undefined && req.cxid <= applied) return true;
    let s = this.seen.get(req.sessionId);
    if (!s) {
      s = { ids: new Set(), order: [] };
      this.seen.set(req.sessionId, s);
    }
    if (s.ids.has(req.cxid)) return true;
    s.ids.add(req.cxid);
    s.order.push(req.cxid);
    if (s.order.length > 256) s.ids.delete(s.order.shift()!);
    return false;
  }

  /** Called after the txn with `zxid` was applied to the tree: its records are now redundant. */
  applied(zxid: bigint): void {
    while (this.queueHead < this.queue.length && this.queue[this.queueHead]!.zxid <= zxid) {
      const r = this.queue[this.queueHead++]!;
      if (this.changes.get(r.path) === r) this.changes.delete(r.path);
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
    for (const [sid, z] of this.pendingSessions) if (z <= zxid) this.pendingSessions.delete(sid);
    for (const [sid, z] of this.closing) if (z <= zxid) this.closing.delete(sid);
  }

  /** True when the session exists (applied or prepared) and is not closing. */
  sessionLive(sid: bigint): boolean {
    if (this.closing.has(sid)) return false;
    return this.tree.sessions.has(sid) || this.pendingSessions.has(sid);
  }

  private record(path: string, overlay?: Map<string, ChangeRecord>): ChangeRecord | undefined {
    const o = overlay?.get(path);
    if (o) return o.exists ? o : undefined;
    const c = this.changes.get(path);
    if (c) return c.exists ? c : undefined;
    const n = this.tree.get(path);
    if (!n) return undefined;
    return {
      zxid: 0n, path, exists: true, version: n.stat.version, cversion: n.stat.cversion, aversion: n.stat.aversion,
      childCount: n.children.size, seq: n.seq, acl: n.acl, ephemeralOwner: n.stat.ephemeralOwner, kind: n.kind,
      mtime: n.stat.mtime, ttl: n.ttl,
    };
  }

  /** Whether the path exists in the latest proposed state (no allocation). */
  private exists(path: string, overlay?: Map<string, ChangeRecord>): boolean {
    const o = overlay?.get(path);
    if (o) return o.exists;
    const c = this.changes.get(path);
    if (c) return c.exists;
    return this.tree.get(path) !== undefined;
  }

  private need(path: string, overlay?: Map<string, ChangeRecord>): ChangeRecord {
    const r = this.record(path, overlay);
    if (!r) throw new KeeperError('NONODE', path);
    return r;
  }

  private stage(overlay: Map<string, ChangeRecord>, r: ChangeRecord): void {
    overlay.set(r.path, r);
  }

  private commit(overlay: Map<string, ChangeRecord>, zxid: bigint): void {
    for (const r of overlay.values()) {
      r.zxid = zxid;
      this.changes.set(r.path, r);
      this.queue.push(r);
    }
  }

  /**
   * Turns a request into the txn op to propose at `zxid`. Never throws for semantic failures:
   * they become `{ type: 'error' }` txns. `now` is the leader's clock (for TTL decisions).
   */
  prepare(req: Request, zxid: bigint, now: number): TxnOp {
    const op = req.op;
    // prepare() is synchronous and not re-entrant: one staging map serves every request.
    const overlay = this.scratch;
    overlay.clear();
    try {
      switch (op.type) {
        case 'createSession':
          this.pendingSessions.set(req.sessionId, zxid);
          return { type: 'createSession', timeoutMs: op.timeoutMs, origin: op.origin };
        case 'closeSession': {
          if (!this.tree.sessions.has(req.sessionId) && !this.pendingSessions.has(req.sessionId)) {
            throw new KeeperError('SESSIONEXPIRED');
          }
          if (this.closing.has(req.sessionId)) throw new KeeperError('SESSIONEXPIRED');
          const deletes = this.prepCloseSession(req.sessionId, overlay);
          this.closing.set(req.sessionId, zxid);
          this.seen.delete(req.sessionId);
          this.commit(overlay, zxid);
          return { type: 'closeSession', reason: op.reason, deletes };
        }
        case 'reap': {
          const t = this.prepReap(op.path, op.ttl, now, overlay);
          this.commit(overlay, zxid);
          return t;
        }
        default:
          break;
      }
      if (!this.sessionLive(req.sessionId)) throw new KeeperError('SESSIONEXPIRED');
      if (op.type === 'multi') {
        const ops: (CreateTxn | DeleteTxn | SetDataTxn | CheckTxn)[] = [];
        for (let i = 0; i < op.ops.length; i++) {
          try {
            ops.push(this.prepOne(req, op.ops[i]!, overlay));
          } catch (e) {
            if (!(e instanceof KeeperError)) throw e;
            const t: TxnOp = { type: 'error', code: e.code, failedOp: i, opCount: op.ops.length };
            if (e.path !== undefined) t.path = e.path;
            return t;
          }
        }
        this.commit(overlay, zxid);
        return { type: 'multi', ops };
      }
      if (op.type === 'setACL') {
        const t = this.prepSetACL(req, op, overlay);
        this.commit(overlay, zxid);
        return t;
      }
      const t = this.prepOne(req, op, overlay);
      this.commit(overlay, zxid);
      return t;
    } catch (e) {
      if (!(e instanceof KeeperError)) throw e;
      const t: TxnOp = { type: 'error', code: e.code };
      if (e.path !== undefined) t.path = e.path;
      return t;
    }
  }

  private prepOne(req: Request, op: MultiOpRequest, overlay: Map<string, ChangeRecord>): CreateTxn | DeleteTxn | SetDataTxn | CheckTxn {
    switch (op.type) {
      case 'create': return this.prepCreate(req, op, overlay);
      case 'delete': return this.prepDelete(req, op, overlay);
      case 'setData': return this.prepSetData(req, op, overlay);
      case 'check': return this.prepCheck(req, op, overlay);
    }
  }

  private prepCreate(req: Request, op: CreateRequest, overlay: Map<string, ChangeRecord>): CreateTxn {
    const acl = fixupACL(op.path, op.acl, req.auth);
    const parentPath = parentOf(op.path.endsWith('/') ? op.path + '0' : op.path);
    const parent = this.need(parentPath, overlay);
    checkACL(parent.acl, Perms.CREATE, req.auth, op.path);
    let path = op.path;
    if (isSequential(op.mode)) {
      path += sequenceSuffix(parent.seq);
      validatePath(path);
    }
    if (this.exists(path, overlay)) throw new KeeperError('NODEEXISTS', path);
    if (parent.kind === NodeKind.Ephemeral) throw new KeeperError('NOCHILDRENFOREPHEMERALS', path);
    const kind: NodeKind = isEphemeralMode(op.mode) ? NodeKind.Ephemeral
      : isContainerMode(op.mode) ? NodeKind.Container
        : isTtlMode(op.mode) ? NodeKind.Ttl : NodeKind.Persistent;
    const owner = kind === NodeKind.Ephemeral ? req.sessionId : 0n;
    const np: ChangeRecord = { ...parent, cversion: parent.cversion + 1, seq: parent.seq + 1, childCount: parent.childCount + 1 };
    this.stage(overlay, np);
    this.stage(overlay, {
      zxid: 0n, path, exists: true, version: 0, cversion: 0, aversion: 0, childCount: 0, seq: 0, acl,
      ephemeralOwner: owner, kind, mtime: 0, ttl: kind === NodeKind.Ttl ? op.ttl : 0,
    });
    return {
      type: 'create', path, data: op.data, acl, ephemeralOwner: owner, kind, ttl: kind === NodeKind.Ttl ? op.ttl : 0,
      pcv: np.cversion, pseq: np.seq,
    };
  }

  private prepDelete(req: Request, op: DeleteRequest, overlay: Map<string, ChangeRecord>): DeleteTxn {
    const parentPath = parentOf(op.path);
    const parent = this.need(parentPath, overlay);
    checkACL(parent.acl, Perms.DELETE, req.auth, op.path);
    const node = this.need(op.path, overlay);
    if (op.version !== -1 && op.version !== node.version) throw new KeeperError('BADVERSION', op.path);
    if (node.childCount > 0) throw new KeeperError('NOTEMPTY', op.path);
    return this.stageDelete(op.path, parent, node, overlay);
  }

  private stageDelete(path: string, parent: ChangeRecord, node: ChangeRecord, overlay: Map<string, ChangeRecord>): DeleteTxn {
    const np: ChangeRecord = { ...parent, cversion: parent.cversion + 1, childCount: parent.childCount - 1 };
    this.stage(overlay, np);
    this.stage(overlay, { ...node, exists: false });
    return { type: 'delete', path, pcv: np.cversion };
  }

  private prepSetData(req: Request, op: SetDataRequest, overlay: Map<string, ChangeRecord>): SetDataTxn {
    const node = this.need(op.path, overlay);
    checkACL(node.acl, Perms.WRITE, req.auth, op.path);
    if (op.version !== -1 && op.version !== node.version) throw new KeeperError('BADVERSION', op.path);
    const version = node.version + 1;
    this.stage(overlay, { ...node, version });
    return { type: 'setData', path: op.path, data: op.data, version };
  }

  private prepCheck(req: Request, op: CheckRequest, overlay: Map<string, ChangeRecord>): CheckTxn {
    const node = this.need(op.path, overlay);
    checkACL(node.acl, Perms.READ, req.auth, op.path);
    if (op.version !== -1 && op.version !== node.version) throw new KeeperError('BADVERSION', op.path);
    return { type: 'check', path: op.path };
  }

  private prepSetACL(req: Request, op: SetACLRequest, overlay: Map<string, ChangeRecord>): TxnOp {
    const acl = fixupACL(op.path, op.acl, req.auth);
    const node = this.need(op.path, overlay);
    checkACL(node.acl, Perms.ADMIN, req.auth, op.path);
    if (op.version !== -1 && op.version !== node.aversion) throw new KeeperError('BADVERSION', op.path);
    const aversion = node.aversion + 1;
    this.stage(overlay, { ...node, acl, aversion });
    return { type: 'setACL', path: op.path, acl, aversion };
  }

  /** The session's ephemerals (applied and prepared), deleted with absolute parent cversions. */
  private prepCloseSession(sid: bigint, overlay: Map<string, ChangeRecord>): DeleteTxn[] {
    const paths = new Set<string>(this.tree.ephemerals.get(sid) ?? []);
    for (const r of this.changes.values()) {
      if (r.kind !== NodeKind.Ephemeral || r.ephemeralOwner !== sid) continue;
      if (r.exists) paths.add(r.path);
      else paths.delete(r.path);
    }
    const deletes: DeleteTxn[] = [];
    for (const path of [...paths].sort()) {
      const node = this.record(path, overlay);
      if (!node) continue;
      const parent = this.need(parentOf(path), overlay);
      deletes.push(this.stageDelete(path, parent, node, overlay));
    }
    return deletes;
  }

  /** Container with no children (that once had some), or TTL node untouched for ttl ms with no children. */
  private prepReap(path: string, ttl: boolean, now: number, overlay: Map<string, ChangeRecord>): TxnOp {
    const node = this.need(path, overlay);
    if (node.childCount > 0) throw new KeeperError('NOTEMPTY', path);
    if (ttl) {
      if (node.kind !== NodeKind.Ttl) throw new KeeperError('BADARGUMENTS', path);
      // mtime of a node changed by an outstanding txn is not known yet: wait for the next scan.
      if (this.changes.has(path)) throw new KeeperError('BADVERSION', path);
      const n = this.tree.get(path);
      if (!n || now - n.stat.mtime <= n.ttl) throw new KeeperError('BADVERSION', path);
    } else {
      if (node.kind !== NodeKind.Container || node.cversion === 0) throw new KeeperError('BADARGUMENTS', path);
    }
    const parent = this.need(parentOf(path), overlay);
    return this.stageDelete(path, parent, node, overlay);
  }
}
