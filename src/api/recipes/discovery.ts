import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import { CreateMode } from '../../core/createMode.js';
import type { Session } from '../session.js';
import { PathChildrenCache } from './cache.js';
import { jsonCodec, type Codec } from './codec.js';
import { PersistentNode } from './persistentNode.js';
import { checkPath, childPath, ensurePath, isCode } from './util.js';

/** A registered instance of a service (Curator's ServiceInstance). */
export interface ServiceInstance<P = unknown> {
  name: string;
  id: string;
  address?: string;
  port?: number;
  sslPort?: number;
  payload?: P;
  /** ms since the epoch. */
  registrationTimeUTC: number;
  /** DYNAMIC: ephemeral, goes with the registering session (default). PERMANENT: persistent until unregistered. */
  serviceType: 'DYNAMIC' | 'PERMANENT';
  uriSpec?: string;
}

/** What registerService() takes: `id`, `registrationTimeUTC` and `serviceType` are filled in when missing. */
export type ServiceInstanceInput<P = unknown> = Omit<ServiceInstance<P>, 'id' | 'registrationTimeUTC' | 'serviceType'>
  & Partial<Pick<ServiceInstance<P>, 'id' | 'registrationTimeUTC' | 'serviceType'>>;

function checkName(what: string, v: string): void {
  if (typeof v !== 'string' || v.length === 0 || v.includes('/') || v === '.' || v === '..' || v === 'zookeeper') {
    throw new KeeperError('BADARGUMENTS', undefined, `ServiceDiscovery: ${what} '${String(v)}' must be a non-empty name without '/'`);
  }
}

// ------------------------------------------------------------------ selection strategies

/** How a ServiceProvider picks one of the live instances. */
export interface ProviderStrategy<P = unknown> {
  readonly name: string;
  /** `key` is the caller's routing key (consistent-hash); `active(id)` the calls in flight to an instance. */
  select(instances: readonly ServiceInstance<P>[], context: { key?: string; active(id: string): number }): ServiceInstance<P> | undefined;
}

/** Uniformly random. */
export class RandomStrategy<P = unknown> implements ProviderStrategy<P> {
  readonly name = 'random';
  constructor(private readonly random: () => number = Math.random) {}
  select(instances: readonly ServiceInstance<P>[]): ServiceInstance<P> | undefined {
    if (instances.length === 0) return undefined;
    return instances[Math.floor(this.random() * instances.length)];
  }
}

/** Each instance in turn (instances ordered by id). */
export class RoundRobinStrategy<P = unknown> implements ProviderStrategy<P> {
  readonly name = 'round-robin';
  private next = 0;
  select(instances: readonly ServiceInstance<P>[]): ServiceInstance<P> | undefined {
    if (instances.length === 0) return undefined;
    const i = this.next % instances.length;
    this.next = (i + 1) % Number.MAX_SAFE_INTEGER;
    return instances[i];
  }
}

/** The instance with the fewest calls in flight from this provider (ties: the next one in round-robin order). */
export class LeastActiveStrategy<P = unknown> implements ProviderStrategy<P> {
  readonly name = 'least-active';
  private cursor = 0;
  select(instances: readonly ServiceInstance<P>[], context: { active(id: string): number }): ServiceInstance<P> | undefined {
    const n = instances.length;
    if (n === 0) return undefined;
    let best = -1;
    let min = Number.POSITIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      const a = context.active(instances[i]!.id);
      if (a < min) {
        min = a;
        best = i;
      }
    }
    this.cursor = (best + 1) % n;
    return instances[best];
  }
}

function hash32(s: string): number {
  return createHash('md5').update(s).digest().readUInt32BE(0);
}

/**
 * Consistent hashing on a ring with `virtualNodes` points per instance: a key keeps going to the
 * same instance while it lives, and only ~1/n of the keys move when an instance comes or goes.
 */
export class ConsistentHashStrategy<P = unknown> implements ProviderStrategy<P> {
  readonly name = 'consistent-hash';
  private ringFor = '';
  private ring: { point: number; instance: ServiceInstance<P> }[] = [];

  constructor(private readonly virtualNodes = 160) {
    if (!Number.isInteger(virtualNodes) || virtualNodes < 1) throw new KeeperError('BADARGUMENTS', undefined, 'ConsistentHashStrategy: virtualNodes must be ≥ 1');
  }

