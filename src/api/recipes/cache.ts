import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import type { Stat } from '../../core/stat.js';
import type { WatchEvent } from '../../core/watches.js';
import type { Session } from '../session.js';
import type { SessionState } from '../types.js';
import { addConnectionStateListener } from './connection.js';
import { checkPath, childPath, isCode, isConnected, isDead, sessionGone } from './util.js';

/** A cached node: its path, its Stat as of its last data change, and its data (unless `cacheData: false`). */
export interface ChildData {
  path: string;
  stat: Stat;
  data: Uint8Array | undefined;
}

type EngineChange =
  | { type: 'added'; node: ChildData }
  | { type: 'updated'; node: ChildData; old: ChildData }
  | { type: 'removed'; node: ChildData };

interface EngineOptions {
  maxDepth: number;
  cacheData: boolean;
  recursive: boolean;
  onChange(change: EngineChange): void;
  onConnection(state: SessionState): void;
  onError(error: Error): void;
}

interface Entry {
  stat: Stat;
  data: Uint8Array | undefined;
}

type ReadResult =
  | { kind: 'node'; stat: Stat; data: Uint8Array | undefined; children: string[] | undefined; listingPzxid: bigint }
  | { kind: 'gone' }
  | { kind: 'retry' }
  | { kind: 'unknown' };

/** Reads per node before a result is applied even though events keep arriving (the next event re-reads anyway). */
const MAX_DISCARDS = 5;
/** Reads in flight at once (matters for remote sessions; local reads are immediate). */
const MAX_CONCURRENT_READS = 64;

function depthBelow(root: string, path: string): number {
  if (path === root) return 0;
  const rest = root === '/' ? path.slice(1) : path.slice(root.length + 1);
  let d = 1;
  for (let i = 0; i < rest.length; i++) if (rest.charCodeAt(i) === 47) d++;
  return d;
}

function isWithin(root: string, path: string): boolean {
  if (root === '/') return true;
  return path === root || (path.startsWith(root) && path.charCodeAt(root.length) === 47);
}

function parentPathOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === 0 ? '/' : path.slice(0, i);
}

/**
 * The engine behind NodeCache, PathChildrenCache and TreeCache (like Curator 5's CuratorCache):
 * one persistent (recursive) watch on the root; every event makes the engine re-read the node it
 * names, so the cache can never keep a state older than the last event. Results are applied only
 * if no newer event for that node arrived while the read was in flight. Identity is the czxid: a
 * node that was deleted and re-created — even while we were disconnected and saw neither event —
 * is reported as removed and added, never as a silent update. After RECONNECTED the whole cached
 * tree is re-read and re-listed (persistent watches do not replay what happened meanwhile).
 * @internal
 */
class CacheEngine {
  readonly nodes = new Map<string, Entry>();
  /** parent path → child names present in `nodes` (the parent itself need not be cached). */
  private readonly kids = new Map<string, Set<string>>();
  private readonly refreshing = new Map<string, { again: boolean }>();
  private inflight = 0;
  private drainWaiters: (() => void)[] = [];
  private readQueue: (() => void)[] = [];
  private reading = 0;
  private removeWatch: (() => Promise<void>) | undefined;
  private unlisten: (() => void) | undefined;
  private closed = false;

  constructor(readonly session: Session, readonly root: string, private readonly o: EngineOptions) {}

  async start(): Promise<void> {
    this.unlisten = addConnectionStateListener(this.session, (s) => this.onState(s));
    // The watch goes first: anything that changes after this point produces an event, so the
    // reads that follow can only be newer than what they replace.
    this.removeWatch = await this.session.addWatch(this.root, (ev) => this.onWatch(ev), { recursive: this.o.recursive });
    // The initial load reflects everything committed before start() (this member may lag the leader).
    await this.session.sync(this.root);
    this.resync();
    await this.drained();
  }

  private onState(s: SessionState): void {
    if (this.closed) return;
    this.o.onConnection(s);
    if (s === 'RECONNECTED') this.resync();
    if (isDead(s)) void this.close();
  }

  private onWatch(ev: WatchEvent): void {
    if (this.closed || !isWithin(this.root, ev.path)) return;
    if (depthBelow(this.root, ev.path) > this.o.maxDepth) return;
    this.request(ev.path);
  }

  /** Re-reads every cached node and re-lists from the root: what we missed while disconnected shows up. */
  resync(): void {
    this.request(this.root);
    for (const p of [...this.nodes.keys()]) this.request(p);
  }

