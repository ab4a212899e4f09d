import type { Logger } from '../api/log.js';
import { silentLogger } from '../api/log.js';
import type { Member } from '../api/member.js';
import { op as multiOp, type Session } from '../api/session.js';
import { CreateMode } from '../core/createMode.js';
import { KeeperError } from '../core/errors.js';
import { formatZxid } from '../core/zxid.js';
import { HistoryRecorder, type HistEntry, type HistOp, type HistResult } from './history.js';
import { checkLinearizable, checkSequentialReads } from './linearizability.js';
import { SimCluster } from './cluster.js';
import type { Rng } from './random.js';
import { NO_FAULTS, type SimFaults } from './simNetwork.js';
import type { VirtualClock } from './virtualClock.js';

/** How one simulated run is shaped. Everything random derives from `seed`. */
export interface SimulationOptions {
  seed: number;
  /** Voting members (default 3). */
  voters?: number;
  /** Observers (default 0). */
  observers?: number;
  /** Client sessions running the workload (default 5). */
  clients?: number;
  /** Virtual duration of the faulty phase in ms (default 3000). */
  durationMs?: number;
  tickMs?: number;
  /** Ticks a follower may take to sync (default 10). */
  initLimit?: number;
  /** Ticks a follower may go silent before it is dropped (default 5; 2 is the tightest ZooKeeper allows in practice). */
  syncLimit?: number;
  /** Inject crashes, partitions and message faults (default true). */
  faults?: boolean;
  /** Keys the workload writes (default 3). */
  paths?: number;
  /** Range of the virtual fsync latency (default [0, 4] ms). */
  fsyncMs?: [number, number];
  /** Txns between snapshots (default 150, small to exercise snapshots). */
  snapCount?: number;
  /** In-memory DIFF window (default 60, small to exercise SNAP sync). */
  logWindow?: number;
  /** Print events as they happen. */
  verbose?: boolean;
  logger?: Logger;
}

export interface SimulationResult {
  seed: number;
  ok: boolean;
  violations: string[];
  stats: {
    virtualMs: number;
    ops: number;
    okOps: number;
    crashes: number;
    partitions: number;
    elections: number;
    messages: number;
    lastZxid: string;
  };
  history: HistEntry[];
  /** Fault and lifecycle events, in order (for replaying a failing seed). */
  events: string[];
}

interface ClientState {
  id: number;
  session: Session | undefined;
  memberId: number;
  ephemerals: number;
}

/**
 * A whole ensemble plus clients in one process, on virtual time, with seeded faults. The same
 * seed always produces the same run, so a failing seed printed by a test replays exactly with
 * `npm run sim -- --seed N`.
 */
export class Simulation {
  readonly options: Required<Omit<SimulationOptions, 'logger'>> & { logger: Logger };
  readonly cluster: SimCluster;
  readonly rng: Rng;
  readonly history = new HistoryRecorder();
  private readonly clients: ClientState[] = [];
  private readonly plainReads = new Set<number>();
  private stopClients = false;
  private stopFaults = false;
  private partitions = 0;
  private counter = 0;
  private loops: Promise<void>[] = [];

  constructor(options: SimulationOptions) {
    this.options = {
      voters: 3, observers: 0, clients: 5, durationMs: 3000, tickMs: 50, initLimit: 10, syncLimit: 5, faults: true, paths: 3,
      fsyncMs: [0, 4], snapCount: 150, logWindow: 60, verbose: false, logger: silentLogger, ...options,
    };
    const o = this.options;
    this.cluster = new SimCluster({
      seed: o.seed, voters: o.voters, observers: o.observers, tickMs: o.tickMs, initLimit: o.initLimit, syncLimit: o.syncLimit, fsyncMs: o.fsyncMs,
      snapCount: o.snapCount, logWindow: o.logWindow, logger: o.logger, verbose: o.verbose,
      member: { containerCheckIntervalMs: 500 },
    });
    this.rng = this.cluster.rng.fork();
  }

  private get clock(): VirtualClock {
    return this.cluster.clock;
  }

  private note(s: string): void {
    this.cluster.note(s);
  }

  private violation(s: string): void {
    this.cluster.violation(s);
  }

  private runFor(ms: number): Promise<void> {
    return this.cluster.runFor(ms);
  }

