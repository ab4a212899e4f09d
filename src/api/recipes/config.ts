import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import { validatePath } from '../../core/path.js';
import type { Session } from '../session.js';
import type { RetryPolicy } from '../types.js';
import { PathChildrenCache, type ChildData } from './cache.js';
import { jsonCodec, type Codec } from './codec.js';
import { ExponentialBackoffRetry } from './retry.js';
import { checkPath, childPath, ensurePath, isCode, sleep } from './util.js';

type Keys<S> = Extract<keyof S, string>;

export interface ConfigStoreEvents<S> {
  /** A key was set, changed or deleted (`value` undefined) — by anyone. */
  change: <K extends Keys<S>>(key: K, value: S[K] | undefined, previous: S[K] | undefined) => void;
  /** A value could not be decoded, or the cache failed. */
  error: (error: Error) => void;
}

export interface ConfigStoreOptions<S> {
  /** How values are stored (default JSON, so that `get` in the CLI shows them). */
  codec?: Codec<S[Keys<S>]>;
  /** Retries of update()'s CAS under contention (default ExponentialBackoffRetry(2 ms, 29, 200 ms)). */
  retry?: RetryPolicy;
}

/**
 * A configuration center: typed values, one node per key under `path`, mirrored locally by a
 * PathChildrenCache so that get() is synchronous and every change reaches `change` listeners.
 * `S` maps keys to value types:
 *
 * ```ts
 * const cfg = new ConfigStore<{ timeoutMs: number; features: string[] }>(session, '/config/app');
 * ```
 */
export class ConfigStore<S extends Record<string, unknown> = Record<string, unknown>> extends EventEmitter<ConfigStoreEvents<S>> {
  readonly path: string;
  private readonly codec: Codec<S[Keys<S>]>;
  private readonly retry: RetryPolicy;
  private readonly cache: PathChildrenCache;
  private readonly values = new Map<string, { value: S[Keys<S>]; version: number }>();
  private started = false;

  constructor(readonly session: Session, path: string, options: ConfigStoreOptions<S> = {}) {
    super();
    this.path = checkPath(path, 'ConfigStore');
    this.codec = options.codec ?? jsonCodec<S[Keys<S>]>();
    this.retry = options.retry ?? new ExponentialBackoffRetry(2, 29, 200);
    this.cache = new PathChildrenCache(session, path);
    this.cache.on('event', (e) => {
      if (!e.data) return;
      const key = e.data.path.slice(e.data.path.lastIndexOf('/') + 1);
      const previous = this.values.get(key)?.value;
      if (e.type === 'CHILD_REMOVED') {
        this.values.delete(key);
        this.emit('change', key as Keys<S>, undefined, previous);
        return;
      }
      const v = this.decode(e.data);
      if (!v) return;
      this.values.set(key, v);
      this.emit('change', key as Keys<S>, v.value, previous);
    });
    this.cache.on('error', (e) => this.emit('error', e));
  }

  private decode(d: ChildData): { value: S[Keys<S>]; version: number } | undefined {
    try {
      return { value: this.codec.decode(d.data ?? new Uint8Array(0)), version: d.stat.version };
    } catch (e) {
      this.emit('error', new KeeperError('BADARGUMENTS', d.path, `ConfigStore: cannot decode ${d.path}: ${(e as Error).message}`));
      return undefined;
    }
  }