  /** Resolves when no read is pending. */
  drained(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  request(path: string): void {
    if (this.closed) return;
    const running = this.refreshing.get(path);
    if (running) {
      running.again = true;
      return;
    }
    const rec = { again: false };
    this.refreshing.set(path, rec);
    this.inflight++;
    void this.refresh(path, rec).catch((e: unknown) => this.o.onError(e as Error)).finally(() => {
      if (--this.inflight === 0) {
        const w = this.drainWaiters;
        this.drainWaiters = [];
        for (const f of w) f();
      }
    });
  }

  private async refresh(path: string, rec: { again: boolean }): Promise<void> {
    try {
      for (let attempt = 0; attempt < 50; attempt++) {
        rec.again = false;
        const result = await this.readSlot(() => this.read(path));
        if (this.closed) return;
        if (result.kind === 'unknown') {
          // Disconnected: RECONNECTED re-reads everything — unless it already happened while this
          // read was failing (its request then only set `again` on us).
          if (rec.again && isConnected(this.session.state) && attempt < 49) continue;
          return;
        }
        if (result.kind === 'retry') continue;
        if (rec.again && attempt < MAX_DISCARDS) continue; // a newer event: this result may be stale
        this.apply(path, result);
        if (!rec.again) return;
      }
    } finally {
      // In the same tick as the decision to stop: an event arriving after this starts a new read
      // (were the entry removed a microtask later, that event would be swallowed).
      this.refreshing.delete(path);
    }
  }

  private async readSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.reading >= MAX_CONCURRENT_READS) await new Promise<void>((r) => this.readQueue.push(r));
    this.reading++;
    try {
      return await fn();
    } finally {
      this.reading--;
      this.readQueue.shift()?.();
    }
  }

  private async read(path: string): Promise<ReadResult> {
    const depth = depthBelow(this.root, path);
    try {
      let stat: Stat;
      let data: Uint8Array | undefined;
      if (this.o.cacheData) {
        const r = await this.session.getData(path);
        stat = r.stat;
        data = r.data;
      } else {
        const st = await this.session.exists(path);
        if (!st) return { kind: 'gone' };
        stat = st;
      }
      let children: string[] | undefined;
      let listingPzxid = 0n;
      if (depth < this.o.maxDepth) {
        const l = await this.session.getChildrenAndStat(path);
        if (l.stat.czxid !== stat.czxid) return { kind: 'retry' }; // replaced between the two reads: read again
        children = l.children;
        listingPzxid = l.stat.pzxid;
      }
      return { kind: 'node', stat, data, children, listingPzxid };
    } catch (e) {
      if (isCode(e, 'NONODE')) return { kind: 'gone' };
      if (isCode(e, 'CONNECTIONLOSS', 'SESSIONEXPIRED')) return { kind: 'unknown' };
      throw e;
    }
  }

  private apply(path: string, r: Extract<ReadResult, { kind: 'node' | 'gone' }>): void {
    if (r.kind === 'gone') {
      this.removeSubtree(path);
      return;
    }
    let old = this.nodes.get(path);
    if (old && old.stat.czxid !== r.stat.czxid) {
      // Deleted and re-created: report both, never a silent update.
      this.removeSubtree(path);
      old = undefined;
    }
    if (!old) {
      const entry: Entry = { stat: r.stat, data: r.data };
      this.nodes.set(path, entry);
      if (path !== this.root) {
        const parent = parentPathOf(path);
        let set = this.kids.get(parent);
        if (!set) {
          set = new Set();
          this.kids.set(parent, set);
        }
        set.add(path.slice(path.lastIndexOf('/') + 1));
        if (!this.nodes.has(parent)) this.request(parent);
      }
      this.o.onChange({ type: 'added', node: { path, stat: r.stat, data: r.data } });
    } else if (r.stat.mzxid !== old.stat.mzxid) {
      if (r.stat.mzxid < old.stat.mzxid) return; // an older read: keep the newer
      const before: ChildData = { path, stat: old.stat, data: old.data };
      old.stat = r.stat;
      old.data = r.data;
      this.o.onChange({ type: 'updated', node: { path, stat: r.stat, data: r.data }, old: before });
    } else if (r.stat.pzxid >= old.stat.pzxid) {
      old.stat = r.stat; // children changed, data did not: no event (as Curator)
    }
    if (r.children) {
      const listed = new Set(r.children);
      const cached = this.kids.get(path);
      if (cached) {
        for (const name of [...cached]) {
          if (listed.has(name)) continue;
          const cp = childPath(path, name);
          const e = this.nodes.get(cp);
          // Gone at the time of the listing — unless it was created after the listing was taken.
          if (e && e.stat.czxid <= r.listingPzxid) this.removeSubtree(cp);
        }
      }
      for (const name of r.children) {
        const cp = childPath(path, name);
        if (!this.nodes.has(cp)) this.request(cp);
      }
    }
  }

  private removeSubtree(path: string): void {
    const set = this.kids.get(path);
    if (set) for (const name of [...set]) this.removeSubtree(childPath(path, name));
    const e = this.nodes.get(path);
    if (!e) return;
    this.nodes.delete(path);
    if (path !== this.root) {
      const parent = parentPathOf(path);
      const ps = this.kids.get(parent);
      ps?.delete(path.slice(path.lastIndexOf('/') + 1));
      if (ps && ps.size === 0) this.kids.delete(parent);
    }
    this.o.onChange({ type: 'removed', node: { path, stat: e.stat, data: e.data } });
  }

  children(path: string): string[] {
    return [...(this.kids.get(path) ?? [])].sort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unlisten?.();
    for (const w of this.readQueue) w();
    this.readQueue = [];
    const remove = this.removeWatch;
    this.removeWatch = undefined;
    if (remove && !isDead(this.session.state)) {
      try {
        await remove();
      } catch {
        // disconnected: the member drops the watch with the session, or we re-register nothing
      }
    }
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }
}