  private sleep(ms: number): Promise<void> {
    return this.cluster.sleep(ms);
  }

  private liveMembers(): number[] {
    return this.cluster.live();
  }

  private get members(): Map<number, Member | undefined> {
    return this.cluster.members;
  }

  // ------------------------------------------------------------------ workload

  private async openSession(c: ClientState): Promise<void> {
    const live = this.liveMembers().filter((id) => this.members.get(id)!.serving);
    if (live.length === 0) return;
    const mid = this.rng.pick(live);
    try {
      c.session = await this.members.get(mid)!.session({ sessionTimeoutMs: this.rng.int(600, 1500), connectTimeoutMs: 500 });
      c.memberId = mid;
    } catch {
      c.session = undefined;
    }
  }

  private path(): string {
    return `/k${this.rng.int(0, this.options.paths - 1)}`;
  }

  private async clientLoop(c: ClientState): Promise<void> {
    while (!this.stopClients) {
      await this.sleep(this.rng.int(0, 40));
      if (this.stopClients) break;
      const s = c.session;
      if (!s || s.state === 'LOST' || s.state === 'CLOSED' || this.members.get(c.memberId) === undefined) {
        c.session = undefined;
        await this.openSession(c);
        continue;
      }
      if (s.state === 'SUSPENDED') continue;
      const roll = this.rng.next();
      if (roll < 0.05) {
        // Ephemerals exercise expiry and closeSession everywhere.
        try {
          await s.create(`/e/c${c.id}-${c.ephemerals++}`, '', { mode: CreateMode.EPHEMERAL });
        } catch {
          // outcome irrelevant: checked through the final ephemeral invariant
        }
        continue;
      }
      if (roll < 0.08) {
        try {
          await s.close();
        } catch {
          // ignore
        }
        c.session = undefined;
        continue;
      }
      if (roll < 0.12) {
        await this.multiOnTree(s);
        continue;
      }
      const path = this.path();
      let op: HistOp;
      const r2 = this.rng.next();
      if (r2 < 0.2) op = { kind: 'create', path, value: `v${++this.counter}` };
      else if (r2 < 0.3) op = { kind: 'delete', path, version: this.rng.chance(0.5) ? -1 : this.rng.int(0, 3) };
      else if (r2 < 0.6) op = { kind: 'set', path, value: `v${++this.counter}`, version: this.rng.chance(0.6) ? -1 : this.rng.int(0, 3) };
      else op = { kind: 'read', path };
      const syncRead = op.kind === 'read' && this.rng.chance(0.5);
      const id = this.history.invoke(c.id, op, this.clock.now());
      if (op.kind === 'read' && !syncRead) this.plainReads.add(id);
      try {
        const result = await this.perform(s, op, syncRead);
        this.history.complete(id, result, this.clock.now());
      } catch (e) {
        if (e instanceof KeeperError && (e.code === 'NONODE' || e.code === 'NODEEXISTS' || e.code === 'BADVERSION')) {
          this.history.complete(id, { ok: false, code: e.code }, this.clock.now());
        } else {
          this.history.fail(id, this.clock.now());
        }
      }
    }
  }

  /**
   * A multi on its own subtree (`/m`, outside the checked history): a sequential create, a
   * setData of the parent, sometimes the delete of a child and a version check that may fail the
   * whole txn; or work on containers there (made, given children, emptied and reaped). Its effects are checked by the replicas' digests: parents' counters, sequential
   * names and all-or-nothing application must come out the same on every member, through
   * crashes, fuzzy snapshots and their replay.
   */
  private async multiOnTree(s: Session): Promise<void> {
    try {
      if (this.rng.chance(0.25)) {
        // Containers: made with a child in one multi; the leader reaps one once its last child goes.
        const box = `/m/box${this.rng.int(0, 3)}`;
        const kids = await s.getChildren(box).catch(() => null);
        if (kids === null) {
          await s.multi([
            multiOp.create(box, '', { mode: CreateMode.CONTAINER }),
            multiOp.create(`${box}/x-`, `v${++this.counter}`, { mode: CreateMode.PERSISTENT_SEQUENTIAL }),
          ]);
        } else if (kids.length > 0 && this.rng.chance(0.7)) {
          await s.delete(`${box}/${this.rng.pick(kids)}`);
        } else {
          await s.create(`${box}/x-`, `v${++this.counter}`, { mode: CreateMode.PERSISTENT_SEQUENTIAL });
        }
        return;
      }
      const children = await s.getChildren('/m');
      const ops = [
        multiOp.create('/m/s-', `v${++this.counter}`, { mode: this.rng.chance(0.3) ? CreateMode.EPHEMERAL_SEQUENTIAL : CreateMode.PERSISTENT_SEQUENTIAL }),
        multiOp.setData('/m', `v${++this.counter}`),
      ];
      if (children.length > 0 && this.rng.chance(0.6)) ops.push(multiOp.delete(`/m/${this.rng.pick(children)}`));
      if (this.rng.chance(0.2)) ops.push(multiOp.check('/m', this.rng.int(0, 40)));
      await s.multi(ops);
    } catch {
      // outcome irrelevant: checked through the replicas' digests
    }
  }

