import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import { CreateMode } from '../../core/createMode.js';
import type { Session } from '../session.js';
import type { SessionState } from '../types.js';
import { addConnectionStateListener, connectionGeneration } from './connection.js';
import { Mutex } from './mutex.js';
import { createProtected, unprotectedName } from './protected.js';
import {
  abortError, checkPath, childPath, Deadline, deleteEventually, isCode, isConnected, isDead, sessionGone, sleep,
  sortBySequence, trigger, waitFor, type WaitOptions,
} from './util.js';

/** A contender for leadership, as Curator's Participant. */
export interface Participant {
  /** The id the contender registered with. */
  id: string;
  /** True for the current leader (the first node). */
  isLeader: boolean;
  /** The contender's node. */
  path: string;
}

async function participantsOf(session: Session, path: string, marker: string): Promise<Participant[]> {
  let children: string[];
  try {
    await session.sync(path); // this member may lag the leader: list what has been committed
    children = sortBySequence(await session.getChildren(path), marker);
  } catch (e) {
    if (isCode(e, 'NONODE')) return [];
    throw e;
  }
  const out: Participant[] = [];
  for (const name of children) {
    try {
      const { data } = await session.getData(childPath(path, name));
      out.push({ id: new TextDecoder().decode(data), isLeader: out.length === 0, path: childPath(path, name) });
    } catch (e) {
      if (!isCode(e, 'NONODE')) throw e;
    }
  }
  return out;
}

export type LeaderLatchState = 'LATENT' | 'STARTED' | 'CLOSED';

export interface LeaderLatchEvents {
  /** This latch became the leader. */
  isLeader: () => void;
  /** This latch stopped being the leader (SUSPENDED, LOST, a lost race after reconnecting, or close with NOTIFY_LEADER). */
  notLeader: () => void;
  /** The latch cannot go on (its session ended) or a background step failed. */
  error: (error: Error) => void;
}

export interface LeaderLatchOptions {
  /** Stored in the latch node; shown by getParticipants(). Default ''. */
  id?: string;
  /** Whether close() emits notLeader when leading (Curator's CloseMode). Default 'SILENT'. */
  closeMode?: 'SILENT' | 'NOTIFY_LEADER';
}

const LATCH_NAME = 'latch-';

/**
 * Leader election by latch (Curator's LeaderLatch): every contender adds a protected
 * ephemeral-sequential node under `path`; the first one leads; each other one watches only its
 * predecessor. Leadership is given up the moment the session is SUSPENDED (the session might
 * expire and someone else lead while we are cut off) or LOST. After RECONNECTED the latch does not
 * trust what it knew: it syncs, checks that its node still exists and is first, and only then
 * leads again — so two latches never both believe they lead on uninterrupted sessions (the
 * reconnect races behind Curator's double-leader bugs). A latch is bound to its session: after
 * LOST it emits `error` and stays not-leader; start a new latch on a new session.
 */
export class LeaderLatch extends EventEmitter<LeaderLatchEvents> {
  readonly path: string;
  readonly id: string;
  private readonly closeMode: 'SILENT' | 'NOTIFY_LEADER';
  private _state: LeaderLatchState = 'LATENT';
  private leader = false;
  private node: { path: string; name: string; czxid: bigint } | undefined;
  private checking: Promise<void> | undefined;
  private again = false;
  private syncFirst = false;
  private unlisten: (() => void) | undefined;

  constructor(readonly session: Session, path: string, options: LeaderLatchOptions | string = {}) {
    super();
    checkPath(path, 'LeaderLatch');
    const o = typeof options === 'string' ? { id: options } : options;
    this.path = path;
    this.id = o.id ?? '';
    this.closeMode = o.closeMode ?? 'SILENT';
  }

  get state(): LeaderLatchState {
    return this._state;
  }

  /** True while this latch leads and its session is uninterrupted. */
  hasLeadership(): boolean {
    return this.leader && this._state === 'STARTED' && isConnected(this.session.state);
  }

  /** Fencing token of the leadership: the latch node's czxid (grows with each new leader). */
  get fencingToken(): bigint {
    if (!this.hasLeadership() || !this.node) throw new KeeperError('BADARGUMENTS', this.path, 'LeaderLatch: no fencing token: not the leader');
    return this.node.czxid;
  }