function connectionEvent(s: SessionState): 'CONNECTION_SUSPENDED' | 'CONNECTION_RECONNECTED' | 'CONNECTION_LOST' | undefined {
  if (s === 'SUSPENDED' || s === 'READ_ONLY') return 'CONNECTION_SUSPENDED';
  if (s === 'RECONNECTED') return 'CONNECTION_RECONNECTED';
  if (s === 'LOST' || s === 'CLOSED') return 'CONNECTION_LOST';
  return undefined;
}

function copyData(d: Uint8Array | undefined): Uint8Array | undefined {
  return d === undefined ? undefined : d.slice();
}

// ------------------------------------------------------------------ TreeCache

export type TreeCacheEventType = 'NODE_ADDED' | 'NODE_UPDATED' | 'NODE_REMOVED' | 'INITIALIZED'
  | 'CONNECTION_SUSPENDED' | 'CONNECTION_RECONNECTED' | 'CONNECTION_LOST';

export interface TreeCacheEvent {
  type: TreeCacheEventType;
  /** The node (for NODE_*): after the change, or as it was for NODE_REMOVED. */
  data?: ChildData;
  /** For NODE_UPDATED: the node before the change. */
  oldData?: ChildData;
}

export interface TreeCacheOptions {
  /** Levels below the root to cache (root = 0). Default: unlimited. */
  maxDepth?: number;
  /** Keep node data (default true); with false only Stats are cached. */
  cacheData?: boolean;
}

export interface CacheEvents<E> {
  event: (event: E) => void;
  error: (error: Error) => void;
}

/**
 * A local mirror of the subtree at `root` (Curator's TreeCache), up to `maxDepth` levels, kept
 * current by one persistent recursive watch. Emits NODE_ADDED / NODE_UPDATED / NODE_REMOVED,
 * INITIALIZED once the initial tree is loaded, and CONNECTION_* events; after RECONNECTED it
 * re-reads and diffs, so a delete + re-create while disconnected is reported (czxid changed).
 */
export class TreeCache extends EventEmitter<CacheEvents<TreeCacheEvent>> {
  readonly root: string;
  private readonly engine: CacheEngine;
  private started = false;
  private initialized = false;

  constructor(readonly session: Session, root: string, options: TreeCacheOptions = {}) {
    super();
    checkPath(root, 'TreeCache');
    const maxDepth = options.maxDepth ?? Number.POSITIVE_INFINITY;
    if (!(maxDepth >= 0)) throw new KeeperError('BADARGUMENTS', root, 'TreeCache: maxDepth must be ≥ 0');
    this.root = root;
    this.engine = new CacheEngine(session, root, {
      maxDepth,
      cacheData: options.cacheData ?? true,
      recursive: maxDepth > 0,
      onChange: (c) => {
        const type = c.type === 'added' ? 'NODE_ADDED' : c.type === 'updated' ? 'NODE_UPDATED' : 'NODE_REMOVED';
        this.emit('event', c.type === 'updated' ? { type, data: c.node, oldData: c.old } : { type, data: c.node });
      },
      onConnection: (s) => {
        const type = connectionEvent(s);
        if (type) this.emit('event', { type });
      },
      onError: (e) => this.emit('error', e),
    });
  }

