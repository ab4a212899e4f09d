import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import { CreateMode, isEphemeralMode, isSequential } from '../../core/createMode.js';
import { parentOf } from '../../core/path.js';
import type { Session } from '../session.js';
import type { Data, SessionState } from '../types.js';
import { toBytes } from '../util.js';
import { addConnectionStateListener } from './connection.js';
import { createProtected } from './protected.js';
import { checkPath, Deadline, deleteEventually, isCode, isConnected, isDead, sessionGone, sleep, trigger, waitFor, type WaitOptions } from './util.js';

export interface PersistentNodeOptions {
  /** Default EPHEMERAL. Sequential modes get a new sequence number on every re-creation. */
  mode?: CreateMode;
  /** Protected names for sequential modes (default true). */
  useProtection?: boolean;
  /**
   * Where to get a new session once the current one is LOST. Without it the node cannot come
   * back after a loss (an `error` is emitted); with it, the node is re-created with the new
   * session — which is the point of a persistent ephemeral node.
   */
  sessionFactory?: () => Promise<Session>;
}

export interface PersistentNodeEvents {
  /** The node was (re-)created; `path` is the actual path (with the sequence suffix). */
  created: (path: string) => void;
  /** The node disappeared (deleted by someone, or with a lost session); it is being re-created. */
  deleted: (path: string) => void;
  /** A new session replaced the lost one (sessionFactory). */
  sessionReplaced: (session: Session) => void;
  error: (error: Error) => void;
}

/**
 * A node that stays present as long as this object is open (Curator's PersistentNode /
 * PersistentEphemeralNode): re-created after it is deleted (NodeDeleted), after a reconnect finds
 * it gone, and — given a `sessionFactory` — with a new session after the old one is LOST.
 * An ephemeral node of a lost session that the ensemble has not expired yet is waited out (its
 * NodeDeleted) rather than fought over.
 */
export class PersistentNode extends EventEmitter<PersistentNodeEvents> {
  readonly basePath: string;
  readonly mode: CreateMode;
  private _session: Session;
  private data: Uint8Array;
  private actual: string | undefined;
  private state: 'LATENT' | 'STARTED' | 'CLOSED' = 'LATENT';
  private running: Promise<void> | undefined;
  private again = false;
  private unlisten: (() => void) | undefined;
  private readonly useProtection: boolean;
  private readonly factory: (() => Promise<Session>) | undefined;
  private createdOnce = trigger();

  constructor(session: Session, path: string, data: Data, options: PersistentNodeOptions = {}) {
    super();
    const mode = options.mode ?? CreateMode.EPHEMERAL;
    checkPath(isSequential(mode) ? (path.endsWith('/') ? path.slice(0, -1) || '/' : path) : path, 'PersistentNode');
    if (mode === CreateMode.CONTAINER || mode === CreateMode.PERSISTENT_WITH_TTL || mode === CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL) {
      throw new KeeperError('BADARGUMENTS', path, 'PersistentNode: container and TTL modes are not supported (they are deleted by the ensemble by design)');
    }
    this._session = session;
    this.basePath = path;
    this.mode = mode;
    this.data = toBytes(data, path);
    this.useProtection = options.useProtection ?? true;
    this.factory = options.sessionFactory;
  }

  /** The session the node currently lives in (changes after a LOST with a sessionFactory). */
  get session(): Session {
    return this._session;
  }

  /** Starts keeping the node present (creation happens in the background; see waitForInitialCreate). */
  start(): void {
    if (this.state !== 'LATENT') throw new KeeperError('BADARGUMENTS', this.basePath, `PersistentNode: cannot start in state ${this.state}`);
    this.state = 'STARTED';
    this.attach(this._session);
    this.ensure();
  }

  private attach(session: Session): void {
    this.unlisten?.();
    this._session = session;
    this.unlisten = addConnectionStateListener(session, (s: SessionState) => {
      if (this.state !== 'STARTED') return;
      if (s === 'RECONNECTED' || isDead(s)) this.ensure();
    });
  }

  /** Resolves true once the node has been created, false when `timeoutMs` passed first. */
  async waitForInitialCreate(options: WaitOptions = {}): Promise<boolean> {
    if (this.createdOnce.fired) return true;
    const deadline = new Deadline(options.timeoutMs);
    for (let i = 0; i < 1_000_000 && !this.createdOnce.fired; i++) {
      if (this.state === 'CLOSED') return false;
      try {
        const r = await waitFor(this._session, this.createdOnce, deadline, options.signal, 'PersistentNode');
        if (r === 'timeout') return this.createdOnce.fired;
      } catch (e) {
        if (!(isCode(e, 'SESSIONEXPIRED') && this.factory)) throw e;
        await sleep(10); // a new session is on its way
      }
    }
    return this.createdOnce.fired;
  }

