import { KeeperError } from '../../core/errors.js';
import { childPath, validatePath } from '../../core/path.js';
import type { Session } from '../session.js';
import type { SessionState } from '../types.js';

/** What every blocking recipe call accepts. */
export interface WaitOptions {
  /** Give up after this many ms (the call then returns false / null, as Curator's timed variants). */
  timeoutMs?: number;
  /** Abort the call; it rejects with `signal.reason` (an AbortError DOMException when none was given). */
  signal?: AbortSignal;
}

/** True for the states in which the session can read and write (READ_ONLY cannot write: not connected for recipes). */
export function isConnected(state: SessionState): boolean {
  return state === 'CONNECTED' || state === 'RECONNECTED';
}

/** True once the session can never serve again. */
export function isDead(state: SessionState): boolean {
  return state === 'LOST' || state === 'CLOSED';
}

export function sessionGone(session: Session, what: string): KeeperError {
  return new KeeperError('SESSIONEXPIRED', undefined, `${what}: the session is ${session.state}; recipes bound to it cannot continue (create a new session)`);
}

export function isCode(e: unknown, ...codes: string[]): e is KeeperError {
  return e instanceof KeeperError && codes.includes(e.code);
}

/** A point in time after which a blocking call gives up. */
export class Deadline {
  readonly at: number;

  constructor(timeoutMs?: number) {
    if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0)) {
      throw new KeeperError('BADARGUMENTS', undefined, `timeoutMs must be a number ≥ 0 (got ${String(timeoutMs)})`);
    }
    this.at = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
  }

  get bounded(): boolean {
    return this.at !== Number.POSITIVE_INFINITY;
  }

  remaining(): number {
    return Math.max(0, this.at - Date.now());
  }

  get expired(): boolean {
    return Date.now() >= this.at;
  }
}

/** The error an aborted call rejects with (what Node's own APIs do). */
export function abortError(signal: AbortSignal): unknown {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const e = new DOMException('The operation was aborted', 'AbortError');
  if (r !== undefined) (e as { cause?: unknown }).cause = r;
  return e;
}

export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** A one-shot trigger: a watcher function and the promise it resolves. */
export interface Trigger {
  readonly fired: boolean;
  readonly promise: Promise<void>;
  fire(): void;
}

export function trigger(): Trigger {
  let fire!: () => void;
  let fired = false;
  const promise = new Promise<void>((r) => {
    fire = (): void => {
      fired = true;
      r();
    };
  });
  return {
    get fired() {
      return fired;
    },
    promise,
    fire: () => fire(),
  };
}

export type WaitResult = 'fired' | 'timeout' | 'state';

/**
 * Waits for `t` to fire, bounded by the deadline and the signal. Wakes with 'state' when the
 * session changes state (the caller re-evaluates: SUSPENDED means wait for RECONNECTED, which
 * itself wakes us). Rejects with SESSIONEXPIRED once the session is LOST/CLOSED and with the
 * abort reason when the signal aborts.
 */
export function waitFor(session: Session, t: Trigger | undefined, deadline: Deadline, signal: AbortSignal | undefined, what: string): Promise<WaitResult> {
  return new Promise<WaitResult>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    if (isDead(session.state)) {
      reject(sessionGone(session, what));
      return;
    }
    if (t?.fired) {
      resolve('fired');
      return;
    }
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      session.off('state', onState);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onState = (s: SessionState): void => {
      if (isDead(s)) finish(() => reject(sessionGone(session, what)));
      else finish(() => resolve('state'));
    };
    const onAbort = (): void => finish(() => reject(abortError(signal!)));
    session.on('state', onState);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadline.bounded) timer = setTimeout(() => finish(() => resolve('timeout')), deadline.remaining());
    t?.promise.then(() => finish(() => resolve('fired')));
  });
}

/**
 * Resolves true once the session is CONNECTED/RECONNECTED, false when the deadline passes first;
 * rejects when the session is LOST/CLOSED or the signal aborts.
 */
export async function awaitConnected(session: Session, deadline: Deadline, signal: AbortSignal | undefined, what: string): Promise<boolean> {
  for (let i = 0; i < 1_000_000; i++) {
    checkAborted(signal);
    if (isDead(session.state)) throw sessionGone(session, what);
    if (isConnected(session.state)) return true;
    if (deadline.expired) return false;
    const r = await waitFor(session, undefined, deadline, signal, what);
    if (r === 'timeout') return isConnected(session.state);
  }
  throw new KeeperError('SYSTEMERROR', undefined, `${what}: awaitConnected did not settle`);
}