  /** Starts caching; resolves after the initial load (INITIALIZED has been emitted by then). */
  async start(): Promise<void> {
    if (this.started) throw new KeeperError('BADARGUMENTS', this.root, 'TreeCache: already started');
    if (isDead(this.session.state)) throw sessionGone(this.session, 'TreeCache');
    this.started = true;
    await this.engine.start();
    this.initialized = true;
    this.emit('event', { type: 'INITIALIZED' });
  }

  get isInitialized(): boolean {
    return this.initialized;
  }

  /** The cached node at `path`, or undefined. */
  getCurrentData(path: string = this.root): ChildData | undefined {
    const e = this.engine.nodes.get(path);
    return e ? { path, stat: { ...e.stat }, data: copyData(e.data) } : undefined;
  }

  /** Cached children of `path` by name (undefined when `path` is not cached). */
  getCurrentChildren(path: string = this.root): Map<string, ChildData> | undefined {
    if (!this.engine.nodes.has(path)) return undefined;
    const out = new Map<string, ChildData>();
    for (const name of this.engine.children(path)) {
      const d = this.getCurrentData(childPath(path, name));
      if (d) out.set(name, d);
    }
    return out;
  }

  /** Every cached path, sorted. */
  paths(): string[] {
    return [...this.engine.nodes.keys()].sort();
  }

  /** Resolves when every pending re-read has been applied. */
  settled(): Promise<void> {
    return this.engine.drained();
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}

// ------------------------------------------------------------------ PathChildrenCache

export type PathChildrenCacheEventType = 'CHILD_ADDED' | 'CHILD_UPDATED' | 'CHILD_REMOVED' | 'INITIALIZED'
  | 'CONNECTION_SUSPENDED' | 'CONNECTION_RECONNECTED' | 'CONNECTION_LOST';

export interface PathChildrenCacheEvent {
  type: PathChildrenCacheEventType;
  data?: ChildData;
  oldData?: ChildData;
  /** For INITIALIZED: the children loaded initially. */
  initialData?: ChildData[];
}

/**
 * Curator's StartMode. NORMAL: initial children are reported as CHILD_ADDED. BUILD_INITIAL_CACHE:
 * start() primes the cache silently (no events for what was there). POST_INITIALIZED_EVENT: as
 * NORMAL, followed by INITIALIZED once the initial children are loaded.
 */
export type StartMode = 'NORMAL' | 'BUILD_INITIAL_CACHE' | 'POST_INITIALIZED_EVENT';

export interface PathChildrenCacheOptions {
  /** Keep child data (default true). */
  cacheData?: boolean;
}

/**
 * A local mirror of the children of `path` (Curator's PathChildrenCache): CHILD_ADDED /
 * CHILD_UPDATED / CHILD_REMOVED, INITIALIZED (POST_INITIALIZED_EVENT), CONNECTION_* events.
 * Built on a persistent recursive watch (filtered to depth 1), with the same
 * re-read-and-diff after RECONNECTED as TreeCache.
 */
export class PathChildrenCache extends EventEmitter<CacheEvents<PathChildrenCacheEvent>> {
  readonly path: string;
  private readonly engine: CacheEngine;
  private mode: StartMode = 'NORMAL';
  private started = false;
  private initialized = false;

  constructor(readonly session: Session, path: string, options: PathChildrenCacheOptions | boolean = {}) {
    super();
    checkPath(path, 'PathChildrenCache');
    const o = typeof options === 'boolean' ? { cacheData: options } : options;
    this.path = path;
    this.engine = new CacheEngine(session, path, {
      maxDepth: 1,
      cacheData: o.cacheData ?? true,
      recursive: true,
      onChange: (c) => {
        if (c.node.path === this.path) return;
        if (!this.initialized && this.mode === 'BUILD_INITIAL_CACHE') return;
        const type = c.type === 'added' ? 'CHILD_ADDED' : c.type === 'updated' ? 'CHILD_UPDATED' : 'CHILD_REMOVED';
        this.emit('event', c.type === 'updated' ? { type, data: c.node, oldData: c.old } : { type, data: c.node });
      },
      onConnection: (s) => {
        const type = connectionEvent(s);
        if (type) this.emit('event', { type });
      },
      onError: (e) => this.emit('error', e),
    });
  }

