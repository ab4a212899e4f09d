import { EventEmitter } from 'eventemitter3';
import { Ids, type ACL } from '../core/acl.js';
import { CreateMode, isSequential } from '../core/createMode.js';
import { KeeperError, type ErrorCode, type OpResult } from '../core/errors.js';
import { childPath, parentOf, validatePath } from '../core/path.js';
import type { RequestOp } from '../core/request.js';
import type { Stat } from '../core/stat.js';
import type { ApplyResult } from '../core/tree.js';
import type { WatchEvent, WatchEventType } from '../core/watches.js';
import type { CreateOptions, Data, Op, RetryPolicy, SessionState, Watcher } from './types.js';
import { toBytes } from './util.js';

/** Watches a session holds, as sent when re-registering after a reconnect (ZooKeeper's SetWatches). */
export interface WatchSet {
  data: string[];
  exist: string[];
  child: string[];
  persistent: string[];
  recursive: string[];
}

type MaybePromise<T> = T | Promise<T>;

/**
 * What serves a session: the in-process member for local sessions, a network client for remote
 * ones. Every method may throw/reject a KeeperError.
 */
export interface SessionBackend {
  write(sid: bigint, op: RequestOp): Promise<ApplyResult>;
  getData(sid: bigint, path: string, watch: boolean): MaybePromise<{ data: Uint8Array; stat: Stat }>;
  exists(sid: bigint, path: string, watch: boolean): MaybePromise<Stat | null>;
  getChildren(sid: bigint, path: string, watch: boolean): MaybePromise<{ children: string[]; stat: Stat }>;
  getACL(sid: bigint, path: string): MaybePromise<{ acl: ACL[]; stat: Stat }>;
  getAllChildrenNumber(sid: bigint, path: string): MaybePromise<number>;
  getEphemerals(sid: bigint, prefix: string): MaybePromise<string[]>;
  sync(sid: bigint, path: string): Promise<void>;
  addAuth(sid: bigint, scheme: string, credentials: string): MaybePromise<void>;
  addWatch(sid: bigint, path: string, recursive: boolean): MaybePromise<void>;
  removeWatch(sid: bigint, kind: 'persistent' | 'recursive', path: string): MaybePromise<void>;
  close(sid: bigint): Promise<void>;
}

export interface SessionEvents {
  state: (state: SessionState) => void;
}

function resultError(r: ApplyResult & { ok: false }): KeeperError {
  const e = new KeeperError(r.code, r.path);
  if (r.results) e.results = r.results;
  return e;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => {
    const t = setTimeout(r, ms);
    t.unref?.();
  });
}

/**
 * A ZooKeeper session: the typed promise API over the znode tree. Watch callbacks run in zxid
 * order, before the result of any later operation of this session that reveals their change.
 */
export class Session extends EventEmitter<SessionEvents> {
  readonly id: bigint;
  readonly timeoutMs: number;
  private _state: SessionState = 'CONNECTED';
  private readonly backend: SessionBackend;
  private readonly retry: RetryPolicy | undefined;

  // Client-side watch tables (ZooKeeper's ZKWatchManager): path → callbacks.
  private readonly dataWatchers = new Map<string, Set<Watcher>>();
  private readonly existWatchers = new Map<string, Set<Watcher>>();
  private readonly childWatchers = new Map<string, Set<Watcher>>();
  private readonly persistentWatchers = new Map<string, Set<Watcher>>();
  private readonly recursiveWatchers = new Map<string, Set<Watcher>>();

  /** Writes (and syncs) in flight; reads wait behind them so a session reads its own writes. */
  private writesInFlight = 0;
  private lastWrite: Promise<unknown> = Promise.resolve();

  /** @internal */
  constructor(id: bigint, timeoutMs: number, backend: SessionBackend, retry?: RetryPolicy) {
    super();
    this.id = id;
    this.timeoutMs = timeoutMs;
    this.backend = backend;
    this.retry = retry;
  }

  get state(): SessionState {
    return this._state;
  }