/**
 * Runs an idempotent operation, waiting out CONNECTIONLOSS (SUSPENDED) until the deadline.
 * Returns `undefined` when the deadline passed while disconnected.
 */
export async function whenConnected<T>(session: Session, deadline: Deadline, signal: AbortSignal | undefined, what: string, fn: () => Promise<T>): Promise<T | typeof TIMED_OUT> {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    checkAborted(signal);
    try {
      return await fn();
    } catch (e) {
      if (!isCode(e, 'CONNECTIONLOSS')) throw e;
      if (!(await awaitConnected(session, deadline, signal, what))) return TIMED_OUT;
      if (attempt > 0) await sleep(Math.min(50, 2 ** attempt));
    }
  }
  throw new KeeperError('CONNECTIONLOSS', undefined, `${what}: gave up after 10000 attempts`);
}

export const TIMED_OUT: unique symbol = Symbol('timed out');

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The 10-digit sequential suffix of a node name, or -1 when the name has none. */
export function sequenceOf(name: string): number {
  if (name.length < 10) return -1;
  const tail = name.slice(-10);
  for (let i = 0; i < 10; i++) {
    const c = tail.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  return Number(tail);
}

/**
 * Child names that belong to a recipe (contain `marker` and carry a sequence number), sorted by
 * that sequence number — not lexicographically, because protected names start with a GUID.
 */
export function sortBySequence(children: readonly string[], marker: string | ((name: string) => boolean)): string[] {
  const out: { name: string; seq: number }[] = [];
  const match = typeof marker === 'string' ? (n: string) => n.includes(marker) : marker;
  for (const name of children) {
    if (!match(name)) continue;
    const seq = sequenceOf(name);
    if (seq >= 0) out.push({ name, seq });
  }
  out.sort((a, b) => a.seq - b.seq);
  return out.map((o) => o.name);
}

/** Validates a recipe's base path. */
export function checkPath(path: string, what: string): string {
  try {
    validatePath(path);
  } catch (e) {
    throw new KeeperError('BADARGUMENTS', typeof path === 'string' ? path : undefined, `${what}: ${(e as Error).message}`);
  }
  return path;
}

/** Creates `path` and its missing parents as PERSISTENT nodes (existing ones are fine). */
export async function ensurePath(session: Session, path: string): Promise<void> {
  if (path === '/') return;
  if (await session.exists(path)) return;
  try {
    await session.create(path, undefined, { parents: true });
  } catch (e) {
    if (!isCode(e, 'NODEEXISTS')) throw e;
  }
}

export { childPath };

/** Deletes a node, ignoring NONODE; true when this call deleted it. */
export async function deleteIfExists(session: Session, path: string, version = -1): Promise<boolean> {
  try {
    await session.delete(path, { version });
    return true;
  } catch (e) {
    if (isCode(e, 'NONODE')) return false;
    throw e;
  }
}

/**
 * Deletes a node now, or — when the session is disconnected — as soon as it reconnects; gives up
 * when the session ends (its ephemerals go with it). Used to release locks and clean up after
 * timeouts without ever leaving an ephemeral node that blocks others while the session lives.
 */
export function deleteEventually(session: Session, path: string, onDone?: (deleted: boolean) => void): Promise<void> {
  const run = async (): Promise<void> => {
    for (let attempt = 0; attempt < 1000; attempt++) {
      if (isDead(session.state)) return onDone?.(false);
      if (isConnected(session.state)) {
        try {
          const d = await deleteIfExists(session, path);
          return onDone?.(d);
        } catch (e) {
          // Anything but a lost connection (e.g. NOAUTH) will not get better by retrying.
          if (!isCode(e, 'CONNECTIONLOSS')) return onDone?.(false);
        }
      }
      // Not connected: wait for the next state change (RECONNECTED or LOST).
      if (!isConnected(session.state) && !isDead(session.state)) {
        try {
          await waitFor(session, undefined, new Deadline(), undefined, 'delete');
        } catch {
          return onDone?.(false);
        }
      } else {
        await sleep(Math.min(100, 5 * (attempt + 1)));
      }
    }
    onDone?.(false);
  };
  return run();
}

/**
 * Deletes a node we no longer want (an abandoned lock or lease node): right away when the session
 * is connected — so that a call that gave up has left nothing behind when it returns — and
 * otherwise as soon as it reconnects.
 */
export async function cleanUp(session: Session, path: string): Promise<void> {
  if (isConnected(session.state)) {
    try {
      await deleteIfExists(session, path);
      return;
    } catch (e) {
      if (!isCode(e, 'CONNECTIONLOSS')) return;
    }
  }
  void deleteEventually(session, path);
}

/** A tiny FIFO mutex for serializing a recipe's internal async steps. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}