  private keyPath(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.includes('/')) {
      throw new KeeperError('BADARGUMENTS', undefined, `ConfigStore: key '${String(key)}' must be a non-empty name without '/'`);
    }
    const p = childPath(this.path, key);
    validatePath(p);
    return p;
  }

  /** Creates the config node if needed and loads every key; resolves when get() is current. */
  async start(): Promise<void> {
    if (this.started) throw new KeeperError('BADARGUMENTS', this.path, 'ConfigStore: already started');
    this.started = true;
    await ensurePath(this.session, this.path);
    await this.cache.start('BUILD_INITIAL_CACHE');
    for (const d of this.cache.getCurrentData()) {
      const v = this.decode(d);
      if (v) this.values.set(d.path.slice(d.path.lastIndexOf('/') + 1), v);
    }
  }

  private requireStarted(): void {
    if (!this.started) throw new KeeperError('BADARGUMENTS', this.path, 'ConfigStore: call start() first (get() reads the local mirror)');
  }

  /** The value of `key` as last seen (undefined when unset). */
  get<K extends Keys<S>>(key: K): S[K] | undefined {
    this.requireStarted();
    this.keyPath(key);
    return this.values.get(key)?.value as S[K] | undefined;
  }

  /** The value with its node version (for set({ version })). */
  getVersioned<K extends Keys<S>>(key: K): { value: S[K]; version: number } | undefined {
    this.requireStarted();
    this.keyPath(key);
    return this.values.get(key) as { value: S[K]; version: number } | undefined;
  }

  /** Every key and value as last seen. */
  entries(): Partial<S> {
    this.requireStarted();
    const out: Record<string, unknown> = {};
    for (const [k, v] of [...this.values].sort((a, b) => (a[0] < b[0] ? -1 : 1))) out[k] = v.value;
    return out as Partial<S>;
  }

  keys(): Keys<S>[] {
    this.requireStarted();
    return [...this.values.keys()].sort() as Keys<S>[];
  }

  /** The value straight from the ensemble, after a sync (linearizable). */
  async read<K extends Keys<S>>(key: K): Promise<S[K] | undefined> {
    const p = this.keyPath(key);
    await this.session.sync(p);
    try {
      return this.codec.decode((await this.session.getData(p)).data) as S[K];
    } catch (e) {
      if (isCode(e, 'NONODE')) return undefined;
      throw e;
    }
  }

  /**
   * Sets `key`. With `version`, only if the stored value is still at that version (BADVERSION
   * otherwise; version -1 or omitted: unconditionally). Resolves the new version.
   */
  async set<K extends Keys<S>>(key: K, value: S[K], options: { version?: number } = {}): Promise<number> {
    const p = this.keyPath(key);
    const data = this.codec.encode(value as S[Keys<S>]);
    const version = options.version ?? -1;
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        const stat = await this.session.setData(p, data, { version });
        return stat.version;
      } catch (e) {
        if (!isCode(e, 'NONODE') || version !== -1) throw e;
      }
      try {
        await this.session.create(p, data, { parents: true });
        return 0;
      } catch (e) {
        if (!isCode(e, 'NODEEXISTS')) throw e;
      }
    }
    throw new KeeperError('SYSTEMERROR', p, 'ConfigStore.set: the key keeps being created and deleted concurrently');
  }

  /** Read-modify-write with CAS on the version, retried under contention; resolves the value written. */
  async update<K extends Keys<S>>(key: K, fn: (current: S[K] | undefined) => S[K]): Promise<S[K]> {
    const p = this.keyPath(key);
    const start = Date.now();
    for (let attempt = 0; attempt < 1_000_000; attempt++) {
      let current: S[K] | undefined;
      let version = -2;
      try {
        const r = await this.session.getData(p);
        current = this.codec.decode(r.data) as S[K];
        version = r.stat.version;
      } catch (e) {
        if (!isCode(e, 'NONODE')) throw e;
      }
      const next = fn(current);
      const data = this.codec.encode(next as S[Keys<S>]);
      try {
        if (version === -2) await this.session.create(p, data, { parents: true });
        else await this.session.setData(p, data, { version });
        return next;
      } catch (e) {
        if (!isCode(e, 'BADVERSION', 'NODEEXISTS', 'NONODE')) throw e;
      }
      const delay = this.retry.allowRetry(attempt, Date.now() - start);
      if (delay === false) throw new KeeperError('BADVERSION', p, `ConfigStore.update: gave up after ${attempt + 1} attempts under contention`);
      if (delay > 0) await sleep(delay);
    }
    throw new KeeperError('SYSTEMERROR', p, 'ConfigStore.update: no outcome');
  }

  /** Deletes `key` (optionally only at `version`); false when it was not set. */
  async delete<K extends Keys<S>>(key: K, options: { version?: number } = {}): Promise<boolean> {
    try {
      await this.session.delete(this.keyPath(key), { version: options.version ?? -1 });
      return true;
    } catch (e) {
      if (isCode(e, 'NONODE')) return false;
      throw e;
    }
  }

  /** Calls `listener` on every change of `key`; returns the function that unsubscribes. */
  onChange<K extends Keys<S>>(key: K, listener: (value: S[K] | undefined, previous: S[K] | undefined) => void): () => void {
    this.keyPath(key);
    const l = (k: Keys<S>, value: unknown, previous: unknown): void => {
      if (k === key) listener(value as S[K] | undefined, previous as S[K] | undefined);
    };
    this.on('change', l);
    return () => {
      this.off('change', l);
    };
  }

  /** Waits until every change seen so far has been applied to the local mirror. */
  settled(): Promise<void> {
    return this.cache.settled();
  }

  async close(): Promise<void> {
    await this.cache.close();
  }
}