  /** The latch node (undefined before start and after a loss). */
  get ourPath(): string | undefined {
    return this.node?.path;
  }

  /** Joins the election; resolves once the latch node exists and the first check ran. */
  async start(): Promise<void> {
    if (this._state !== 'LATENT') throw new KeeperError('BADARGUMENTS', this.path, `LeaderLatch: cannot be started in state ${this._state}`);
    if (isDead(this.session.state)) throw sessionGone(this.session, 'LeaderLatch');
    this._state = 'STARTED';
    this.unlisten = addConnectionStateListener(this.session, (s) => this.onState(s));
    await this.check(false);
  }

  private onState(s: SessionState): void {
    if (this._state !== 'STARTED') return;
    if (!isConnected(s)) {
      this.setLeadership(false);
      if (isDead(s)) {
        this.node = undefined;
        this.emit('error', sessionGone(this.session, `LeaderLatch ${this.path}`));
      }
      return;
    }
    // Back: what we knew may be stale (our node may be gone, or no longer first). Look again, synced.
    void this.check(true);
  }

  private setLeadership(v: boolean): void {
    if (this.leader === v) return;
    this.leader = v;
    this.emit(v ? 'isLeader' : 'notLeader');
  }

  /** Runs the election check; concurrent requests coalesce into one more round. */
  private check(sync: boolean): Promise<void> {
    this.again = true;
    this.syncFirst ||= sync;
    if (!this.checking) {
      this.checking = this.checkLoop().finally(() => {
        this.checking = undefined;
      });
    }
    return this.checking;
  }

  private async checkLoop(): Promise<void> {
    for (let round = 0; this.again && this._state === 'STARTED'; round++) {
      this.again = false;
      const sync = this.syncFirst;
      this.syncFirst = false;
      if (round > 100) await sleep(Math.min(200, round)); // something keeps changing: do not spin
      try {
        await this.checkOnce(sync);
      } catch (e) {
        if (isCode(e, 'CONNECTIONLOSS')) {
          this.setLeadership(false); // RECONNECTED starts the next check
        } else if (isCode(e, 'SESSIONEXPIRED')) {
          this.setLeadership(false);
        } else {
          this.emit('error', e as Error);
          this.again = this.again || this._state === 'STARTED';
          await sleep(100);
        }
      }
    }
  }

  private async checkOnce(sync: boolean): Promise<void> {
    const s = this.session;
    if (!isConnected(s.state)) {
      this.setLeadership(false);
      return;
    }
    const generation = connectionGeneration(s);
    if (sync) await s.sync(this.path);
    if (!this.node) {
      const created = await createProtected(s, this.path, LATCH_NAME, { data: this.id, mode: CreateMode.EPHEMERAL_SEQUENTIAL });
      if (!created) return;
      const stat = await s.exists(created.path);
      if (this._state !== 'STARTED') {
        void deleteEventually(s, created.path);
        return;
      }
      if (!stat) {
        this.again = true;
        return;
      }
      this.node = { path: created.path, name: created.name, czxid: stat.czxid };
    }
    const node = this.node;
    const sorted = sortBySequence(await s.getChildren(this.path), LATCH_NAME);
    const i = sorted.indexOf(node.name);
    if (i < 0) {
      // Our node is gone while the session lives (deleted by someone): take a new place in line.
      this.setLeadership(false);
      if (this.node === node) this.node = undefined;
      this.again = true;
      return;
    }
    if (i === 0) {
      if (this._state === 'STARTED' && isConnected(s.state) && generation === connectionGeneration(s) && this.node === node) {
        this.setLeadership(true);
      } else {
        this.again = true;
      }
      return;
    }
    this.setLeadership(false);
    try {
      await s.getData(childPath(this.path, sorted[i - 1]!), { watch: () => void this.check(false) });
    } catch (e) {
      if (isCode(e, 'NONODE')) this.again = true;
      else throw e;
    }
  }

