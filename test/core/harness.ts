/**
 * A single-member write path made of the pure core only: validate → prep (leader) → txn with a
 * zxid → apply (every member) → notifications. What the member does, without timers or I/O, so
 * that core tests can check exact Stat values, txns and watch notifications.
 */
import type { AuthId } from '../../src/core/acl.js';
import { Ids } from '../../src/core/acl.js';
import type { CreateMode } from '../../src/core/createMode.js';
import { Preparer } from '../../src/core/prep.js';
import { validateRequestOp, type MultiOpRequest, type RequestOp } from '../../src/core/request.js';
import { DataTree, type ApplyResult } from '../../src/core/tree.js';
import type { Txn, TxnOp } from '../../src/core/txn.js';
import { WatchManager, type Notification } from '../../src/core/watches.js';
import { makeZxid } from '../../src/core/zxid.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export const MAX_DATA = 1024 * 1024;

export class Core {
  readonly tree = new DataTree();
  readonly watches = new WatchManager();
  readonly prep = new Preparer(this.tree);
  /** Every txn applied, in order. */
  readonly log: Txn[] = [];
  /** Notifications of the last txn. */
  notes: Notification[] = [];
  private counter = 0;
  /** The leader's clock; each txn advances it by 1000 ms so that ctime/mtime are distinguishable. */
  now = 1_700_000_000_000;

  constructor() {
    this.tree.watches = this.watches;
  }

  /** The zxid the next txn will get (epoch 1). */
  get nextZxid(): bigint {
    return makeZxid(1, this.counter + 1);
  }

  /** Runs one request through the whole pipeline and returns what apply produced. */
  run(sessionId: bigint, op: RequestOp, auth: AuthId[] = []): ApplyResult {
    validateRequestOp(op, MAX_DATA);
    return this.raw(sessionId, op, auth);
  }

  /** prep + apply without request validation (for leader-internal requests). */
  raw(sessionId: bigint, op: RequestOp, auth: AuthId[] = []): ApplyResult {
    const zxid = makeZxid(1, ++this.counter);
    this.now += 1000;
    const txnOp: TxnOp = this.prep.prepare({ sessionId, cxid: this.counter, op, auth }, zxid, this.now);
    const txn: Txn = { zxid, sessionId, cxid: this.counter, time: this.now, op: txnOp };
    this.log.push(txn);
    const r = this.tree.apply(txn);
    this.prep.applied(zxid);
    this.notes = this.tree.notifications.splice(0);
    return r;
  }

  /** Prepares without applying (the txn is outstanding), returning the txn to apply later. */
  prepareOnly(sessionId: bigint, op: RequestOp, auth: AuthId[] = []): Txn {
    if (op.type !== 'closeSession' && op.type !== 'createSession' && op.type !== 'reap') validateRequestOp(op, MAX_DATA);
    const zxid = makeZxid(1, ++this.counter);
    this.now += 1000;
    const txnOp = this.prep.prepare({ sessionId, cxid: this.counter, op, auth }, zxid, this.now);
    return { zxid, sessionId, cxid: this.counter, time: this.now, op: txnOp };
  }

  applyPrepared(txn: Txn): ApplyResult {
    this.log.push(txn);
    const r = this.tree.apply(txn);
    this.prep.applied(txn.zxid);
    this.notes = this.tree.notifications.splice(0);
    return r;
  }

  openSession(sid: bigint, timeoutMs = 10_000): void {
    const r = this.raw(sid, { type: 'createSession', timeoutMs, origin: 'local' });
    if (!r.ok) throw new Error('createSession failed: ' + r.code);
  }

  closeSession(sid: bigint, reason: 'close' | 'expire' = 'close'): ApplyResult {
    return this.raw(sid, { type: 'closeSession', reason });
  }
}

export function create(path: string, data = '', opts: { mode?: CreateMode; acl?: { perms: number; scheme: string; id: string }[]; ttl?: number } = {}): RequestOp {
  return { type: 'create', path, data: enc(data), acl: opts.acl ?? [...Ids.OPEN_ACL_UNSAFE], mode: opts.mode ?? 0, ttl: opts.ttl ?? 0 };
}
export function del(path: string, version = -1): RequestOp {
  return { type: 'delete', path, version };
}
export function set(path: string, data: string, version = -1): RequestOp {
  return { type: 'setData', path, data: enc(data), version };
}
export function setAcl(path: string, acl: { perms: number; scheme: string; id: string }[], version = -1): RequestOp {
  return { type: 'setACL', path, acl, version };
}
export function check(path: string, version: number): MultiOpRequest {
  return { type: 'check', path, version };
}
export function multi(...ops: RequestOp[]): RequestOp {
  return { type: 'multi', ops: ops as MultiOpRequest[] };
}

/** Asserts an apply result is a success and returns it narrowed. */
export function ok<T extends ApplyResult>(r: T): Extract<T, { ok: true }> {
  if (!r.ok) throw new Error(`expected success, got ${r.code}${r.path ? ' at ' + r.path : ''}`);
  return r as Extract<T, { ok: true }>;
}

/** Asserts an apply result failed with `code` and returns it. */
export function fails(r: ApplyResult, code: string): Extract<ApplyResult, { ok: false }> {
  if (r.ok) throw new Error(`expected ${code}, got success (${r.op})`);
  if (r.code !== code) throw new Error(`expected ${code}, got ${r.code}`);
  return r;
}
