import type { ACL, AuthId } from './acl.js';
import { isTtlMode, isValidMode, MAX_TTL_MS, type CreateMode } from './createMode.js';
import { KeeperError } from './errors.js';
import { isUnder, SYSTEM_PATH, validatePath } from './path.js';

/** Write requests as a session sends them (reads never leave the serving member). */
export interface CreateRequest { type: 'create'; path: string; data: Uint8Array; acl: ACL[]; mode: CreateMode; ttl: number }
export interface DeleteRequest { type: 'delete'; path: string; version: number }
export interface SetDataRequest { type: 'setData'; path: string; data: Uint8Array; version: number }
export interface SetACLRequest { type: 'setACL'; path: string; acl: ACL[]; version: number }
export interface CheckRequest { type: 'check'; path: string; version: number }
export type MultiOpRequest = CreateRequest | DeleteRequest | SetDataRequest | CheckRequest;
export interface MultiRequest { type: 'multi'; ops: MultiOpRequest[] }
export interface CreateSessionRequest { type: 'createSession'; timeoutMs: number; origin: string }
export interface CloseSessionRequest { type: 'closeSession'; reason: 'close' | 'expire' }
/** Leader-internal: delete an empty container or an expired TTL node if it still qualifies. */
export interface ReapRequest { type: 'reap'; path: string; ttl: boolean }

export type RequestOp =
  | CreateRequest | DeleteRequest | SetDataRequest | SetACLRequest | CheckRequest | MultiRequest
  | CreateSessionRequest | CloseSessionRequest | ReapRequest;

/** A write on its way to the leader's prep, with the identities the serving member authenticated. */
export interface Request {
  sessionId: bigint;
  cxid: number;
  op: RequestOp;
  auth: AuthId[];
}

export const MAX_VERSION = 0x7fffffff;

function checkVersion(v: unknown, path: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -1 || v > MAX_VERSION) {
    throw new KeeperError('BADARGUMENTS', path, `version must be an integer from -1 (any) to ${MAX_VERSION}`);
  }
}

function checkData(d: unknown, path: string, maxDataBytes: number): number {
  if (!(d instanceof Uint8Array)) throw new KeeperError('BADARGUMENTS', path, 'data must be a Uint8Array or a string');
  if (d.length > maxDataBytes) {
    throw new KeeperError('BADARGUMENTS', path, `data is ${d.length} bytes; the limit is ${maxDataBytes} (maxDataBytes)`);
  }
  return d.length;
}

function checkAclShape(acl: unknown, path: string): void {
  // Not an array at all is a wrong argument type (BADARGUMENTS); an array with bad entries is
  // INVALIDACL, as the leader's fixupACL would say. Entries are checked for their shape here, so
  // that nothing a follower forwards to the leader fails to encode (the leader checks meaning).
  if (!Array.isArray(acl)) throw new KeeperError('BADARGUMENTS', path, 'acl must be an array of { perms, scheme, id }');
  for (const a of acl as unknown[]) {
    const e = a as { perms?: unknown; scheme?: unknown; id?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.perms !== 'number' || typeof e.scheme !== 'string' || typeof e.id !== 'string') {
      throw new KeeperError('INVALIDACL', path, 'every ACL entry must be { perms: number, scheme: string, id: string }');
    }
  }
}

function checkWritable(path: string): void {
  if (isUnder(path, SYSTEM_PATH)) throw new KeeperError('BADARGUMENTS', path, `${SYSTEM_PATH} is reserved for the system`);
}

/**
 * Validates the shape of a write request before anything else looks at it (the serving
 * member runs this on every request from a session, local or remote; bad input never
 * reaches the leader). Throws BADARGUMENTS / INVALIDACL.
 */