  /**
   * Waits until this latch leads. Resolves true when it does, false when `timeoutMs` passed;
   * rejects when the signal aborts, the latch is closed or its session ends.
   */
  async await(options: WaitOptions = {}): Promise<boolean> {
    const deadline = new Deadline(options.timeoutMs);
    for (let i = 0; i < 1_000_000; i++) {
      if (this._state === 'CLOSED') throw new KeeperError('BADARGUMENTS', this.path, 'LeaderLatch: closed while awaiting leadership');
      if (this._state === 'LATENT') throw new KeeperError('BADARGUMENTS', this.path, 'LeaderLatch: not started');
      if (options.signal?.aborted) throw abortError(options.signal);
      if (this.hasLeadership()) return true;
      if (isDead(this.session.state)) throw sessionGone(this.session, 'LeaderLatch.await');
      if (deadline.expired) return false;
      const t = trigger();
      const wake = (): void => t.fire();
      this.on('isLeader', wake);
      this.on('error', wake);
      this.closeWaiters.add(wake);
      let r: Awaited<ReturnType<typeof waitFor>>;
      try {
        r = await waitFor(this.session, t, deadline, options.signal, 'LeaderLatch.await');
      } finally {
        this.off('isLeader', wake);
        this.off('error', wake);
        this.closeWaiters.delete(wake);
      }
      if (r === 'timeout') return this.hasLeadership();
    }
    return false;
  }

  private readonly closeWaiters = new Set<() => void>();

  /** Contenders in line, leader first. */
  getParticipants(): Promise<Participant[]> {
    return participantsOf(this.session, this.path, LATCH_NAME);
  }

  /** The current leader, or undefined when nobody is in line. */
  async getLeader(): Promise<Participant | undefined> {
    return (await this.getParticipants())[0];
  }

  /** Leaves the election (its node is deleted); a leader gives up leadership. */
  async close(): Promise<void> {
    if (this._state === 'CLOSED') return;
    const wasLeader = this.leader;
    this._state = 'CLOSED';
    this.unlisten?.();
    this.leader = false;
    if (wasLeader && this.closeMode === 'NOTIFY_LEADER') this.emit('notLeader');
    for (const w of this.closeWaiters) w();
    this.closeWaiters.clear();
    await this.checking?.catch(() => undefined);
    const node = this.node;
    this.node = undefined;
    if (node) await deleteEventually(this.session, node.path);
  }

  /** The latch node name without its protection prefix (for logs). */
  get nodeName(): string | undefined {
    return this.node ? unprotectedName(this.node.name) : undefined;
  }
}

/** What a LeaderSelector runs while it leads. */
export interface LeaderSelectorListener {
  /**
   * Called when this selector becomes the leader; leadership ends when it returns (or throws).
   * `signal` aborts when leadership must end early: the session was SUSPENDED (by default) or
   * LOST, or the selector was closed. Check it before every action taken as the leader.
   */
  takeLeadership(signal: AbortSignal, selector: LeaderSelector): Promise<void> | void;
}

export interface LeaderSelectorOptions {
  /** Stored in the selector's lock node; shown by getParticipants(). */
  id?: string;
  /** Queue again after leadership ends (Curator's autoRequeue()). Default false. */
  autoRequeue?: boolean;
  /**
   * When to interrupt a running takeLeadership: 'SUSPENDED' (default, Curator's standard
   * policy: a suspended session may expire while we act) or 'LOST' (Curator's session policy:
   * keep leading through a suspension that ends in RECONNECTED).
   */
  interruptOn?: 'SUSPENDED' | 'LOST';
}

export interface LeaderSelectorEvents {
  /** takeLeadership threw, or the selector could not queue (e.g. its session ended). */
  error: (error: Error) => void;
  /** Leadership began (before takeLeadership is called). */
  leadershipStarted: () => void;
  /** Leadership ended (takeLeadership returned or was interrupted). */
  leadershipEnded: () => void;
}

/**
 * Leader election by callback (Curator's LeaderSelector): contenders queue on a Mutex; the
 * holder runs `takeLeadership(signal)` and leads until it returns. The signal aborts on
 * SUSPENDED/LOST (configurable), so a leader that learned it may have been replaced stops acting.
 */
export class LeaderSelector extends EventEmitter<LeaderSelectorEvents> {
  readonly path: string;
  readonly id: string;
  readonly autoRequeue: boolean;
  private readonly interruptOn: 'SUSPENDED' | 'LOST';
  private readonly listener: LeaderSelectorListener;
  private readonly mutex: Mutex;
  private closed = false;
  private started = false;
  private running: Promise<void> | undefined;
  private requeueRequested = false;
  private leading: AbortController | undefined;
  private readonly closeController = new AbortController();

