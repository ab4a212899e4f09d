import { EventEmitter } from 'eventemitter3';
import { Ids, type ACL } from '../core/acl.js';
import { CreateMode, isSequential } from '../core/createMode.js';
import { KeeperError, type ErrorCode, type OpResult } from '../core/errors.js';
import { childPath, parentOf, validatePath } from '../core/path.js';
import type { RequestOp } from '../core/request.js';
import type { Stat } from '../core/stat.js';
import type { ApplyResult } from '../core/tree.js';
import type { WatchEvent, WatchEventType, WatchKind } from '../core/watches.js';
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
  /**
   * `writeId` (from sessions with a retry policy) names the logical write: a retry passes the same
   * id, so a write applied before its reply was lost is answered, not applied again.
   */
  write(sid: bigint, op: RequestOp, writeId?: number): Promise<ApplyResult>;
  getData(sid: bigint, path: string, watch: boolean): MaybePromise<{ data: Uint8Array; stat: Stat }>;
  exists(sid: bigint, path: string, watch: boolean): MaybePromise<Stat | null>;
  getChildren(sid: bigint, path: string, watch: boolean): MaybePromise<{ children: string[]; stat: Stat }>;
  getACL(sid: bigint, path: string): MaybePromise<{ acl: ACL[]; stat: Stat }>;
  getAllChildrenNumber(sid: bigint, path: string): MaybePromise<number>;
  getEphemerals(sid: bigint, prefix: string): MaybePromise<string[]>;
  sync(sid: bigint, path: string): Promise<void>;
  addAuth(sid: bigint, scheme: string, credentials: string): MaybePromise<void>;
  addWatch(sid: bigint, path: string, recursive: boolean): MaybePromise<void>;
  removeWatch(sid: bigint, kind: WatchKind, path: string): MaybePromise<void>;
  close(sid: bigint): Promise<void>;
}

export interface SessionEvents {
  state: (state: SessionState) => void;
}

/** The answers of create, setData and delete calls (or their errors). */
function createdPath(r: ApplyResult): string {
  if (r.ok) return (r as { path: string }).path;
  throw resultError(r);
}

function newStat(r: ApplyResult): Stat {
  if (r.ok) return (r as { stat: Stat }).stat;
  throw resultError(r);
}

function deleted(r: ApplyResult): void {
  if (!r.ok) throw resultError(r);
}

function resultError(r: ApplyResult & { ok: false }): KeeperError {
  const e = new KeeperError(r.code, r.path);
  if (r.results) e.results = r.results;
  return e;
}