  private async perform(s: Session, op: HistOp, syncRead: boolean): Promise<HistResult> {
    switch (op.kind) {
      case 'create':
        await s.create(op.path, op.value);
        return { ok: true };
      case 'delete':
        await s.delete(op.path, { version: op.version });
        return { ok: true };
      case 'set': {
        const st = await s.setData(op.path, op.value, { version: op.version });
        return { ok: true, version: st.version };
      }
      case 'read': {
        if (syncRead) await s.sync(op.path);
        const r = await s.getData(op.path);
        return { ok: true, value: new TextDecoder().decode(r.data), version: r.stat.version };
      }
    }
  }

  // ------------------------------------------------------------------ faults

  private async faultLoop(): Promise<void> {
    const restarts: Promise<void>[] = [];
    while (!this.stopFaults) {
      await this.sleep(this.rng.int(150, 700));
      if (this.stopFaults) break;
      const roll = this.rng.next();
      const live = this.liveMembers();
      if (roll < 0.3 && live.length > 0) {
        const id = this.rng.pick(live);
        await this.cluster.crash(id);
        const down = this.rng.int(100, 1500);
        restarts.push((async () => {
          await this.sleep(down);
          if (this.members.get(id) === undefined) await this.cluster.start(id);
        })());
      } else if (roll < 0.5) {
        const shuffled = [...this.cluster.ids].sort(() => this.rng.next() - 0.5);
        const cut = this.rng.int(1, shuffled.length - 1);
        const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
        this.partitions++;
        this.cluster.partition(...groups);
        await this.sleep(this.rng.int(100, 1500));
        this.cluster.heal();
      } else if (roll < 0.7) {
        const f: SimFaults = {
          minDelayMs: 0,
          maxDelayMs: this.rng.int(1, 30),
          drop: this.rng.chance(0.5) ? this.rng.next() * 0.05 : 0,
          duplicate: this.rng.chance(0.5) ? this.rng.next() * 0.05 : 0,
          reorder: this.rng.chance(0.3) ? this.rng.next() * 0.05 : 0,
        };
        this.cluster.net.faults = f;
        this.note(`network faults ${JSON.stringify(f)}`);
        await this.sleep(this.rng.int(100, 800));
        this.cluster.net.faults = { ...NO_FAULTS };
        this.note('network faults off');
      }
    }
    await Promise.all(restarts);
  }

  // ------------------------------------------------------------------ the run

