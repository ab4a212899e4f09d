/**
 * Typed errors with ZooKeeper's stable codes. Every failure a caller can see is a
 * {@link KeeperError}; `code` is what programs switch on, `message` says what to do.
 */

/** Stable error codes, named as in ZooKeeper's `KeeperException.Code`. */
export type ErrorCode =
  | 'NONODE'
  | 'NODEEXISTS'
  | 'NOTEMPTY'
  | 'BADVERSION'
  | 'NOCHILDRENFOREPHEMERALS'
  | 'NOAUTH'
  | 'INVALIDACL'
  | 'BADARGUMENTS'
  | 'CONNECTIONLOSS'
  | 'SESSIONEXPIRED'
  | 'OPERATIONTIMEOUT'
  | 'NOTREADONLY'
  | 'SESSIONMOVED'
  | 'UNIMPLEMENTED'
  | 'SYSTEMERROR'
  | 'RUNTIMEINCONSISTENCY'
  | 'NOWATCHER'
  | 'RECONFIGINPROGRESS'
  | 'AUTHFAILED';

/** Every error code, for validation of values that cross a process boundary. */
export const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'NONODE', 'NODEEXISTS', 'NOTEMPTY', 'BADVERSION', 'NOCHILDRENFOREPHEMERALS', 'NOAUTH',
  'INVALIDACL', 'BADARGUMENTS', 'CONNECTIONLOSS', 'SESSIONEXPIRED', 'OPERATIONTIMEOUT',
  'NOTREADONLY', 'SESSIONMOVED', 'UNIMPLEMENTED', 'SYSTEMERROR', 'RUNTIMEINCONSISTENCY',
  'NOWATCHER', 'RECONFIGINPROGRESS', 'AUTHFAILED',
]);

const DEFAULT_MESSAGES: Record<ErrorCode, string> = {
  NONODE: 'no node at this path',
  NODEEXISTS: 'a node already exists at this path',
  NOTEMPTY: 'the node has children; delete them first (or use deleteAll)',
  BADVERSION: 'the expected version does not match the node\'s current version',
  NOCHILDRENFOREPHEMERALS: 'ephemeral nodes cannot have children',
  NOAUTH: 'the session is not authorized for this operation on this node (check its ACL and addAuth)',
  INVALIDACL: 'the ACL is invalid',
  BADARGUMENTS: 'invalid arguments',
  CONNECTIONLOSS: 'the connection to the ensemble was lost; the operation may or may not have been applied',
  SESSIONEXPIRED: 'the session has expired or was closed; create a new session',
  OPERATIONTIMEOUT: 'the operation timed out',
  NOTREADONLY: 'the member is read-only and cannot accept writes',
  SESSIONMOVED: 'the session moved to another member',
  UNIMPLEMENTED: 'operation not implemented',
  SYSTEMERROR: 'internal error',
  RUNTIMEINCONSISTENCY: 'a previous operation of the multi failed',
  NOWATCHER: 'no such watcher registered',
  RECONFIGINPROGRESS: 'a reconfiguration is in progress',
  AUTHFAILED: 'authentication failed',
};

/** Result of one operation inside a `multi`. */
export type OpResult =
  | { type: 'create'; path: string }
  | { type: 'delete' }
  | { type: 'setData'; stat: import('./stat.js').Stat }
  | { type: 'check' }
  | { type: 'error'; code: ErrorCode | 'OK' };

/** The error every conclave operation rejects with. */
export class KeeperError extends Error {
  readonly code: ErrorCode;
  // `declare`: no own property unless set, so that an error without a path has no `path` key.
  declare readonly path?: string;
  /** For a failed `multi`: one `error` entry per op ('OK' before, the code at, RUNTIMEINCONSISTENCY after the failing op). */
  declare results?: OpResult[];

  constructor(code: ErrorCode, path?: string, detail?: string) {
    const base = detail ?? DEFAULT_MESSAGES[code];
    super(path === undefined ? `${code}: ${base}` : `${code}: ${base} (${path})`);
    this.name = 'KeeperError';
    this.code = code;
    if (path !== undefined) this.path = path;
  }
}

/** True when `e` is a KeeperError, optionally of the given code. */
export function isKeeperError(e: unknown, code?: ErrorCode): e is KeeperError {
  return e instanceof KeeperError && (code === undefined || e.code === code);
}