export function validateRequestOp(op: unknown, maxDataBytes: number): asserts op is RequestOp {
  if (op === null || typeof op !== 'object') throw new KeeperError('BADARGUMENTS', undefined, 'request must be an object');
  const o = op as { type?: unknown };
  switch (o.type) {
    case 'create': case 'delete': case 'setData': case 'setACL': case 'check':
      validateSingle(op as MultiOpRequest | SetACLRequest, maxDataBytes, false);
      return;
    case 'multi': {
      const ops = (op as { ops?: unknown }).ops;
      if (!Array.isArray(ops)) throw new KeeperError('BADARGUMENTS', undefined, 'multi needs an array of ops');
      if (ops.length > 10_000) throw new KeeperError('BADARGUMENTS', undefined, 'a multi may hold at most 10000 ops');
      let total = 0;
      ops.forEach((sub: unknown, i: number) => {
        const t = (sub as { type?: unknown } | null)?.type;
        if (t !== 'create' && t !== 'delete' && t !== 'setData' && t !== 'check') {
          throw multiError(new KeeperError('BADARGUMENTS', undefined, `multi op ${i} has an unknown type (use op.create/delete/setData/check)`), i, ops.length);
        }
        try {
          total += validateSingle(sub as MultiOpRequest, maxDataBytes, true);
        } catch (e) {
          throw e instanceof KeeperError ? multiError(e, i, ops.length) : e;
        }
      });
      if (total > maxDataBytes) {
        throw new KeeperError('BADARGUMENTS', undefined, `multi carries ${total} bytes of data; the limit is ${maxDataBytes} (maxDataBytes)`);
      }
      return;
    }
    default:
      throw new KeeperError('BADARGUMENTS', undefined, `unknown request type ${JSON.stringify(o.type)}`);
  }
}

function multiError(e: KeeperError, failed: number, count: number): KeeperError {
  e.results = Array.from({ length: count }, (_, i) => ({
    type: 'error' as const,
    code: i < failed ? ('OK' as const) : i === failed ? e.code : ('RUNTIMEINCONSISTENCY' as const),
  }));
  return e;
}

function validateSingle(op: MultiOpRequest | SetACLRequest, maxDataBytes: number, inMulti: boolean): number {
  switch (op.type) {
    case 'create': {
      if (!isValidMode(op.mode)) throw new KeeperError('BADARGUMENTS', String(op.path), 'mode must be a CreateMode value');
      const seq = op.mode === 2 || op.mode === 3 || op.mode === 6;
      validatePath(op.path, seq);
      // '/' itself exists; a sequential create on '/' names a child of the root ('/0000000003'), as in ZooKeeper.
      if (op.path === '/' && !seq) throw new KeeperError('NODEEXISTS', '/');
      checkWritable(op.path);
      const n = checkData(op.data, op.path, maxDataBytes);
      checkAclShape(op.acl, op.path);
      if (isTtlMode(op.mode)) {
        if (typeof op.ttl !== 'number' || !Number.isInteger(op.ttl) || op.ttl <= 0 || op.ttl > MAX_TTL_MS) {
          throw new KeeperError('BADARGUMENTS', op.path, `ttlMs must be an integer from 1 to ${MAX_TTL_MS} for TTL modes`);
        }
      } else if (op.ttl !== 0) {
        throw new KeeperError('BADARGUMENTS', op.path, 'ttlMs is only allowed with PERSISTENT_WITH_TTL or PERSISTENT_SEQUENTIAL_WITH_TTL');
      }
      return n;
    }
    case 'delete':
      validatePath(op.path);
      if (op.path === '/') throw new KeeperError('BADARGUMENTS', '/', 'the root cannot be deleted');
      checkWritable(op.path);
      checkVersion(op.version, op.path);
      return 0;
    case 'setData': {
      validatePath(op.path);
      checkWritable(op.path);
      checkVersion(op.version, op.path);
      return checkData(op.data, op.path, maxDataBytes);
    }
    case 'setACL':
      if (inMulti) throw new KeeperError('BADARGUMENTS', undefined, 'setACL is not allowed in multi');
      validatePath(op.path);
      checkWritable(op.path);
      checkVersion(op.version, op.path);
      checkAclShape(op.acl, op.path);
      return 0;
    case 'check':
      validatePath(op.path);
      checkVersion(op.version, op.path);
      return 0;
  }
}