  /** Runs the whole scenario and checks every invariant. */
  async run(): Promise<SimulationResult> {
    for (const id of this.cluster.ids) await this.cluster.start(id);
    if (!(await this.cluster.until(() => this.cluster.leader() !== undefined, 1500))) this.violation('no leader elected within 1.5 s without faults');
    // Parents for the ephemerals and for the multis.
    const setup = await this.anySession();
    if (setup) {
      await this.cluster.settle(setup.create('/e')).catch(() => undefined);
      await this.cluster.settle(setup.create('/m')).catch(() => undefined);
      await this.cluster.settle(setup.close()).catch(() => undefined);
    }
    for (let i = 0; i < this.options.clients; i++) {
      const c: ClientState = { id: i + 1, session: undefined, memberId: 0, ephemerals: 0 };
      this.clients.push(c);
      this.loops.push(this.clientLoop(c));
    }
    let faultsDone = false;
    void (this.options.faults ? this.faultLoop() : Promise.resolve()).finally(() => {
      faultsDone = true;
    });
    await this.runFor(this.options.durationMs);
    this.stopFaults = true;
    this.cluster.heal();
    // Let the fault loop finish (pending restarts), then bring every member back.
    for (let i = 0; i < 40 && !faultsDone; i++) await this.runFor(100);
    for (const id of this.cluster.ids) if (this.members.get(id) === undefined) await this.cluster.start(id);
    this.note('healed; quiescing');
    // Clients keep working for a while on the healed ensemble, then stop.
    await this.runFor(1000);
    this.stopClients = true;
    let clientsDone = false;
    void Promise.all(this.loops).finally(() => {
      clientsDone = true;
    });
    for (let i = 0; i < 40 && !clientsDone; i++) await this.runFor(100);
    await this.quiesce();
    await this.finalReads();
    await this.quiesce();
    this.cluster.checkReplicas();
    this.checkHistory();
    await this.cluster.shutdown();
    return this.result();
  }

  private async anySession(): Promise<Session | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const live = this.liveMembers().filter((id) => this.members.get(id)!.serving);
      if (live.length > 0) {
        try {
          const p = this.members.get(live[0]!)!.session({ sessionTimeoutMs: 5000, connectTimeoutMs: 1000 });
          let s: Session | undefined;
          void p.then((x) => { s = x; }, () => undefined);
          for (let i = 0; i < 50 && !s; i++) await this.runFor(20);
          if (s) return s;
        } catch {
          // retry
        }
      }
      await this.runFor(200);
    }
    return undefined;
  }

  /** Runs until every member serves and all have applied the same last zxid. */
  private async quiesce(): Promise<void> {
    if (!(await this.cluster.converge(10_000))) this.violation(`ensemble did not converge after healing: ${this.cluster.describe()}`);
  }

  /** A final linearizable read of every key (sync + read) from a fresh session. */
  private async finalReads(): Promise<void> {
    const s = await this.anySession();
    if (!s) {
      this.violation('no session could be opened after healing');
      return;
    }
    for (let i = 0; i < this.options.paths; i++) {
      const path = `/k${i}`;
      const id = this.history.invoke(0, { kind: 'read', path }, this.clock.now());
      const p = (async (): Promise<HistResult> => {
        await s.sync(path);
        try {
          const r = await s.getData(path);
          return { ok: true, value: new TextDecoder().decode(r.data), version: r.stat.version };
        } catch (e) {
          if (e instanceof KeeperError && e.code === 'NONODE') return { ok: false, code: 'NONODE' };
          throw e;
        }
      })();
      let done: HistResult | undefined;
      let failed = false;
      void p.then((r) => { done = r; }, () => { failed = true; });
      for (let k = 0; k < 100 && !done && !failed; k++) await this.runFor(20);
      if (done) this.history.complete(id, done, this.clock.now());
      else this.violation(`final read of ${path} did not complete`);
    }
    void s.close().catch(() => undefined);
    await this.runFor(200);
  }

  private checkHistory(): void {
    const entries = this.history.entries();
    const linear = entries.filter((e) => !this.plainReads.has(e.id));
    const lin = checkLinearizable(linear, { timeLimitMs: 20_000 });
    if (!lin.ok) this.violation(`history not linearizable: ${lin.explanation}`);
    const seq = checkSequentialReads(entries);
    if (!seq.ok) this.violation(`reads not sequentially consistent: ${seq.explanation}`);
  }

  private result(): SimulationResult {
    const entries = this.history.entries();
    let lastZxid = 0n;
    for (const z of this.cluster.applied.keys()) if (z > lastZxid) lastZxid = z;
    const c = this.cluster;
    return {
      seed: this.options.seed,
      ok: c.violations.length === 0,
      violations: [...c.violations],
      stats: {
        virtualMs: this.clock.now() - 1_700_000_000_000,
        ops: entries.length,
        okOps: entries.filter((e) => e.result?.ok === true).length,
        crashes: c.crashes,
        partitions: this.partitions,
        elections: c.elections,
        messages: c.net.delivered,
        lastZxid: formatZxid(lastZxid),
      },
      history: entries,
      events: [...c.events],
    };
  }
}

/** Runs one seeded simulation. */
export function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  return new Simulation(options).run();
}