  /** The node's path (with its sequence suffix), or undefined while it does not exist. */
  getActualPath(): string | undefined {
    return this.actual;
  }

  getData(): Uint8Array {
    return this.data.slice();
  }

  /** Changes the data, now (if the node exists) and for every re-creation. */
  async setData(data: Data): Promise<void> {
    this.data = toBytes(data, this.basePath);
    const p = this.actual;
    if (!p || !isConnected(this._session.state)) return;
    try {
      await this._session.setData(p, this.data);
    } catch (e) {
      if (!isCode(e, 'NONODE', 'CONNECTIONLOSS')) throw e;
      this.ensure();
    }
  }

  private ensure(): void {
    this.again = true;
    if (this.running) return;
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  private async loop(): Promise<void> {
    for (let round = 0; this.again && this.state === 'STARTED'; round++) {
      this.again = false;
      if (round > 20) await sleep(Math.min(1000, 10 * round)); // keeps failing: back off
      try {
        await this.ensureOnce();
      } catch (e) {
        if (!isCode(e, 'CONNECTIONLOSS', 'SESSIONEXPIRED')) {
          this.emit('error', e as Error);
          this.again = true;
        }
      }
    }
  }

  private watchNode = (): void => {
    if (this.state === 'STARTED') this.ensure();
  };

  private async ensureOnce(): Promise<void> {
    let s = this._session;
    if (isDead(s.state)) {
      if (this.actual) {
        const gone = this.actual;
        this.actual = undefined;
        if (isEphemeralMode(this.mode)) this.emit('deleted', gone);
      }
      if (!this.factory) {
        this.emit('error', sessionGone(s, `PersistentNode ${this.basePath}`));
        return;
      }
      s = await this.factory();
      if (this.state !== 'STARTED') {
        return;
      }
      this.attach(s);
      this.emit('sessionReplaced', s);
    }
    if (!isConnected(s.state)) return; // RECONNECTED or LOST brings us back
    const ephemeral = isEphemeralMode(this.mode);
    if (this.actual) {
      const stat = await s.exists(this.actual, { watch: this.watchNode });
      if (stat && (!ephemeral || stat.ephemeralOwner === s.id)) return; // present and ours; the watch tells us when not
      const gone = this.actual;
      this.actual = undefined;
      this.emit('deleted', gone);
    }
    let path: string;
    if (isSequential(this.mode)) {
      if (this.useProtection) {
        const parent = this.basePath.endsWith('/') ? this.basePath.slice(0, -1) : parentOf(this.basePath);
        const name = this.basePath.endsWith('/') ? '' : this.basePath.slice(this.basePath.lastIndexOf('/') + 1);
        const node = await createProtected(s, parent, name, { data: this.data, mode: this.mode });
        if (!node) return;
        path = node.path;
      } else {
        path = await s.create(this.basePath, this.data, { mode: this.mode, parents: true });
      }
    } else {
      try {
        path = await s.create(this.basePath, this.data, { mode: this.mode, parents: true });
      } catch (e) {
        if (!isCode(e, 'NODEEXISTS')) throw e;
        const stat = await s.exists(this.basePath, { watch: this.watchNode });
        if (!stat) {
          this.again = true;
          return;
        }
        if (ephemeral && stat.ephemeralOwner !== s.id) {
          // Someone else's (often our own lost session, not expired yet): wait for its NodeDeleted.
          return;
        }
        path = this.basePath;
        if (!ephemeral) await s.setData(path, this.data);
      }
    }
    if (this.state !== 'STARTED') {
      void deleteEventually(s, path);
      return;
    }
    this.actual = path;
    const stat = await s.exists(path, { watch: this.watchNode });
    if (!stat) {
      this.again = true;
      return;
    }
    this.emit('created', path);
    this.createdOnce.fire();
  }

  /** Stops keeping the node and deletes it. */
  async close(): Promise<void> {
    if (this.state === 'CLOSED') return;
    const wasStarted = this.state === 'STARTED';
    this.state = 'CLOSED';
    this.unlisten?.();
    await this.running?.catch(() => undefined);
    const p = this.actual;
    this.actual = undefined;
    if (wasStarted && p && !isDead(this._session.state)) {
      try {
        await this._session.delete(p);
      } catch (e) {
        if (!isCode(e, 'NONODE', 'CONNECTIONLOSS', 'SESSIONEXPIRED')) throw e;
        if (isCode(e, 'CONNECTIONLOSS')) void deleteEventually(this._session, p);
      }
    }
  }
}