  constructor(readonly session: Session, path: string, listener: LeaderSelectorListener | LeaderSelectorListener['takeLeadership'], options: LeaderSelectorOptions = {}) {
    super();
    checkPath(path, 'LeaderSelector');
    this.path = path;
    this.id = options.id ?? '';
    this.autoRequeue = options.autoRequeue ?? false;
    this.interruptOn = options.interruptOn ?? 'SUSPENDED';
    this.listener = typeof listener === 'function' ? { takeLeadership: listener } : listener;
    this.mutex = new Mutex(session, path, { lockName: 'lock-', data: this.id });
    this.mutex.loseOn = this.interruptOn;
  }

  /** Joins the election (once). */
  start(): void {
    if (this.closed) throw new KeeperError('BADARGUMENTS', this.path, 'LeaderSelector: closed');
    if (this.started) throw new KeeperError('BADARGUMENTS', this.path, 'LeaderSelector: already started');
    this.started = true;
    this.requeue();
  }

  /** Queues again if not queued or leading; true when it (re)queued. */
  requeue(): boolean {
    if (this.closed || !this.started) return false;
    if (this.running) {
      this.requeueRequested = true;
      return false;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
      if (this.requeueRequested && !this.closed) {
        this.requeueRequested = false;
        this.requeue();
      }
    });
    return true;
  }

  /** True while takeLeadership runs and has not been interrupted. */
  hasLeadership(): boolean {
    return this.leading !== undefined && !this.leading.signal.aborted;
  }

  private async loop(): Promise<void> {
    for (let round = 0; !this.closed; round++) {
      let acquired: boolean;
      try {
        acquired = await this.mutex.acquire({ signal: this.closeController.signal });
      } catch (e) {
        if (this.closed) return;
        this.emit('error', e as Error);
        if (isDead(this.session.state)) return;
        await sleep(Math.min(1000, 50 * (round + 1)));
        continue;
      }
      if (!acquired) continue;
      await this.lead();
      if (!this.autoRequeue || this.closed || isDead(this.session.state)) return;
    }
  }

  private async lead(): Promise<void> {
    const ctl = new AbortController();
    const interrupt = (why: SessionState): void => {
      if (!ctl.signal.aborted) ctl.abort(new KeeperError(isDead(why) ? 'SESSIONEXPIRED' : 'CONNECTIONLOSS', this.path, `LeaderSelector: leadership interrupted (${why})`));
    };
    const onState = (s: SessionState): void => {
      if (isDead(s) || (this.interruptOn === 'SUSPENDED' && !isConnected(s))) interrupt(s);
    };
    const onLost = (s: SessionState): void => interrupt(s);
    const onClose = (): void => interrupt('CLOSED');
    this.session.on('state', onState);
    this.mutex.on('lost', onLost);
    this.closeController.signal.addEventListener('abort', onClose);
    this.leading = ctl;
    try {
      if (!this.mutex.isAcquiredInThisProcess()) return; // lost between acquiring and here
      onState(this.session.state);
      if (ctl.signal.aborted) return;
      this.emit('leadershipStarted');
      try {
        await this.listener.takeLeadership(ctl.signal, this);
      } catch (e) {
        if (!ctl.signal.aborted) this.emit('error', e as Error);
      }
    } finally {
      this.leading = undefined;
      if (!ctl.signal.aborted) ctl.abort(new KeeperError('BADARGUMENTS', this.path, 'LeaderSelector: leadership ended'));
      this.session.off('state', onState);
      this.mutex.off('lost', onLost);
      this.closeController.signal.removeEventListener('abort', onClose);
      this.emit('leadershipEnded');
      try {
        await this.mutex.release();
      } catch {
        // lost meanwhile: its node is being deleted already
      }
    }
  }

  /** Contenders in line, leader first. */
  getParticipants(): Promise<Participant[]> {
    return participantsOf(this.session, this.path, 'lock-');
  }

  async getLeader(): Promise<Participant | undefined> {
    return (await this.getParticipants())[0];
  }

  /** Leaves the election: interrupts a running takeLeadership and waits for it to return. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeController.abort(new KeeperError('BADARGUMENTS', this.path, 'LeaderSelector: closed'));
    await this.running;
  }
}