  select(instances: readonly ServiceInstance<P>[], context: { key?: string; active?(id: string): number }): ServiceInstance<P> | undefined {
    if (instances.length === 0) return undefined;
    if (context.key === undefined) throw new KeeperError('BADARGUMENTS', undefined, 'ConsistentHashStrategy: getInstance(key) needs a key');
    const ids = instances.map((i) => i.id).join('\u0000');
    if (ids !== this.ringFor) {
      const ring: { point: number; instance: ServiceInstance<P> }[] = [];
      for (const inst of instances) for (let v = 0; v < this.virtualNodes; v++) ring.push({ point: hash32(`${inst.id}#${v}`), instance: inst });
      ring.sort((a, b) => a.point - b.point);
      this.ring = ring;
      this.ringFor = ids;
    }
    const h = hash32(context.key);
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ring[mid]!.point < h) lo = mid + 1;
      else hi = mid;
    }
    return this.ring[lo === this.ring.length ? 0 : lo]!.instance;
  }
}

export type StrategyName = 'random' | 'round-robin' | 'least-active' | 'consistent-hash';

function strategyOf<P>(s: StrategyName | ProviderStrategy<P> | undefined): ProviderStrategy<P> {
  if (s === undefined || s === 'round-robin') return new RoundRobinStrategy<P>();
  if (s === 'random') return new RandomStrategy<P>();
  if (s === 'least-active') return new LeastActiveStrategy<P>();
  if (s === 'consistent-hash') return new ConsistentHashStrategy<P>();
  if (typeof s === 'object' && typeof s.select === 'function') return s;
  throw new KeeperError('BADARGUMENTS', undefined, `ServiceDiscovery: unknown strategy ${String(s)}`);
}

// ------------------------------------------------------------------ cache and provider

export interface ServiceCacheEvents<P> {
  /** The live instance list changed. */
  cacheChanged: (instances: ServiceInstance<P>[]) => void;
  error: (error: Error) => void;
}

/** The live instances of one service, kept current by a PathChildrenCache (Curator's ServiceCache). */
export class ServiceCache<P = unknown> extends EventEmitter<ServiceCacheEvents<P>> {
  private readonly cache: PathChildrenCache;
  private instances: ServiceInstance<P>[] = [];

  constructor(readonly session: Session, readonly name: string, servicePath: string, private readonly codec: Codec<ServiceInstance<P>>) {
    super();
    this.cache = new PathChildrenCache(session, servicePath);
    this.cache.on('event', (e) => {
      if (e.type === 'CHILD_ADDED' || e.type === 'CHILD_UPDATED' || e.type === 'CHILD_REMOVED') {
        this.rebuild();
        this.emit('cacheChanged', this.getInstances());
      }
    });
    this.cache.on('error', (e) => this.emit('error', e));
  }

  private rebuild(): void {
    const out: ServiceInstance<P>[] = [];
    for (const d of this.cache.getCurrentData()) {
      if (!d.data) continue;
      try {
        out.push(this.codec.decode(d.data));
      } catch (e) {
        this.emit('error', e as Error);
      }
    }
    out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.instances = out;
  }

  async start(): Promise<void> {
    await this.cache.start('BUILD_INITIAL_CACHE');
    this.rebuild();
  }

  /** The live instances, ordered by id. */
  getInstances(): ServiceInstance<P>[] {
    return this.instances.slice();
  }

  close(): Promise<void> {
    return this.cache.close();
  }
}

export interface ServiceProviderOptions<P> {
  /** Default 'round-robin'. */
  strategy?: StrategyName | ProviderStrategy<P>;
  /** After this many noteError() calls an instance is skipped for `downTimeMs` (Curator's DownInstancePolicy). Default 2. */
  errorThreshold?: number;
  /** Default 30 000. */
  downTimeMs?: number;
}

/**
 * Picks an instance of a service by a strategy (Curator's ServiceProvider): random,
 * round-robin, least-active (fewest calls in flight through `use()`/`begin()`), or
 * consistent-hash (`getInstance(key)`). Instances reported failing via noteError() are skipped
 * for a while.
 */
export class ServiceProvider<P = unknown> {
  readonly strategy: ProviderStrategy<P>;
  private readonly active = new Map<string, number>();
  private readonly errors = new Map<string, { count: number; downUntil: number }>();
  private readonly errorThreshold: number;
  private readonly downTimeMs: number;