let lastTurn = performance.now();
let turnArmed = false;
function noteTurn(): void {
  lastTurn = performance.now();
  turnArmed = false;
}
/** True when the event loop has not turned for 50 ms (only microtasks ran). */
function starving(): boolean {
  if (!turnArmed) {
    turnArmed = true;
    setImmediate(noteTurn);
  }
  return performance.now() - lastTurn > 50;
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

  /**
   * The session's FIFO order (ZooKeeper's per-session request order): operations are issued in
   * the order they were called. Writes (and syncs) pipeline: one is issued as soon as everything
   * before it was issued. A read is issued only once every earlier write has completed, so it
   * sees the session's own writes, and a later write is not issued before it, so it does not see
   * writes the caller made after it.
   */
  private readonly issueQueue: { write: boolean; issue: () => void }[] = [];
  /** Writes issued and not yet completed. */
  private writesOutstanding = 0;
  /** Operations issued whose result has not been handed to the caller yet. */
  private inTransit = 0;
  /** Reads that set a watch whose caller may not have seen the result yet (see {@link Session.watchRead}). */
  private settling = 0;

  /**
   * Watch events not yet delivered, in zxid order (see {@link Session._notify}), and results
   * waiting for the events at or below their zxid to be delivered first.
   */
  private readonly eventQueue: { watchers: Watcher[]; ev: WatchEvent; zxid: bigint }[] = [];
  private readonly resultWaiters: { zxid: bigint; value: unknown; resolve: (v: unknown) => void }[] = [];
  private flushScheduled = false;
  private lastEventZxid = 0n;

  /** Calls made so far / results handed out so far; results wait for their predecessors' in `parked`. */
  private callSeq = 0;
  private deliveredSeq = 0;
  private readonly parked = new Map<number, () => void>();

  /** What operations fail with once the session is over: expired/closed, or its member is gone. */
  private endCode: 'SESSIONEXPIRED' | 'CONNECTIONLOSS' = 'SESSIONEXPIRED';
  /** The serving member is stopping: new operations fail with CONNECTIONLOSS. */
  private memberStopping = false;

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

  /**
   * @internal called by the backend on connection changes. `endCode` says what later operations
   * fail with when the session ends: SESSIONEXPIRED (closed or expired at the ensemble) or
   * CONNECTIONLOSS (the serving member is gone, so nobody can tell).
   */
  _setState(s: SessionState, endCode?: 'SESSIONEXPIRED' | 'CONNECTIONLOSS'): void {
    if (this.memberStopping) {
      // The member closes its sessions as it stops; to the caller the session was lost with it.
      if (s === 'CLOSED') s = 'LOST';
      endCode = 'CONNECTIONLOSS';
    }
    if (this._state === s) return;
    if (this._state === 'CLOSED' || (this._state === 'LOST' && s !== 'CLOSED')) return;
    if ((s === 'LOST' || s === 'CLOSED') && endCode !== undefined) this.endCode = endCode;
    this._state = s;
    if (s === 'LOST' || s === 'CLOSED') this.clearWatchers();
    this.emit('state', s);
  }

  /**
   * @internal the serving member is stopping: the session is ended at the ensemble while that is
   * still possible (its ephemerals go now), and every later operation fails with CONNECTIONLOSS.
   */
  async _memberStopping(): Promise<void> {
    this.memberStopping = true;
    if (!this.alive) {
      this.endCode = 'CONNECTIONLOSS';
      return;
    }
    try {
      await this.backend.close(this.id);
    } catch {
      // the member is going away anyway
    } finally {
      this._setState('LOST', 'CONNECTIONLOSS');
    }
  }

  private get alive(): boolean {
    return this._state !== 'LOST' && this._state !== 'CLOSED';
  }

  private checkAlive(): void {
    if (this.memberStopping) throw new KeeperError('CONNECTIONLOSS', undefined, 'the member serving this session stopped');
    if (this._state === 'CLOSED' || this._state === 'LOST') {
      if (this.endCode === 'CONNECTIONLOSS') throw new KeeperError('CONNECTIONLOSS', undefined, 'the member serving this session stopped');
      if (this._state === 'CLOSED') throw new KeeperError('SESSIONEXPIRED', undefined, 'the session is closed');
      throw new KeeperError('SESSIONEXPIRED');
    }
  }

  // ------------------------------------------------------------------ watches (client side)

  /**
   * @internal delivers a watch event from the serving member; `zxid` is the txn that caused it
   * (omitted: no later than the latest event seen, e.g. catch-up events after a reconnect).
   *
   * The callbacks to run are taken from the watch tables right away (a one-time watch is used up
   * by this event, not by a later one). They run right away too, unless this session has results
   * on their way to the caller or events still queued: then the event is queued and delivered in
   * zxid order with those results — a result of zxid z after the events of zxids ≤ z, before the
   * events of later zxids (ZooKeeper's client delivers replies and events in the order the server
   * sent them).
   */
  _notify(type: WatchEventType, path: string, zxid?: bigint): void {
    const z = zxid ?? this.lastEventZxid;
    if (z > this.lastEventZxid) this.lastEventZxid = z;
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
    if (this.eventQueue.length === 0 && this.inTransit === 0 && this.settling === 0) {
      runWatchers(fire, ev);
      return;
    }
    this.eventQueue.push({ watchers: fire, ev, zxid: z });
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A macrotask: results released before it have reached their callers' continuations by then.
    setImmediate(() => this.flush());
  }

  /** Delivers queued events in order, releasing each waiting result right after the events at or below its zxid. */
  private flush(): void {
    this.flushScheduled = false;
    while (this.eventQueue.length > 0) {
      const next = this.eventQueue[0]!;
      if (this.releaseResults((w) => w.zxid < next.zxid)) {
        // Let the released callers run before the later events.
        this.scheduleFlush();
        return;
      }
      this.eventQueue.shift();
      runWatchers(next.watchers, next.ev);
    }
    this.releaseResults(() => true);
  }

  private releaseResults(which: (w: { zxid: bigint }) => boolean): boolean {
    const out = this.resultWaiters.filter(which);
    if (out.length === 0) return false;
    for (const w of out) this.resultWaiters.splice(this.resultWaiters.indexOf(w), 1);
    out.sort((a, b) => (a.zxid < b.zxid ? -1 : a.zxid > b.zxid ? 1 : 0));
    for (const w of out) {
      this.inTransit--;
      w.resolve(w.value);
    }
    return true;
  }

  /**
   * Hands the result of an operation at `zxid` to its caller: right away when no queued event is
   * at or below `zxid`, otherwise right after those events were delivered.
   * (No named closures on this path: tsx's keepNames makes each one cost a defineProperty.)
   */
  private deliver<T>(value: T, zxid: bigint, resolve: (v: T) => void): void {
    if (this.eventQueue.length === 0 || this.eventQueue[0]!.zxid > zxid) {
      this.inTransit--;
      resolve(value);
      return;
    }
    this.resultWaiters.push({ zxid, value, resolve: resolve as (v: unknown) => void });
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

  /**
   * Runs one API call and settles its promise after every earlier call's, so that callers see
   * results (and errors) in the order they made the calls. `body` starts right away: it must
   * queue its operations synchronously to keep the session's FIFO order.
   */
  private inOrder<T>(body: () => Promise<T>): Promise<T> {
    const seq = this.callSeq++;
    let inner: Promise<T>;
    try {
      inner = body();
    } catch (e) {
      inner = Promise.reject(e);
    }
    return new Promise<T>((resolve, reject) => {
      inner.then(
        (v) => this.handOut(seq, () => resolve(v)),
        (e: unknown) => this.handOut(seq, () => reject(e)),
      );
    });
  }

  private handOut(seq: number, settle: () => void): void {
    if (seq !== this.deliveredSeq) {
      this.parked.set(seq, settle);
      return;
    }
    settle();
    this.advanceDelivered();
  }

  /** handOut for a value or an error, allocating a closure only when the call must wait its turn. */
  private handOutValue<T>(seq: number, ok: boolean, value: unknown, resolve: (v: T) => void, reject: (e: unknown) => void): void {
    if (seq !== this.deliveredSeq) {
      this.parked.set(seq, ok ? () => resolve(value as T) : () => reject(value));
      return;
    }
    if (ok) resolve(value as T);
    else reject(value);
    this.advanceDelivered();
  }

  private advanceDelivered(): void {
    this.deliveredSeq++;
    for (let next = this.parked.get(this.deliveredSeq); next !== undefined; next = this.parked.get(this.deliveredSeq)) {
      this.parked.delete(this.deliveredSeq);
      next();
      this.deliveredSeq++;
    }
  }

  /** Queues an operation in the session's FIFO order and issues whatever may go now. */
  private enqueue(write: boolean, issue: () => void): void {
    this.issueQueue.push({ write, issue });
    this.pumpIssue();
  }

  private pumpIssue(): void {
    while (this.issueQueue.length > 0) {
      const next = this.issueQueue[0]!;
      if (!next.write && this.writesOutstanding > 0) return; // resumed when the last earlier write completes
      this.issueQueue.shift();
      next.issue();
    }
  }

  /** Issues a write (or sync) in FIFO order; resolves with its result once its turn among watch events came. */
  private ordered<T extends { zxid?: bigint } | void>(call: () => Promise<T>): Promise<T> {
    this.checkAlive();
    this.inTransit++;
    return new Promise<T>((resolve, reject) => {
      this.enqueue(true, () => {
        let p: Promise<T>;
        try {
          this.checkAlive();
          p = call();
        } catch (e) {
          this.inTransit--;
          reject(e);
          return;
        }
        this.writesOutstanding++;
        p.then(
          (r) => {
            this.writeDone();
            this.deliver(r, r && typeof r === 'object' && r.zxid !== undefined ? r.zxid : this.lastEventZxid, resolve);
          },
          (e: unknown) => {
            this.writeDone();
            this.inTransit--;
            reject(e);
          },
        );
      });
    });
  }

  private writeDone(): void {
    this.writesOutstanding--;
    this.pumpIssue();
  }

  private writeOnce(op: RequestOp, writeId?: number): Promise<ApplyResult> {
    return this.ordered(() => this.backend.write(this.id, op, writeId));
  }

  private write(op: RequestOp): Promise<ApplyResult> {
    if (!this.retry) return this.writeOnce(op);
    // Every attempt of this write carries one id, so the member never applies it twice.
    const writeId = ++this.writeIds;
    return this.withRetry(() => this.writeOnce(op, writeId));
  }

  private writeIds = 0;

  /**
   * A write call of the API that is one request: `ordered` + `inOrder` folded into one promise for
   * sessions without a retry policy (the common case; with one, the general path). Issued in the
   * session's FIFO order, answered after the watch events before its zxid, settled after every
   * earlier call; `map` turns the result into the call's value or throws its error. Same order of
   * steps as the general path, without its intermediate promises and closures.
   */
  private writeCall<R>(op: RequestOp, map: (r: ApplyResult) => R): Promise<R> {
    if (this.retry) return this.inOrder(async () => map(await this.write(op)));
    const seq = this.callSeq++;
    return new Promise<R>((resolve, reject) => {
      try {
        this.checkAlive();
      } catch (e) {
        this.handOutValue(seq, false, e, resolve, reject);
        return;
      }
      this.inTransit++;
      this.enqueue(true, () => {
        let p: Promise<ApplyResult>;
        try {
          this.checkAlive();
          p = this.backend.write(this.id, op);
        } catch (e) {
          this.inTransit--;
          this.handOutValue(seq, false, e, resolve, reject);
          return;
        }
        this.writesOutstanding++;
        p.then(
          (r) => {
            this.writeDone();
            this.deliver(r, r && typeof r === 'object' && r.zxid !== undefined ? r.zxid : this.lastEventZxid, (answer: ApplyResult) => {
              let v: R;
              try {
                v = map(answer);
              } catch (e) {
                this.handOutValue(seq, false, e, resolve, reject);
                return;
              }
              this.handOutValue(seq, true, v, resolve, reject);
            });
          },
          (e: unknown) => {
            this.writeDone();
            this.inTransit--;
            this.handOutValue(seq, false, e, resolve, reject);
          },
        );
      });
    });
  }

  /** A call that failed before it could be issued still settles in its turn. */
  private failedCall<R>(e: unknown): Promise<R> {
    return this.inOrder(() => Promise.reject(e));
  }

  /**
   * Issues a read once every earlier write of this session completed; its result comes after the
   * events it reveals (everything queued when it looked at the tree happened before).
   */
  private read<T>(fn: () => MaybePromise<T>): Promise<T> {
    this.checkAlive();
    this.inTransit++;
    return new Promise<T>((resolve, reject) => {
      this.enqueue(false, () => {
        let r: MaybePromise<T>;
        try {
          this.checkAlive();
          r = fn();
        } catch (e) {
          this.inTransit--;
          reject(e);
          return;
        }
        if (r instanceof Promise) {
          r.then(
            (v) => this.deliver(v, this.lastEventZxid, resolve),
            (e: unknown) => {
              this.inTransit--;
              reject(e);
            },
          );
        } else {
          this.deliver(r, this.lastEventZxid, resolve);
        }
      });
    });
  }

  private readRetry<T>(fn: () => MaybePromise<T>): Promise<T> {
    if (!this.retry) return this.read(fn);
    return this.withRetry(() => this.read(fn));
  }

  /**
   * A read that sets a watch. Its watch must not fire before the caller has its result (a waiter
   * that checks the result, then waits for the watch, would otherwise miss the wakeup): until the
   * caller's continuation has run — two microtask turns after the result settles, behind the
   * caller's own `await` — events for this session are queued instead of delivered on the spot.
   */
  private watchRead<T>(fn: () => MaybePromise<T>): Promise<T> {
    this.settling++;
    const p = this.readCall(fn);
    p.then(
      () => this.settled(),
      () => this.settled(),
    );
    return p;
  }

  private settled(): void {
    void Promise.resolve().then(() => {
      this.settling--;
      if (this.settling === 0 && this.eventQueue.length > 0) this.scheduleFlush();
    });
  }

  /**
   * A read call of the API. When nothing of this session is ahead of it (no queued or unfinished
   * operation, no queued event, every earlier call settled) it is answered on the spot — the
   * common case, kept free of extra promises; otherwise it takes its place in the order.
   */
  private fastReads = 0;

  private readCall<T>(fn: () => MaybePromise<T>): Promise<T> {
    // Local reads never wait for I/O, so a tight read loop would never let the event loop turn:
    // the member's ticks and sockets would starve and its followers elect another leader. Every
    // 256 reads, check; after 50 ms without a turn, yield one.
    if ((++this.fastReads & 255) === 0 && starving()) {
      return new Promise<void>((r) => setImmediate(r)).then(() => this.readCall(fn));
    }
    if (
      this.issueQueue.length === 0 && this.writesOutstanding === 0 && this.eventQueue.length === 0
      && this.deliveredSeq === this.callSeq && this.retry === undefined && !this.memberStopping && this.alive
    ) {
      let r: MaybePromise<T>;
      try {
        r = fn();
      } catch (e) {
        this.callSeq++;
        this.deliveredSeq++;
        return Promise.reject(e);
      }
      if (!(r instanceof Promise)) {
        this.callSeq++;
        this.deliveredSeq++;
        return Promise.resolve(r);
      }
      // Answered asynchronously (a remote member): settle in order like any other call.
      this.inTransit++;
      const pending = r;
      return this.inOrder(() => new Promise<T>((resolve, reject) => {
        pending.then(
          (v) => this.deliver(v, this.lastEventZxid, resolve),
          (e: unknown) => {
            this.inTransit--;
            reject(e);
          },
        );
      }));
    }
    return this.inOrder(() => this.readRetry(fn));
  }

  // ------------------------------------------------------------------ the API
  //
  // Every call gets a place in the session's order when it is made; its promise settles in that
  // order (ZooKeeper delivers a session's replies in request order), whatever the number of
  // internal steps each call takes.

  /** Creates a znode; returns its path (with the sequential suffix for sequential modes). */
  create(path: string, data?: Data, createOptions: CreateOptions | CreateMode = {}): Promise<string> {
    if (this.retry === undefined) {
      let options: CreateOptions;
      let op: RequestOp & { type: 'create' };
      try {
        options = createOptionsOf(createOptions);
        op = buildCreate(path, data, options);
      } catch (e) {
        return this.failedCall(e);
      }
      if (!options.parents) return this.writeCall(op, createdPath);
    }
    return this.inOrder(async () => {
      const options = createOptionsOf(createOptions);
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
    });
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

  getData(path: string, options: { watch?: Watcher } | Watcher = {}): Promise<{ data: Uint8Array; stat: Stat }> {
    const w = watcherOf(options);
    if (!w) return this.readCall(() => this.backend.getData(this.id, path, false));
    return this.watchRead(() => this.watched(this.dataWatchers, path, w, () => this.backend.getData(this.id, path, true)));
  }

  /**
   * Registers the callback before the member registers the watch, so that an event the member
   * sends right behind the reply always finds it; withdrawn if the read fails.
   */
  private watched<T>(table: Map<string, Set<Watcher>>, path: string, w: Watcher, call: () => MaybePromise<T>): MaybePromise<T> {
    if (typeof w !== 'function') throw new KeeperError('BADARGUMENTS', typeof path === 'string' ? path : undefined, 'watch must be a function');
    const had = table.get(path)?.has(w) ?? false;
    this.addWatcher(table, path, w);
    try {
      const r = call();
      return r instanceof Promise ? r.catch((e: unknown) => this.unwatch(table, path, w, had, e)) : r;
    } catch (e) {
      return this.unwatch(table, path, w, had, e);
    }
  }

  /** Withdraws a watcher registered for a read that failed (unless it was there before), and rethrows. */
  private unwatch(table: Map<string, Set<Watcher>>, path: string, w: Watcher, had: boolean, e: unknown): never {
    if (!had) removeWatcher(table, path, w);
    throw e;
  }

  /** Replaces the node's data; `version` (or `{ version }`) makes it conditional. Resolves to the new Stat. */
  setData(path: string, data: Data, options: { version?: number } | number = {}): Promise<Stat> {
    let op: RequestOp;
    try {
      op = { type: 'setData', path, data: toBytes(data, path), version: versionOf(options) };
    } catch (e) {
      return this.failedCall(e);
    }
    return this.writeCall(op, newStat);
  }

  delete(path: string, options: { version?: number } | number = {}): Promise<void> {
    let op: RequestOp;
    try {
      op = { type: 'delete', path, version: versionOf(options) };
    } catch (e) {
      return this.failedCall(e);
    }
    return this.writeCall(op, deleted);
  }

  /** Deletes a node and everything below it (zkCli's deleteall); NONODE when it does not exist. */
  deleteAll(path: string): Promise<void> {
    return this.inOrder(async () => {
      validatePath(path);
      for (let attempt = 0; attempt < 100; attempt++) {
        const nodes: string[] = [];
        const queue = [path];
        try {
          while (queue.length > 0) {
            const p = queue.shift()!;
            let kids: string[];
            try {
              kids = (await this.readRetry(() => this.backend.getChildren(this.id, p, false))).children;
            } catch (e) {
              if (e instanceof KeeperError && e.code === 'NONODE' && p !== path) continue;
              throw e;
            }
            // The root and the reserved /zookeeper subtree are never deleted (deleteAll('/') empties the tree).
            if (p !== '/') nodes.push(p);
            for (const k of kids) {
              const c = childPath(p, k);
              if (c !== '/zookeeper') queue.push(c);
            }
          }
          for (let i = nodes.length - 1; i >= 0; i--) {
            const r = await this.write({ type: 'delete', path: nodes[i]!, version: -1 });
            if (!r.ok && !(r.code === 'NONODE' && nodes[i] !== path)) throw resultError(r);
          }
          return;
        } catch (e) {
          // A child appeared concurrently: list again.
          if (e instanceof KeeperError && e.code === 'NOTEMPTY') continue;
          throw e;
        }
      }
      throw new KeeperError('NOTEMPTY', path, 'children keep appearing; deleteAll gave up after 100 attempts');
    });
  }

  /** Stat of the node, or null. With `watch`, fires on create, delete or data change. */
  exists(path: string, options: { watch?: Watcher } | Watcher = {}): Promise<Stat | null> {
    const w = watcherOf(options);
    if (!w) return this.readCall(() => this.backend.exists(this.id, path, false));
    return this.watchRead(() => {
      const r = this.watched(this.existWatchers, path, w, () => this.backend.exists(this.id, path, true));
      return r instanceof Promise ? r.then((stat) => this.existsWatchIsDataWatch(path, w, stat)) : this.existsWatchIsDataWatch(path, w, r);
    });
  }

  /** An exists watch on a node that exists is a data watch (it matters when watches are re-registered). */
  private existsWatchIsDataWatch(path: string, w: Watcher, stat: Stat | null): Stat | null {
    const ex = this.existWatchers.get(path);
    if (stat && ex?.delete(w)) {
      if (ex.size === 0) this.existWatchers.delete(path);
      this.addWatcher(this.dataWatchers, path, w);
    }
    return stat;
  }

  /** Child names, sorted. With `watch`, fires on a child added/removed or the node deleted. */
  getChildren(path: string, options: { watch?: Watcher } | Watcher = {}): Promise<string[]> {
    const w = watcherOf(options);
    if (!w) return this.readCall(() => childrenOf(this.backend.getChildren(this.id, path, false)));
    return this.watchRead(() => childrenOf(this.watched(this.childWatchers, path, w, () => this.backend.getChildren(this.id, path, true))));
  }

  getChildrenAndStat(path: string, options: { watch?: Watcher } | Watcher = {}): Promise<{ children: string[]; stat: Stat }> {
    const w = watcherOf(options);
    if (!w) return this.readCall(() => this.backend.getChildren(this.id, path, false));
    return this.watchRead(() => this.watched(this.childWatchers, path, w, () => this.backend.getChildren(this.id, path, true)));
  }

  /** Atomic transaction; on failure throws KeeperError (code of the failing op) with `.results`. */
  multi(ops: Op[]): Promise<OpResult[]> {
    return this.inOrder(async () => {
      if (!Array.isArray(ops)) throw new KeeperError('BADARGUMENTS', undefined, 'multi needs an array of ops');
      const r = await this.write({ type: 'multi', ops: ops.map((o) => ({ ...o })) });
      if (r.ok) return (r as { results: OpResult[] }).results;
      throw resultError(r);
    });
  }

  /** After this resolves, reads on this session see everything committed before the call. */
  sync(path = '/'): Promise<void> {
    return this.inOrder(async () => {
      validatePath(path);
      await this.withRetry(() => this.ordered(() => this.backend.sync(this.id, path)));
    });
  }

  getACL(path: string): Promise<{ acl: ACL[]; stat: Stat }> {
    return this.readCall(() => this.backend.getACL(this.id, path));
  }

  /** Replaces the node's ACL; `version` (or `{ version }`) is compared with its aversion. Resolves to the new Stat. */
  setACL(path: string, acl: readonly ACL[], options: { version?: number } | number = {}): Promise<Stat> {
    return this.inOrder(async () => {
      const list = Array.isArray(acl) ? acl.map((a: ACL) => (a !== null && typeof a === 'object' ? { ...a } : a)) : (acl as unknown as ACL[]);
      const r = await this.write({ type: 'setACL', path, acl: list, version: versionOf(options) });
      if (r.ok) return (r as { stat: Stat }).stat;
      throw resultError(r);
    });
  }

  /**
   * Adds an identity to this session, e.g. `addAuth('digest', 'user:password')`. It applies to
   * operations called after it, not to earlier ones still waiting for their turn.
   */
  addAuth(scheme: string, credentials: string): Promise<void> {
    return this.inOrder(() => {
      this.checkAlive();
      return new Promise<void>((resolve, reject) => {
        this.enqueue(true, () => {
          try {
            this.checkAlive();
            Promise.resolve(this.backend.addAuth(this.id, scheme, credentials)).then(resolve, reject);
          } catch (e) {
            reject(e);
          }
        });
      });
    });
  }

  /** A persistent (optionally recursive) watch; resolves to a function that removes it. */
  async addWatch(path: string, listener: Watcher, options: { recursive?: boolean } = {}): Promise<() => Promise<void>> {
    this.checkAlive();
    validatePath(path);
    if (typeof listener !== 'function') throw new KeeperError('BADARGUMENTS', path, 'listener must be a function');
    const recursive = options?.recursive === true;
    const table = recursive ? this.recursiveWatchers : this.persistentWatchers;
    await this.watched(table, path, listener, () => this.backend.addWatch(this.id, path, recursive));
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      if (removeWatcher(table, path, listener) && this.alive) await this.backend.removeWatch(this.id, recursive ? 'recursive' : 'persistent', path);
    };
  }

  /**
   * Removes this session's watches on `path` (ZooKeeper's removeWatches / removeAllWatches):
   * `type` 'data' (set by getData and exists), 'child' (getChildren), 'persistent' (addWatch, also
   * recursive) or 'any' (default); with `watcher`, only that callback, else every one of the type.
   * The member forgets a registration once no callback of its kind is left. With `local: true`
   * only this side forgets them (works while disconnected; the member's registration stays until
   * it fires or the session ends). Removed callbacks are not called. Fails with NOWATCHER (and
   * changes nothing) when no such watch exists. Like ZooKeeper's, `exists` on a missing node and
   * `getData` share the member's 'data' registration.
   */
  async removeWatches(path: string, options: { type?: 'data' | 'child' | 'persistent' | 'any'; watcher?: Watcher; local?: boolean } = {}): Promise<void> {
    this.checkAlive();
    validatePath(path);
    const type = options.type ?? 'any';
    if (!['data', 'child', 'persistent', 'any'].includes(type)) throw new KeeperError('BADARGUMENTS', path, "type must be 'data', 'child', 'persistent' or 'any'");
    const w = options.watcher;
    if (w !== undefined && typeof w !== 'function') throw new KeeperError('BADARGUMENTS', path, 'watcher must be a function');
    const tables: [Map<string, Set<Watcher>>, WatchKind][] = [];
    if (type === 'data' || type === 'any') tables.push([this.dataWatchers, 'data'], [this.existWatchers, 'data']);
    if (type === 'child' || type === 'any') tables.push([this.childWatchers, 'child']);
    if (type === 'persistent' || type === 'any') tables.push([this.persistentWatchers, 'persistent'], [this.recursiveWatchers, 'recursive']);
    const hit = tables.filter(([t]) => (w === undefined ? t.has(path) : t.get(path)?.has(w) === true));
    if (hit.length === 0) throw new KeeperError('NOWATCHER', path, `no ${type === 'any' ? '' : `${type} `}watch${w ? ' with this callback' : ''} on ${path} in this session`);
    // This side first (nothing may fire a removed callback from here on), then the member, for
    // each kind of registration that has no callback left on the path; if the member cannot be
    // told (CONNECTIONLOSS), its registration fires once into nothing or ends with the session,
    // and a reconnect does not re-register it.
    for (const [t] of hit) {
      if (w === undefined) t.delete(path);
      else removeWatcher(t, path, w);
    }
    const tablesOf: Record<WatchKind, Map<string, Set<Watcher>>[]> = {
      data: [this.dataWatchers, this.existWatchers], child: [this.childWatchers],
      persistent: [this.persistentWatchers], recursive: [this.recursiveWatchers],
    };
    const drop = new Set<WatchKind>();
    for (const [, kind] of hit) if (!tablesOf[kind].some((t) => t.has(path))) drop.add(kind);
    if (!options.local && this.alive) for (const kind of drop) await this.backend.removeWatch(this.id, kind, path);
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
  getAllChildrenNumber(path: string): Promise<number> {
    return this.readCall(() => this.backend.getAllChildrenNumber(this.id, path));
  }

  /** This session's ephemeral nodes whose path starts with `prefixPath` (default '/'). */
  getEphemerals(prefixPath = '/'): Promise<string[]> {
    return this.readCall(() => {
      if (typeof prefixPath !== 'string' || !prefixPath.startsWith('/')) {
        throw new KeeperError('BADARGUMENTS', String(prefixPath), 'prefix must start with /');
      }
      return this.backend.getEphemerals(this.id, prefixPath);
    });
  }

  /**
   * Ends the session: its ephemerals are deleted and its watches dropped. Operations called
   * before it are answered first; later ones fail with SESSIONEXPIRED.
   */
  close(): Promise<void> {
    return this.inOrder(async () => {
      if (!this.alive || this.memberStopping) {
        this._setState('CLOSED');
        return;
      }
      try {
        await this.ordered(() => this.backend.close(this.id));
      } finally {
        this._setState('CLOSED');
      }
    });
  }
}

/** Create options; a bare CreateMode (ZooKeeper's positional argument) means `{ mode }`. */
function createOptionsOf(options: CreateOptions | CreateMode | undefined | null): CreateOptions {
  if (options === undefined || options === null) return {};
  if (typeof options === 'number') return { mode: options };
  if (typeof options !== 'object') throw new KeeperError('BADARGUMENTS', undefined, 'create options must be an object like { mode: CreateMode.EPHEMERAL }');
  return options;
}

/**
 * The watcher of a read: `{ watch }`, or the function itself. Anything else truthy is returned
 * as is, so that the read fails with BADARGUMENTS ('watch must be a function') in order.
 */
function watcherOf(options: { watch?: Watcher } | Watcher | undefined | null): Watcher | undefined {
  if (!options) return undefined;
  if (typeof options === 'function') return options;
  if (typeof options !== 'object') return options as unknown as Watcher;
  return options.watch ?? undefined;
}

/** The children of a getChildren answer (sync or async). */
function childrenOf(r: MaybePromise<{ children: string[]; stat: Stat }>): MaybePromise<string[]> {
  return r instanceof Promise ? r.then((x) => x.children) : r.children;
}

/** The expected version from `{ version }` (or a bare number, as ZooKeeper's positional argument); -1 = any. */
function versionOf(options: { version?: number } | number | undefined | null): number {
  if (typeof options === 'number') return options;
  if (options === undefined || options === null) return -1;
  if (typeof options !== 'object') throw new KeeperError('BADARGUMENTS', undefined, 'options must be an object like { version: 3 }');
  return options.version ?? -1;
}

/** Runs watch callbacks for one event; the same callback registered several times runs once, as in ZooKeeper. */
function runWatchers(fire: Watcher[], ev: WatchEvent): void {
  const seen = new Set<Watcher>();
  for (const w of fire) {
    if (seen.has(w)) continue;
    seen.add(w);
    try {
      w(ev);
    } catch (e) {
      // A throwing watcher must not keep the others from their event; its error is not swallowed.
      queueMicrotask(() => {
        throw e;
      });
    }
  }
}

/** Validates create options and builds the request (shared with `op.create`). */
export function buildCreate(path: string, data: Data | undefined, createOptions: CreateOptions | CreateMode = {}): RequestOp & { type: 'create' } {
  const options = createOptionsOf(createOptions);
  const mode = options.mode ?? CreateMode.PERSISTENT;
  const acl = options.acl ?? Ids.OPEN_ACL_UNSAFE;
  return {
    type: 'create',
    path,
    data: toBytes(data, path),
    // The frozen default is shared as is; a caller's array is copied (they may change it later).
    acl: acl === Ids.OPEN_ACL_UNSAFE ? (acl as ACL[]) : Array.isArray(acl) ? acl.map((a: ACL) => ({ ...a })) : (acl as unknown as ACL[]),
    mode,
    ttl: options.ttlMs ?? 0,
  };
}

/** Builders for `multi` operations. */
export const op = {
  create(path: string, data?: Data, options?: CreateOptions | CreateMode): Op {
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

/** Removes one callback; true when it was the path's last one in `table` (the path is dropped). */
function removeWatcher(table: Map<string, Set<Watcher>>, path: string, w: Watcher): boolean {
  const set = table.get(path);
  if (!set) return false;
  set.delete(w);
  if (set.size > 0) return false;
  table.delete(path);
  return true;
}