  /** Starts caching in `mode` (default NORMAL); resolves once the initial children are loaded. */
  async start(mode: StartMode = 'NORMAL'): Promise<void> {
    if (this.started) throw new KeeperError('BADARGUMENTS', this.path, 'PathChildrenCache: already started');
    if (isDead(this.session.state)) throw sessionGone(this.session, 'PathChildrenCache');
    if (mode !== 'NORMAL' && mode !== 'BUILD_INITIAL_CACHE' && mode !== 'POST_INITIALIZED_EVENT') {
      throw new KeeperError('BADARGUMENTS', this.path, `PathChildrenCache: unknown start mode ${String(mode)}`);
    }
    this.started = true;
    this.mode = mode;
    await this.engine.start();
    this.initialized = true;
    if (mode === 'POST_INITIALIZED_EVENT') this.emit('event', { type: 'INITIALIZED', initialData: this.getCurrentData() });
  }

  /** The cached children, sorted by path. */
  getCurrentData(): ChildData[];
  /** One cached child by full path. */
  getCurrentData(fullPath: string): ChildData | undefined;
  getCurrentData(fullPath?: string): ChildData[] | ChildData | undefined {
    if (fullPath !== undefined) {
      if (parentPathOf(fullPath) !== this.path) return undefined;
      const e = this.engine.nodes.get(fullPath);
      return e ? { path: fullPath, stat: { ...e.stat }, data: copyData(e.data) } : undefined;
    }
    return this.engine.children(this.path).map((n) => this.getCurrentData(childPath(this.path, n))!).filter(Boolean);
  }

  /** Re-reads everything now (Curator's rebuild). */
  async rebuild(): Promise<void> {
    this.engine.resync();
    await this.engine.drained();
  }

  /** Resolves when every pending re-read has been applied. */
  settled(): Promise<void> {
    return this.engine.drained();
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}

// ------------------------------------------------------------------ NodeCache

export interface NodeCacheEvents {
  /** The node was created, changed or deleted; `data` is the new state (undefined: gone). */
  nodeChanged: (data: ChildData | undefined) => void;
  /** Connection state of the session, as CONNECTION_* events of the other caches. */
  connection: (type: 'CONNECTION_SUSPENDED' | 'CONNECTION_RECONNECTED' | 'CONNECTION_LOST') => void;
  error: (error: Error) => void;
}

/**
 * A local mirror of one node (Curator's NodeCache), on a persistent watch: `nodeChanged` on
 * create, data change and delete (and on delete + re-create while disconnected).
 */
export class NodeCache extends EventEmitter<NodeCacheEvents> {
  readonly path: string;
  private readonly engine: CacheEngine;
  private started = false;
  private quiet = false;

  constructor(readonly session: Session, path: string) {
    super();
    checkPath(path, 'NodeCache');
    this.path = path;
    this.engine = new CacheEngine(session, path, {
      maxDepth: 0,
      cacheData: true,
      recursive: false,
      onChange: (c) => {
        if (this.quiet) return;
        this.emit('nodeChanged', c.type === 'removed' ? this.getCurrentData() : { ...c.node, data: copyData(c.node.data) });
      },
      onConnection: (s) => {
        const type = connectionEvent(s);
        if (type) this.emit('connection', type);
      },
      onError: (e) => this.emit('error', e),
    });
  }

  /**
   * Starts caching; resolves once the node has been read. With `buildInitial` the initial read
   * emits no event (Curator's `start(true)`).
   */
  async start(buildInitial = false): Promise<void> {
    if (this.started) throw new KeeperError('BADARGUMENTS', this.path, 'NodeCache: already started');
    if (isDead(this.session.state)) throw sessionGone(this.session, 'NodeCache');
    this.started = true;
    this.quiet = buildInitial;
    try {
      await this.engine.start();
    } finally {
      this.quiet = false;
    }
  }

  /** The cached node, or undefined when it does not exist. */
  getCurrentData(): ChildData | undefined {
    const e = this.engine.nodes.get(this.path);
    return e ? { path: this.path, stat: { ...e.stat }, data: copyData(e.data) } : undefined;
  }

  /** Resolves when every pending re-read has been applied. */
  settled(): Promise<void> {
    return this.engine.drained();
  }

  /** True while the cache's session is connected (the data may be stale otherwise). */
  get connected(): boolean {
    return isConnected(this.session.state);
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}