  constructor(readonly cache: ServiceCache<P>, options: ServiceProviderOptions<P> = {}) {
    this.strategy = strategyOf(options.strategy);
    this.errorThreshold = options.errorThreshold ?? 2;
    this.downTimeMs = options.downTimeMs ?? 30_000;
  }

  start(): Promise<void> {
    return this.cache.start();
  }

  /** Live instances that are not marked down. */
  getAllInstances(): ServiceInstance<P>[] {
    const now = Date.now();
    return this.cache.getInstances().filter((i) => (this.errors.get(i.id)?.downUntil ?? 0) <= now);
  }

  /** One instance by the strategy, or undefined when none is live. */
  getInstance(key?: string): ServiceInstance<P> | undefined {
    const ctx: { key?: string; active(id: string): number } = { active: (id: string) => this.active.get(id) ?? 0 };
    if (key !== undefined) ctx.key = key;
    return this.strategy.select(this.getAllInstances(), ctx);
  }

  /** Counts a call in flight to `instance` (least-active); call the returned function when it ends. */
  begin(instance: ServiceInstance<P>): () => void {
    this.active.set(instance.id, (this.active.get(instance.id) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.active.get(instance.id) ?? 1) - 1;
      if (n <= 0) this.active.delete(instance.id);
      else this.active.set(instance.id, n);
    };
  }

  /** Picks an instance, runs `fn` on it counted as in flight; noteError() when it throws. */
  async use<T>(fn: (instance: ServiceInstance<P>) => Promise<T> | T, key?: string): Promise<T> {
    const inst = this.getInstance(key);
    if (!inst) throw new KeeperError('NONODE', undefined, `ServiceProvider: no live instance of '${this.cache.name}'`);
    const end = this.begin(inst);
    try {
      return await fn(inst);
    } catch (e) {
      this.noteError(inst);
      throw e;
    } finally {
      end();
    }
  }

  /** Reports a failed call; after `errorThreshold` of them the instance is skipped for `downTimeMs`. */
  noteError(instance: ServiceInstance<P>): void {
    const e = this.errors.get(instance.id) ?? { count: 0, downUntil: 0 };
    e.count++;
    if (e.count >= this.errorThreshold) {
      e.downUntil = Date.now() + this.downTimeMs;
      e.count = 0;
    }
    this.errors.set(instance.id, e);
  }

  close(): Promise<void> {
    return this.cache.close();
  }
}

// ------------------------------------------------------------------ discovery

export interface ServiceDiscoveryOptions<P> {
  /** Default '/services'. */
  basePath?: string;
  /** How instances are stored (default JSON, readable in the CLI). */
  codec?: Codec<ServiceInstance<P>>;
  /** A new session for DYNAMIC registrations after the current one is LOST (see PersistentNode). */
  sessionFactory?: () => Promise<Session>;
}

/**
 * Service registration and discovery (Curator's ServiceDiscovery): providers register instances
 * as ephemeral nodes `/services/<name>/<id>` (kept present by a PersistentNode: re-created after
 * deletion, reconnect, or — with a sessionFactory — session loss); consumers query them or
 * follow them live through a ServiceCache / ServiceProvider.
 */
export class ServiceDiscovery<P = unknown> {
  readonly basePath: string;
  private readonly codec: Codec<ServiceInstance<P>>;
  private readonly registrations = new Map<string, { node: PersistentNode | undefined; instance: ServiceInstance<P> }>();
  private readonly closeables = new Set<{ close(): Promise<void> }>();
  private readonly factory: (() => Promise<Session>) | undefined;

  constructor(readonly session: Session, options: ServiceDiscoveryOptions<P> = {}) {
    this.basePath = checkPath(options.basePath ?? '/services', 'ServiceDiscovery');
    this.codec = options.codec ?? jsonCodec<ServiceInstance<P>>();
    this.factory = options.sessionFactory;
  }

  /** Makes sure the base path exists. */
  async start(): Promise<void> {
    await ensurePath(this.session, this.basePath);
  }

  private servicePath(name: string): string {
    checkName('service name', name);
    return childPath(this.basePath, name);
  }

  private instancePath(name: string, id: string): string {
    checkName('instance id', id);
    return childPath(this.servicePath(name), id);
  }

