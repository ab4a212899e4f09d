import type { ACL } from '../../core/acl.js';
import { ERROR_CODES, type ErrorCode, type OpResult } from '../../core/errors.js';
import type { MultiOpRequest, RequestOp } from '../../core/request.js';
import type { Stat } from '../../core/stat.js';
import type { ApplyResult } from '../../core/tree.js';
import type { WatchEventType, WatchKind } from '../../core/watches.js';
import type { WatchSet } from '../session.js';

/**
 * The client protocol of remote sessions: msgpack messages (objects with a string `t`) over any
 * framed, ordered connection (TCP by default). Both sides validate everything they receive; a
 * member never trusts a client, and a client checks what a member sends before acting on it.
 *
 *   client → member
 *     { t:'connect', v:1, timeoutMs, lastZxid, auth:[{scheme,credentials}],
 *       sessionId?, password?, watches?, readOnly? }   first message; with sessionId: re-attach;
 *                                                   readOnly: a member without a quorum may serve it read-only
 *     { t:'req', xid, op, … }                     one request, xid > every earlier xid of the session
 *     { t:'ping' }                                heartbeat (every timeout/3)
 *   member → client
 *     { t:'connected', sessionId, timeoutMs, password, zxid, member, window, readOnly? }
 *                                                 readOnly: served read-only (this member has no quorum)
 *     { t:'refused', code, retry, message }       then closes; retry: another member may accept
 *     { t:'res', xid, zxid, v }                   result (a write's is its ApplyResult, ok or not)
 *     { t:'res', xid, zxid, e: { code, path?, message, results? } }   request refused
 *     { t:'ev', type, path, zxid? }               watch event, in zxid order with the results
 *     { t:'pong' }
 *     { t:'bye', reason, zxid? }                  this member stops serving the session; try another
 *                                                 (zxid: re-attach only to a member at least this far)
 *     { t:'expired' }                             the session expired (or was closed elsewhere)
 *
 * A member never answers a request with CONNECTIONLOSS: when it cannot serve one it ends the
 * connection, and the client resends every unanswered request, with the same ids, to the member
 * it re-attaches to — writes apply exactly once (the session's last applied id and recent results
 * are replicated; see core/tree.ts SessionEntry).
 */

export const PROTOCOL_VERSION = 1;

/** Request kinds. */
export const REQUEST_OPS = [
  'write', 'getData', 'exists', 'getChildren', 'getACL', 'getAllChildrenNumber', 'getEphemerals',
  'sync', 'addAuth', 'addWatch', 'removeWatch', 'close',
] as const;
export type RequestKind = (typeof REQUEST_OPS)[number];

export type ClientRequest =
  | { t: 'req'; xid: number; op: 'write'; req: RequestOp }
  | { t: 'req'; xid: number; op: 'getData' | 'exists' | 'getChildren'; path: string; watch: boolean }
  | { t: 'req'; xid: number; op: 'getACL' | 'getAllChildrenNumber' | 'sync'; path: string }
  | { t: 'req'; xid: number; op: 'getEphemerals'; prefix: string }
  | { t: 'req'; xid: number; op: 'addAuth'; scheme: string; credentials: string }
  | { t: 'req'; xid: number; op: 'addWatch'; path: string; recursive: boolean }
  | { t: 'req'; xid: number; op: 'removeWatch'; kind: WatchKind; path: string }
  | { t: 'req'; xid: number; op: 'close' };

export interface ConnectMessage {
  t: 'connect';
  v: number;
  timeoutMs: number;
  lastZxid: bigint;
  auth: { scheme: string; credentials: string }[];
  sessionId?: bigint;
  password?: Uint8Array;
  watches?: WatchSet;
  /** The client accepts being served read-only by a member without a quorum (canBeReadOnly). */
  readOnly?: boolean;
}

export type ClientMessage = ConnectMessage | ClientRequest | { t: 'ping' };

export interface ConnectedMessage {
  t: 'connected';
  sessionId: bigint;
  timeoutMs: number;
  password: Uint8Array;
  zxid: bigint;
  member: number;
  /** Writes a client may keep outstanding (the session's recorded results cover that many). */
  window: number;
  /** The member's per-znode data limit (clients check requests against it before sending). */
  maxDataBytes?: number;
  /**
   * Served read-only: the member has no quorum; reads answer from its tree, writes and sync fail
   * with NOTREADONLY. The member ends the connection ('bye') when it has a quorum again.
   */
  readOnly?: boolean;
}