  /** @internal called by the backend on connection changes. */
  _setState(s: SessionState): void {
    if (this._state === s) return;
    if (this._state === 'CLOSED' || (this._state === 'LOST' && s !== 'CLOSED')) return;
    this._state = s;
    if (s === 'LOST' || s === 'CLOSED') this.clearWatchers();
    this.emit('state', s);
  }

  private get alive(): boolean {
    return this._state !== 'LOST' && this._state !== 'CLOSED';
  }

  private checkAlive(): void {
    if (this._state === 'CLOSED') throw new KeeperError('SESSIONEXPIRED', undefined, 'the session is closed');
    if (this._state === 'LOST') throw new KeeperError('SESSIONEXPIRED');
  }

  // ------------------------------------------------------------------ watches (client side)

  /** @internal delivers a watch event from the serving member. */
  _notify(type: WatchEventType, path: string): void {
    const fire: Watcher[] = [];
    const take = (m: Map<string, Set<Watcher>>): void => {
      const s = m.get(path);
      if (!s) return;
      m.delete(path);
      for (const w of s) fire.push(w);
    };
    switch (type) {
      case 'NodeCreated':
      case 'NodeDataChanged':
        take(this.dataWatchers);
        take(this.existWatchers);
        break;
      case 'NodeDeleted':
        take(this.dataWatchers);
        take(this.existWatchers);
        take(this.childWatchers);
        break;
      case 'NodeChildrenChanged':
        take(this.childWatchers);
        break;
    }
    const p = this.persistentWatchers.get(path);
    if (p) for (const w of p) fire.push(w);
    if (type !== 'NodeChildrenChanged' && this.recursiveWatchers.size > 0) {
      let cur = path;
      for (;;) {
        const r = this.recursiveWatchers.get(cur);
        if (r) for (const w of r) fire.push(w);
        if (cur === '/') break;
        cur = parentOf(cur);
      }
    }
    if (fire.length === 0) return;
    const ev: WatchEvent = { type, path };
    const seen = new Set<Watcher>();
    for (const w of fire) {
      if (seen.has(w)) continue; // the same callback registered twice for one path fires once, as in ZooKeeper
      seen.add(w);
      try {
        w(ev);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  /** @internal the watches to re-register after a reconnect. */
  _watchSet(): WatchSet {
    return {
      data: [...this.dataWatchers.keys()],
      exist: [...this.existWatchers.keys()],
      child: [...this.childWatchers.keys()],
      persistent: [...this.persistentWatchers.keys()],
      recursive: [...this.recursiveWatchers.keys()],
    };
  }

  private addWatcher(m: Map<string, Set<Watcher>>, path: string, w: Watcher): void {
    let s = m.get(path);
    if (!s) {
      s = new Set();
      m.set(path, s);
    }
    s.add(w);
  }

  private clearWatchers(): void {
    this.dataWatchers.clear();
    this.existWatchers.clear();
    this.childWatchers.clear();
    this.persistentWatchers.clear();
    this.recursiveWatchers.clear();
  }

  // ------------------------------------------------------------------ plumbing

  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.retry) return fn();
    const start = Date.now();
    for (let n = 0; ; n++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof KeeperError) || e.code !== 'CONNECTIONLOSS' || !this.alive) throw e;
        const delay = this.retry.allowRetry(n, Date.now() - start);
        if (delay === false) throw e;
        await sleep(delay);
      }
    }
  }

  private async writeOnce(op: RequestOp): Promise<ApplyResult> {
    this.checkAlive();
    this.writesInFlight++;
    const p = this.backend.write(this.id, op);
    this.lastWrite = p.catch(() => undefined);
    try {
      return await p;
    } finally {
      this.writesInFlight--;
    }
  }

  private write(op: RequestOp): Promise<ApplyResult> {
    return this.withRetry(() => this.writeOnce(op));
  }

  private async read<T>(fn: () => MaybePromise<T>): Promise<T> {
    this.checkAlive();
    if (this.writesInFlight > 0) await this.lastWrite;
    return fn();
  }

  private readRetry<T>(fn: () => MaybePromise<T>): Promise<T> {
    if (!this.retry) return this.read(fn);
    return this.withRetry(() => this.read(fn));
  }

  // ------------------------------------------------------------------ the API

  /** Creates a znode; returns its path (with the sequential suffix for sequential modes). */
  async create(path: string, data?: Data, options: CreateOptions = {}): Promise<string> {
    const op = buildCreate(path, data, options);
    // A sequential create whose response was lost may have created its node; retrying it would
    // create a second one ("never silently succeed twice"). Callers recover with a protected
    // name instead (recipes' createProtected), so CONNECTIONLOSS is passed through here.
    const write = isSequential(op.mode) ? (o: typeof op) => this.writeOnce(o) : (o: typeof op) => this.write(o);
    const r = await write(op);
    if (r.ok) return (r as { path: string }).path;
    if (r.code === 'NONODE' && options.parents) {
      await this.createParents(op.path.endsWith('/') ? op.path.slice(0, -1) : parentOf(op.path));
      const r2 = await write(op);
      if (r2.ok) return (r2 as { path: string }).path;
      throw resultError(r2);
    }
    throw resultError(r);
  }

  private async createParents(path: string): Promise<void> {
    const parts = path.split('/').filter((p) => p.length > 0);
    let cur = '';
    for (const part of parts) {
      cur += '/' + part;
      const r = await this.write({ type: 'create', path: cur, data: new Uint8Array(0), acl: [...Ids.OPEN_ACL_UNSAFE], mode: 0, ttl: 0 });
      if (!r.ok && r.code !== 'NODEEXISTS') throw resultError(r);
    }
  }

  async getData(path: string, options: { watch?: Watcher } = {}): Promise<{ data: Uint8Array; stat: Stat }> {
    const w = options.watch;
    if (!w) return this.readRetry(() => this.backend.getData(this.id, path, false));
    return this.readRetry(() => this.watched(this.dataWatchers, path, w, () => this.backend.getData(this.id, path, true)));
  }

  /**
   * Registers the callback before the member registers the watch, so that an event the member
   * sends right behind the reply always finds it; withdrawn if the read fails.
   */
  private watched<T>(table: Map<string, Set<Watcher>>, path: string, w: Watcher, call: () => MaybePromise<T>): MaybePromise<T> {
    if (typeof w !== 'function') throw new KeeperError('BADARGUMENTS', path, 'watch must be a function');
    const had = table.get(path)?.has(w) ?? false;
    this.addWatcher(table, path, w);
    const undo = (e: unknown): never => {
      if (!had) {
        const set = table.get(path);
        set?.delete(w);
        if (set && set.size === 0) table.delete(path);
      }
      throw e;
    };
    try {
      const r = call();
      return r instanceof Promise ? r.catch(undo) : r;
    } catch (e) {
      return undo(e);
    }
  }

  async setData(path: string, data: Data, options: { version?: number } = {}): Promise<Stat> {
    const r = await this.write({ type: 'setData', path, data: toBytes(data, path), version: options.version ?? -1 });
    if (r.ok) return (r as { stat: Stat }).stat;
    throw resultError(r);
  }

  async delete(path: string, options: { version?: number } = {}): Promise<void> {
    const r = await this.write({ type: 'delete', path, version: options.version ?? -1 });
    if (!r.ok) throw resultError(r);
  }

  /** Deletes a node and everything below it (zkCli's deleteall); NONODE when it does not exist. */
  async deleteAll(path: string): Promise<void> {
    validatePath(path);
    for (let attempt = 0; attempt < 100; attempt++) {
      const nodes: string[] = [];
      const queue = [path];
      try {
        while (queue.length > 0) {
          const p = queue.shift()!;
          let kids: string[];
          try {
            kids = await this.getChildren(p);
          } catch (e) {
            if (e instanceof KeeperError && e.code === 'NONODE' && p !== path) continue;
            throw e;
          }
          nodes.push(p);
          for (const k of kids) queue.push(childPath(p, k));
        }
        for (let i = nodes.length - 1; i >= 0; i--) {
          try {
            await this.delete(nodes[i]!);
          } catch (e) {
            if (e instanceof KeeperError && e.code === 'NONODE' && i > 0) continue;
            throw e;
          }
        }
        return;
      } catch (e) {
        // A child appeared concurrently: list again.
        if (e instanceof KeeperError && e.code === 'NOTEMPTY') continue;
        throw e;
      }
    }
    throw new KeeperError('NOTEMPTY', path, 'children keep appearing; deleteAll gave up after 100 attempts');
  }

  /** Stat of the node, or null. With `watch`, fires on create, delete or data change. */
  async exists(path: string, options: { watch?: Watcher } = {}): Promise<Stat | null> {
    const w = options.watch;
    if (!w) return this.readRetry(() => this.backend.exists(this.id, path, false));
    const stat = await this.readRetry(() => this.watched(this.existWatchers, path, w, () => this.backend.exists(this.id, path, true)));
    if (stat) {
      // The node exists, so this is a data watch (it matters when watches are re-registered).
      const ex = this.existWatchers.get(path);
      if (ex?.delete(w)) {
        if (ex.size === 0) this.existWatchers.delete(path);
        this.addWatcher(this.dataWatchers, path, w);
      }
    }
    return stat;
  }

  /** Child names, sorted. With `watch`, fires on a child added/removed or the node deleted. */
  async getChildren(path: string, options: { watch?: Watcher } = {}): Promise<string[]> {
    return (await this.getChildrenAndStat(path, options)).children;
  }

  async getChildrenAndStat(path: string, options: { watch?: Watcher } = {}): Promise<{ children: string[]; stat: Stat }> {
    const w = options.watch;
    if (!w) return this.readRetry(() => this.backend.getChildren(this.id, path, false));
    return this.readRetry(() => this.watched(this.childWatchers, path, w, () => this.backend.getChildren(this.id, path, true)));
  }

  /** Atomic transaction; on failure throws KeeperError (code of the failing op) with `.results`. */
  async multi(ops: Op[]): Promise<OpResult[]> {
    if (!Array.isArray(ops)) throw new KeeperError('BADARGUMENTS', undefined, 'multi needs an array of ops');
    const r = await this.write({ type: 'multi', ops: ops.map((o) => ({ ...o })) });
    if (r.ok) return (r as { results: OpResult[] }).results;
    throw resultError(r);
  }

  /** After this resolves, reads on this session see everything committed before the call. */
  async sync(path = '/'): Promise<void> {
    validatePath(path);
    await this.withRetry(async () => {
      this.checkAlive();
      this.writesInFlight++;
      const p = this.backend.sync(this.id, path);
      this.lastWrite = p.catch(() => undefined);
      try {
        await p;
      } finally {
        this.writesInFlight--;
      }
    });
  }

  async getACL(path: string): Promise<{ acl: ACL[]; stat: Stat }> {
    return this.readRetry(() => this.backend.getACL(this.id, path));
  }

  async setACL(path: string, acl: readonly ACL[], options: { version?: number } = {}): Promise<Stat> {
    const r = await this.write({ type: 'setACL', path, acl: Array.isArray(acl) ? acl.map((a) => ({ ...a })) : (acl as unknown as ACL[]), version: options.version ?? -1 });
    if (r.ok) return (r as { stat: Stat }).stat;
    throw resultError(r);
  }

  /** Adds an identity to this session, e.g. `addAuth('digest', 'user:password')`. */
  async addAuth(scheme: string, credentials: string): Promise<void> {
    this.checkAlive();
    await this.backend.addAuth(this.id, scheme, credentials);
  }

  /** A persistent (optionally recursive) watch; resolves to a function that removes it. */
  async addWatch(path: string, listener: Watcher, options: { recursive?: boolean } = {}): Promise<() => Promise<void>> {
    validatePath(path);
    if (typeof listener !== 'function') throw new KeeperError('BADARGUMENTS', path, 'listener must be a function');
    this.checkAlive();
    const recursive = options.recursive === true;
    const table = recursive ? this.recursiveWatchers : this.persistentWatchers;
    await this.watched(table, path, listener, () => this.backend.addWatch(this.id, path, recursive));
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      const s = table.get(path);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) {
        table.delete(path);
        if (this.alive) await this.backend.removeWatch(this.id, recursive ? 'recursive' : 'persistent', path);
      }
    };
  }

  /** Events of a persistent watch as an async iterator; ends when the loop breaks or the session ends. */
  watch(path: string, options: { recursive?: boolean } = {}): AsyncIterable<WatchEvent> {
    const self = this;
    return {
      [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
        const queue: WatchEvent[] = [];
        let wake: (() => void) | undefined;
        let done = false;
        let failure: unknown;
        let remover: (() => Promise<void>) | undefined;
        const onState = (s: SessionState): void => {
          if (s === 'LOST' || s === 'CLOSED') {
            done = true;
            wake?.();
          }
        };
        self.on('state', onState);
        const ready = self.addWatch(path, (ev) => {
          queue.push(ev);
          wake?.();
        }, options).then((r) => {
          remover = r;
        }, (e: unknown) => {
          failure = e;
          done = true;
        });
        const finish = async (): Promise<IteratorResult<WatchEvent>> => {
          done = true;
          self.off('state', onState);
          await ready;
          await remover?.();
          return { value: undefined, done: true };
        };
        return {
          async next(): Promise<IteratorResult<WatchEvent>> {
            await ready;
            for (;;) {
              if (queue.length > 0) return { value: queue.shift()!, done: false };
              if (failure) {
                const f = failure;
                failure = undefined;
                await finish();
                throw f;
              }
              if (done) return finish();
              await new Promise<void>((r) => {
                wake = r;
              });
              wake = undefined;
            }
          },
          return: finish,
        };
      },
    };
  }

  /** Number of all descendants of the node (not counting itself). */
  async getAllChildrenNumber(path: string): Promise<number> {
    return this.readRetry(() => this.backend.getAllChildrenNumber(this.id, path));
  }

  /** This session's ephemeral nodes whose path starts with `prefixPath` (default '/'). */
  async getEphemerals(prefixPath = '/'): Promise<string[]> {
    if (typeof prefixPath !== 'string' || !prefixPath.startsWith('/')) {
      throw new KeeperError('BADARGUMENTS', String(prefixPath), 'prefix must start with /');
    }
    return this.readRetry(() => this.backend.getEphemerals(this.id, prefixPath));
  }

  /** Ends the session: its ephemerals are deleted and its watches dropped. */
  async close(): Promise<void> {
    if (!this.alive) {
      this._setState('CLOSED');
      return;
    }
    try {
      await this.backend.close(this.id);
    } finally {
      this._setState('CLOSED');
    }
  }
}

/** Validates create options and builds the request (shared with `op.create`). */
export function buildCreate(path: string, data: Data | undefined, options: CreateOptions = {}): RequestOp & { type: 'create' } {
  const mode = options.mode ?? CreateMode.PERSISTENT;
  const acl = options.acl ?? Ids.OPEN_ACL_UNSAFE;
  return {
    type: 'create',
    path,
    data: toBytes(data, path),
    acl: Array.isArray(acl) ? acl.map((a: ACL) => ({ ...a })) : (acl as unknown as ACL[]),
    mode,
    ttl: options.ttlMs ?? 0,
  };
}

/** Builders for `multi` operations. */
export const op = {
  create(path: string, data?: Data, options?: CreateOptions): Op {
    return buildCreate(path, data, options);
  },
  delete(path: string, version = -1): Op {
    return { type: 'delete', path, version };
  },
  setData(path: string, data: Data, version = -1): Op {
    return { type: 'setData', path, data: toBytes(data, path), version };
  },
  check(path: string, version: number): Op {
    return { type: 'check', path, version };
  },
};

export type { ErrorCode };