  /** Registers an instance; resolves once its node exists. */
  async registerService(input: ServiceInstanceInput<P>): Promise<ServiceInstance<P>> {
    const instance: ServiceInstance<P> = {
      ...input,
      id: input.id ?? randomUUID(),
      registrationTimeUTC: input.registrationTimeUTC ?? Date.now(),
      serviceType: input.serviceType ?? 'DYNAMIC',
    };
    const path = this.instancePath(instance.name, instance.id);
    const key = `${instance.name}/${instance.id}`;
    if (this.registrations.has(key)) throw new KeeperError('NODEEXISTS', path, 'ServiceDiscovery: instance already registered by this object (use updateService)');
    const data = this.codec.encode(instance);
    if (instance.serviceType === 'PERMANENT') {
      try {
        await this.session.create(path, data, { parents: true });
      } catch (e) {
        if (!isCode(e, 'NODEEXISTS')) throw e;
        await this.session.setData(path, data);
      }
      this.registrations.set(key, { node: undefined, instance });
      return instance;
    }
    const node = new PersistentNode(this.session, path, data, { mode: CreateMode.EPHEMERAL, ...(this.factory ? { sessionFactory: this.factory } : {}) });
    this.registrations.set(key, { node, instance });
    node.start();
    if (!(await node.waitForInitialCreate({ timeoutMs: Math.max(10_000, this.session.timeoutMs) }))) {
      this.registrations.delete(key);
      await node.close();
      throw new KeeperError('OPERATIONTIMEOUT', path, 'ServiceDiscovery: the instance node was not created in time (another session holds this id?)');
    }
    return instance;
  }

  /** Replaces a registered instance's data. */
  async updateService(instance: ServiceInstance<P>): Promise<void> {
    const key = `${instance.name}/${instance.id}`;
    const reg = this.registrations.get(key);
    if (!reg) throw new KeeperError('NONODE', this.instancePath(instance.name, instance.id), 'ServiceDiscovery: not registered by this object');
    reg.instance = instance;
    const data = this.codec.encode(instance);
    if (reg.node) await reg.node.setData(data);
    else await this.session.setData(this.instancePath(instance.name, instance.id), data);
  }

  /** Removes a registration (its node is deleted). */
  async unregisterService(instance: Pick<ServiceInstance<P>, 'name' | 'id'>): Promise<void> {
    const key = `${instance.name}/${instance.id}`;
    const reg = this.registrations.get(key);
    this.registrations.delete(key);
    if (reg?.node) {
      await reg.node.close();
      return;
    }
    try {
      await this.session.delete(this.instancePath(instance.name, instance.id));
    } catch (e) {
      if (!isCode(e, 'NONODE')) throw e;
    }
  }

  /** Names of the services that have (or had) instances. */
  async queryForNames(): Promise<string[]> {
    try {
      return await this.session.getChildren(this.basePath);
    } catch (e) {
      if (isCode(e, 'NONODE')) return [];
      throw e;
    }
  }

  /** The live instances of a service, ordered by id. */
  async queryForInstances(name: string): Promise<ServiceInstance<P>[]> {
    let ids: string[];
    try {
      ids = await this.session.getChildren(this.servicePath(name));
    } catch (e) {
      if (isCode(e, 'NONODE')) return [];
      throw e;
    }
    const out: ServiceInstance<P>[] = [];
    for (const id of ids) {
      const inst = await this.queryForInstance(name, id);
      if (inst) out.push(inst);
    }
    return out;
  }

  /** One instance, or undefined. */
  async queryForInstance(name: string, id: string): Promise<ServiceInstance<P> | undefined> {
    try {
      return this.codec.decode((await this.session.getData(this.instancePath(name, id))).data);
    } catch (e) {
      if (isCode(e, 'NONODE')) return undefined;
      throw e;
    }
  }

  /** A live list of a service's instances (call start()). */
  serviceCache(name: string): ServiceCache<P> {
    const c = new ServiceCache<P>(this.session, name, this.servicePath(name), this.codec);
    this.closeables.add(c);
    return c;
  }

  /** A provider that picks instances of a service by a strategy (call start()). */
  serviceProvider(name: string, options: ServiceProviderOptions<P> = {}): ServiceProvider<P> {
    const p = new ServiceProvider<P>(this.serviceCache(name), options);
    return p;
  }

  /** Unregisters this object's DYNAMIC instances and closes its caches and providers. */
  async close(): Promise<void> {
    for (const c of this.closeables) await c.close().catch(() => undefined);
    this.closeables.clear();
    for (const [key, reg] of [...this.registrations]) {
      this.registrations.delete(key);
      if (reg.node) await reg.node.close().catch(() => undefined);
    }
  }
}