export interface WireError { code: ErrorCode; path?: string; message: string; results?: OpResult[] }

export type MemberMessage =
  | ConnectedMessage
  | { t: 'refused'; code: ErrorCode; retry: boolean; message: string }
  | { t: 'res'; xid: number; zxid: bigint; v: unknown }
  | { t: 'res'; xid: number; zxid: bigint; e: WireError }
  | { t: 'ev'; type: WatchEventType; path: string; zxid?: bigint }
  | { t: 'pong' }
  | { t: 'bye'; reason: string; zxid?: bigint }
  | { t: 'expired' };

// ------------------------------------------------------------------ limits

export const LIMITS = {
  /** Longest path or string field accepted (paths are checked again by the member's validation). */
  stringBytes: 64 * 1024,
  /** Auth entries in a connect message. */
  auth: 32,
  /** Paths in a re-attach's watch set (all kinds together). */
  watches: 200_000,
  /** Requests a connection may have unanswered at once. */
  outstanding: 10_000,
  passwordBytes: 64,
  /** ACL entries per node and per request (fixupACL is quadratic in an ACL's length). */
  aclEntries: 256,
  aclEntriesPerRequest: 65_536,
};

// ------------------------------------------------------------------ validation helpers

/** A protocol violation: the receiving side logs it and ends the connection. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function str(v: unknown, what: string, max = LIMITS.stringBytes): string {
  if (typeof v !== 'string') throw new ProtocolError(`${what} must be a string`);
  if (v.length > max) throw new ProtocolError(`${what} is longer than ${max} characters`);
  return v;
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new ProtocolError(`${what} must be a boolean`);
  return v;
}

function int(v: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new ProtocolError(`${what} must be an integer from ${min} to ${max}`);
  return v;
}

function zxid(v: unknown, what: string): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw new ProtocolError(`${what} must be a zxid`);
  return v;
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ProtocolError(`${what} must be bytes`);
  return v;
}

function stringList(v: unknown, what: string, budget: { left: number }): string[] {
  if (!Array.isArray(v)) throw new ProtocolError(`${what} must be an array of strings`);
  budget.left -= v.length;
  if (budget.left < 0) throw new ProtocolError(`too many watches (at most ${LIMITS.watches})`);
  return v.map((p, i) => str(p, `${what}[${i}]`));
}

/** What the other side said, for a log line (bounded). */
export function describeMessage(v: unknown): string {
  if (isObject(v)) return typeof v.t === 'string' ? `'${v.t.slice(0, 32)}'` : 'an object without t';
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

// ------------------------------------------------------------------ member side: client messages

/** A scalar field as sent (strings, numbers, booleans, bytes); anything structured becomes null (refused later). */
function scalar(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= -(1n << 63n) && v < 1n << 64n ? v : null;
  return v === undefined || v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v instanceof Uint8Array ? v : null;
}

function acl(v: unknown, budget: { left: number }): ACL[] {
  // Shapes only; the entries' meaning is checked where ACLs are (fixupACL: INVALIDACL).
  if (!Array.isArray(v)) return scalar(v) as ACL[];
  budget.left -= v.length;
  if (v.length > LIMITS.aclEntries || budget.left < 0) throw new ProtocolError(`too many ACL entries (at most ${LIMITS.aclEntries} per node, ${LIMITS.aclEntriesPerRequest} per request)`);
  const num = (x: unknown): unknown => (typeof x === 'number' ? x : null);
  const text = (x: unknown): unknown => (typeof x === 'string' ? x : null);
  return v.map((a: unknown) => (isObject(a) ? { perms: num(a.perms), scheme: text(a.scheme), id: text(a.id) } : null) as ACL);
}

function sanitizeSingle(o: Record<string, unknown>, budget: { left: number }): RequestOp {
  const path = scalar(o.path) as string;
  switch (o.type) {
    case 'create':
      return { type: 'create', path, data: scalar(o.data) as Uint8Array, acl: acl(o.acl, budget), mode: scalar(o.mode) as 0, ttl: scalar(o.ttl) as number };
    case 'delete':
    case 'check':
      return { type: o.type, path, version: scalar(o.version) as number };
    case 'setData':
      return { type: 'setData', path, data: scalar(o.data) as Uint8Array, version: scalar(o.version) as number };
    case 'setACL':
      return { type: 'setACL', path, acl: acl(o.acl, budget), version: scalar(o.version) as number };
    default:
      // validateRequestOp refuses it (BADARGUMENTS, with per-op results inside a multi).
      return { type: typeof o.type === 'string' ? o.type.slice(0, 64) : null } as unknown as RequestOp;
  }
}

/**
 * A write request as a client sent it, rebuilt from its known fields only (so that nothing else
 * travels to the leader); values are checked afterwards by validateRequestOp, which answers
 * BADARGUMENTS / INVALIDACL exactly as for local sessions.
 */
export function sanitizeWrite(v: unknown): RequestOp {
  if (!isObject(v)) return scalar(v) as RequestOp;
  const budget = { left: LIMITS.aclEntriesPerRequest };
  if (v.type === 'multi') {
    if (!Array.isArray(v.ops)) return { type: 'multi', ops: scalar(v.ops) as MultiOpRequest[] };
    if (v.ops.length > 10_000) throw new ProtocolError('a multi may hold at most 10000 ops');
    return { type: 'multi', ops: v.ops.map((o: unknown) => (isObject(o) ? sanitizeSingle(o, budget) : scalar(o)) as MultiOpRequest) };
  }
  return sanitizeSingle(v, budget);
}

/** Parses a message from a client; throws ProtocolError for anything malformed. */
export function parseClientMessage(m: unknown): ClientMessage {
  if (!isObject(m)) throw new ProtocolError(`expected a message, got ${describeMessage(m)}`);
  switch (m.t) {
    case 'ping':
      return { t: 'ping' };
    case 'connect': {
      if (m.v !== PROTOCOL_VERSION) throw new ProtocolError(`unsupported protocol version ${String(m.v).slice(0, 16)} (this member speaks ${PROTOCOL_VERSION})`);
      if (typeof m.timeoutMs !== 'number' || !Number.isFinite(m.timeoutMs) || m.timeoutMs <= 0) throw new ProtocolError('timeoutMs must be a positive number');
      const auth = m.auth === undefined ? [] : m.auth;
      if (!Array.isArray(auth) || auth.length > LIMITS.auth) throw new ProtocolError(`auth must be an array of at most ${LIMITS.auth} entries`);
      const out: ConnectMessage = {
        t: 'connect', v: PROTOCOL_VERSION, timeoutMs: m.timeoutMs, lastZxid: zxid(m.lastZxid ?? 0n, 'lastZxid'),
        auth: auth.map((a: unknown, i) => {
          if (!isObject(a)) throw new ProtocolError(`auth[${i}] must be { scheme, credentials }`);
          return { scheme: str(a.scheme, `auth[${i}].scheme`, 64), credentials: str(a.credentials, `auth[${i}].credentials`, 4096) };
        }),
      };
      if (m.readOnly !== undefined && m.readOnly !== false) out.readOnly = bool(m.readOnly, 'readOnly');
      if (m.sessionId !== undefined) {
        if (typeof m.sessionId !== 'bigint' || m.sessionId <= 0n || m.sessionId >= 1n << 64n) throw new ProtocolError('sessionId must be a session id');
        out.sessionId = m.sessionId;
        const pw = bytes(m.password, 'password');
        if (pw.length === 0 || pw.length > LIMITS.passwordBytes) throw new ProtocolError('password has a wrong length');
        out.password = pw;
        const w = m.watches ?? { data: [], exist: [], child: [], persistent: [], recursive: [] };
        if (!isObject(w)) throw new ProtocolError('watches must be an object');
        const budget = { left: LIMITS.watches };
        out.watches = {
          data: stringList(w.data ?? [], 'watches.data', budget),
          exist: stringList(w.exist ?? [], 'watches.exist', budget),
          child: stringList(w.child ?? [], 'watches.child', budget),
          persistent: stringList(w.persistent ?? [], 'watches.persistent', budget),
          recursive: stringList(w.recursive ?? [], 'watches.recursive', budget),
        };
      }
      return out;
    }
    case 'req': {
      const xid = int(m.xid, 'xid', 1);
      switch (m.op) {
        case 'write':
          return { t: 'req', xid, op: 'write', req: sanitizeWrite(m.req) };
        case 'getData':
        case 'exists':
        case 'getChildren':
          return { t: 'req', xid, op: m.op, path: str(m.path, 'path'), watch: bool(m.watch, 'watch') };
        case 'getACL':
        case 'getAllChildrenNumber':
        case 'sync':
          return { t: 'req', xid, op: m.op, path: str(m.path, 'path') };
        case 'getEphemerals':
          return { t: 'req', xid, op: 'getEphemerals', prefix: str(m.prefix, 'prefix') };
        case 'addAuth':
          return { t: 'req', xid, op: 'addAuth', scheme: str(m.scheme, 'scheme', 64), credentials: str(m.credentials, 'credentials', 4096) };
        case 'addWatch':
          return { t: 'req', xid, op: 'addWatch', path: str(m.path, 'path'), recursive: bool(m.recursive, 'recursive') };
        case 'removeWatch':
          if (m.kind !== 'data' && m.kind !== 'child' && m.kind !== 'persistent' && m.kind !== 'recursive') throw new ProtocolError("kind must be 'data', 'child', 'persistent' or 'recursive'");
          return { t: 'req', xid, op: 'removeWatch', kind: m.kind, path: str(m.path, 'path') };
        case 'close':
          return { t: 'req', xid, op: 'close' };
        default:
          throw new ProtocolError(`unknown request op ${describeMessage({ t: String(m.op) })}`);
      }
    }
    default:
      throw new ProtocolError(`unknown message ${describeMessage(m)}`);
  }
}

// ------------------------------------------------------------------ client side: member messages

const EVENT_TYPES = new Set(['NodeCreated', 'NodeDeleted', 'NodeDataChanged', 'NodeChildrenChanged']);
const STAT_BIG = ['czxid', 'mzxid', 'pzxid', 'ephemeralOwner'] as const;
const STAT_NUM = ['ctime', 'mtime', 'version', 'cversion', 'aversion', 'dataLength', 'numChildren'] as const;

function code(v: unknown, what: string): ErrorCode {
  if (typeof v !== 'string' || !ERROR_CODES.has(v)) throw new ProtocolError(`${what} is not an error code`);
  return v as ErrorCode;
}

export function checkStat(v: unknown, what = 'stat'): Stat {
  if (!isObject(v)) throw new ProtocolError(`${what} must be a Stat`);
  for (const k of STAT_BIG) if (typeof v[k] !== 'bigint') throw new ProtocolError(`${what}.${k} must be a bigint`);
  for (const k of STAT_NUM) if (typeof v[k] !== 'number') throw new ProtocolError(`${what}.${k} must be a number`);
  return v as unknown as Stat;
}

function checkOpResults(v: unknown, what: string): OpResult[] {
  if (!Array.isArray(v)) throw new ProtocolError(`${what} must be an array`);
  for (const r of v) {
    if (!isObject(r)) throw new ProtocolError(`${what} entries must be objects`);
    switch (r.type) {
      case 'create': str(r.path, `${what}.path`); break;
      case 'delete': case 'check': break;
      case 'setData': checkStat(r.stat, `${what}.stat`); break;
      case 'error':
        if (r.code !== 'OK' && r.code !== 'RUNTIMEINCONSISTENCY') code(r.code, `${what}.code`);
        break;
      default: throw new ProtocolError(`${what} has an unknown entry type`);
    }
  }
  return v as OpResult[];
}

/** A write's result as the member sent it. */
export function checkApplyResult(v: unknown): ApplyResult {
  if (!isObject(v) || typeof v.ok !== 'boolean') throw new ProtocolError('a write result must be { ok, … }');
  if (v.zxid !== undefined && typeof v.zxid !== 'bigint') throw new ProtocolError('result zxid must be a bigint');
  if (!v.ok) {
    code(v.code, 'result code');
    if (v.path !== undefined) str(v.path, 'result path');
    if (v.results !== undefined) checkOpResults(v.results, 'results');
    return v as unknown as ApplyResult;
  }
  switch (v.op) {
    case 'create': str(v.path, 'result path'); checkStat(v.stat); break;
    case 'setData': case 'setACL': checkStat(v.stat); break;
    case 'multi': checkOpResults(v.results, 'results'); break;
    case 'delete': case 'check': case 'closeSession': break;
    default: throw new ProtocolError('a write result has an unknown op');
  }
  return v as unknown as ApplyResult;
}

/** The value of a successful answer to a request of kind `op`, checked. */
export function checkValue(op: RequestKind, v: unknown): unknown {
  switch (op) {
    case 'write':
    case 'close':
      return checkApplyResult(v);
    case 'getData':
      if (!isObject(v)) throw new ProtocolError('getData answer must be { data, stat }');
      bytes(v.data, 'data');
      checkStat(v.stat);
      return v;
    case 'exists':
      return v === null ? null : checkStat(v);
    case 'getChildren':
      if (!isObject(v) || !Array.isArray(v.children)) throw new ProtocolError('getChildren answer must be { children, stat }');
      for (const c of v.children) str(c, 'child');
      checkStat(v.stat);
      return v;
    case 'getACL':
      if (!isObject(v) || !Array.isArray(v.acl)) throw new ProtocolError('getACL answer must be { acl, stat }');
      for (const a of v.acl) {
        if (!isObject(a) || typeof a.perms !== 'number') throw new ProtocolError('acl entries must be { perms, scheme, id }');
        str(a.scheme, 'acl scheme');
        str(a.id, 'acl id');
      }
      checkStat(v.stat);
      return v;
    case 'getAllChildrenNumber':
      return int(v, 'count', 0);
    case 'getEphemerals':
      if (!Array.isArray(v)) throw new ProtocolError('getEphemerals answer must be an array');
      for (const p of v) str(p, 'path');
      return v;
    case 'sync':
    case 'addAuth':
    case 'addWatch':
    case 'removeWatch':
      return undefined;
  }
}

/** Parses a message from a member; throws ProtocolError for anything malformed. */
export function parseMemberMessage(m: unknown): MemberMessage {
  if (!isObject(m)) throw new ProtocolError(`expected a message, got ${describeMessage(m)}`);
  switch (m.t) {
    case 'connected': {
      if (typeof m.sessionId !== 'bigint' || m.sessionId <= 0n) throw new ProtocolError('connected.sessionId must be a session id');
      const pw = bytes(m.password, 'connected.password');
      if (pw.length === 0 || pw.length > LIMITS.passwordBytes) throw new ProtocolError('connected.password has a wrong length');
      return {
        t: 'connected', sessionId: m.sessionId, timeoutMs: int(m.timeoutMs, 'connected.timeoutMs', 1), password: pw,
        zxid: zxid(m.zxid, 'connected.zxid'), member: int(m.member, 'connected.member', 0), window: int(m.window, 'connected.window', 1, 1 << 20),
        ...(m.maxDataBytes === undefined ? {} : { maxDataBytes: int(m.maxDataBytes, 'connected.maxDataBytes', 0) }),
        ...(m.readOnly === undefined || m.readOnly === false ? {} : { readOnly: bool(m.readOnly, 'connected.readOnly') }),
      };
    }
    case 'refused':
      return { t: 'refused', code: code(m.code, 'refused.code'), retry: bool(m.retry, 'refused.retry'), message: str(m.message ?? '', 'refused.message') };
    case 'res': {
      const xid = int(m.xid, 'res.xid', 1);
      const z = zxid(m.zxid, 'res.zxid');
      if (m.e !== undefined) {
        const e = m.e;
        if (!isObject(e)) throw new ProtocolError('res.e must be an error');
        const w: WireError = { code: code(e.code, 'res.e.code'), message: str(e.message ?? '', 'res.e.message') };
        if (e.path !== undefined) w.path = str(e.path, 'res.e.path');
        if (e.results !== undefined) w.results = checkOpResults(e.results, 'res.e.results');
        return { t: 'res', xid, zxid: z, e: w };
      }
      return { t: 'res', xid, zxid: z, v: m.v };
    }
    case 'ev': {
      if (typeof m.type !== 'string' || !EVENT_TYPES.has(m.type)) throw new ProtocolError('ev.type is not an event type');
      const ev: { t: 'ev'; type: WatchEventType; path: string; zxid?: bigint } = { t: 'ev', type: m.type as WatchEventType, path: str(m.path, 'ev.path') };
      if (m.zxid !== undefined) ev.zxid = zxid(m.zxid, 'ev.zxid');
      return ev;
    }
    case 'pong':
      return { t: 'pong' };
    case 'bye':
      return { t: 'bye', reason: str(m.reason ?? '', 'bye.reason'), ...(m.zxid === undefined ? {} : { zxid: zxid(m.zxid, 'bye.zxid') }) };
    case 'expired':
      return { t: 'expired' };
    default:
      throw new ProtocolError(`unknown message ${describeMessage(m)}`);
  }
}
