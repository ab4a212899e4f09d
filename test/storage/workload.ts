import { Ids } from '../../src/core/acl.js';
import { CreateMode } from '../../src/core/createMode.js';
import { Preparer } from '../../src/core/prep.js';
import type { Request, RequestOp } from '../../src/core/request.js';
import { DataTree } from '../../src/core/tree.js';
import type { Txn } from '../../src/core/txn.js';
import { makeZxid } from '../../src/core/zxid.js';
import { mulberry32 } from '../../src/testing/random.js';

/** mulberry32: a small seeded PRNG so that every run of a test sees the same txns. */
export const rng = mulberry32;


const enc = new TextEncoder();

/**
 * A deterministic stream of real txns, prepared by the real Preparer against a model DataTree and
 * applied to it: sessions, persistent/sequential/ephemeral creates, setData, deletes, multi and
 * closeSession (which deletes ephemerals), so that storage tests replay what a member would log.
 */
export class Workload {
  readonly tree = new DataTree();
  readonly txns: Txn[] = [];
  private readonly prep = new Preparer(this.tree);
  private readonly random: () => number;
  private counter = 0;
  private cxid = 0;
  private sessions: bigint[] = [];
  private nextSession = 1n;
  private paths: string[] = [];
  allowErrors = true;

  constructor(seed = 1, readonly epoch = 1) {
    this.random = rng(seed);
  }

  get lastZxid(): bigint {
    return this.txns[this.txns.length - 1]?.zxid ?? 0n;
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.random() * xs.length)];
  }

  /** Prepares, applies and records one request. */
  submit(sessionId: bigint, op: RequestOp, track = true): Txn {
    const zxid = makeZxid(this.epoch, ++this.counter);
    const time = 1_700_000_000_000 + this.counter;
    const req: Request = { sessionId, cxid: ++this.cxid, op, auth: [] };
    const txn: Txn = { zxid, sessionId, cxid: req.cxid, time, op: this.prep.prepare(req, zxid, time) };
    if (txn.op.type === 'error' && op.type !== 'createSession' && !this.allowErrors) {
      // Errors are fine in random steps (they are txns too), but a bulk load must really create.
      if (!track) throw new Error(`workload: ${op.type} ${'path' in op ? op.path : ''} failed with ${txn.op.code}`);
    }
    const r = this.tree.apply(txn);
    this.prep.applied(zxid);
    this.tree.notifications.length = 0;
    if (track && r.ok && r.op === 'create') this.paths.push(r.path);
    this.txns.push(txn);
    return txn;
  }

  /** Creates `n` persistent nodes under `/bulk` (for snapshots with several chunks). */
  bulk(n: number, dataBytes = 16): Txn[] {
    const out: Txn[] = [];
    const sid = this.nextSession++ | (7n << 56n);
    out.push(this.submit(sid, { type: 'createSession', timeoutMs: 5000, origin: 'local' }));
    if (!this.tree.get('/bulk')) out.push(this.submit(sid, { type: 'create', path: '/bulk', data: new Uint8Array(0), acl: Ids.OPEN_ACL_UNSAFE as never, mode: CreateMode.PERSISTENT, ttl: 0 }));
    for (let i = 0; i < n; i++) {
      const data = new Uint8Array(dataBytes).fill(i & 0xff);
      out.push(this.submit(sid, { type: 'create', path: `/bulk/n${this.counter}`, data, acl: Ids.OPEN_ACL_UNSAFE as never, mode: CreateMode.PERSISTENT, ttl: 0 }, false));
    }
    return out;
  }

  /** One random txn. */
  step(): Txn {
    const r = this.random();
    const live = this.sessions.filter((s) => this.tree.sessions.has(s));
    const existing = (): string[] => (this.paths = this.paths.filter((p) => this.tree.get(p) !== undefined));
    const acl = Ids.OPEN_ACL_UNSAFE as never;
    if (r < 0.06 || live.length === 0) {
      const sid = this.nextSession++ | (7n << 56n);
      this.sessions.push(sid);
      return this.submit(sid, { type: 'createSession', timeoutMs: 5000, origin: 'local' });
    }
    if (r < 0.09) {
      const sid = this.pick(live)!;
      return this.submit(sid, { type: 'closeSession', reason: this.random() < 0.5 ? 'close' : 'expire' });
    }
    const sid = this.pick(live)!;
    if (r < 0.5) {
      const parents = existing().filter((p) => this.tree.get(p)!.stat.ephemeralOwner === 0n && p.split('/').length < 5);
      const parent = this.random() < 0.3 || parents.length === 0 ? '' : this.pick(parents)!;
      const m = this.random();
      const mode = m < 0.45 ? CreateMode.PERSISTENT : m < 0.7 ? CreateMode.PERSISTENT_SEQUENTIAL : m < 0.85 ? CreateMode.EPHEMERAL : CreateMode.EPHEMERAL_SEQUENTIAL;
      const name = mode === CreateMode.PERSISTENT || mode === CreateMode.EPHEMERAL ? `n${Math.floor(this.random() * 40)}` : 's-';
      return this.submit(sid, { type: 'create', path: `${parent}/${name}`, data: enc.encode(`d${this.counter}`), acl, mode, ttl: 0 });
    }
    if (r < 0.8) {
      const p = this.pick(existing());
      if (p) {
        const v = this.random() < 0.5 ? -1 : this.tree.get(p)!.stat.version;
        return this.submit(sid, { type: 'setData', path: p, data: enc.encode(`v${this.counter}`), version: v });
      }
    }
    if (r < 0.93) {
      const leaves = existing().filter((p) => this.tree.get(p)!.children.size === 0);
      const p = this.pick(leaves);
      if (p) return this.submit(sid, { type: 'delete', path: p, version: -1 });
    }
    const p = `/m${Math.floor(this.random() * 10)}`;
    return this.submit(sid, {
      type: 'multi',
      ops: [
        { type: 'create', path: p, data: enc.encode('m'), acl, mode: CreateMode.PERSISTENT, ttl: 0 },
        { type: 'setData', path: p, data: enc.encode(`mm${this.counter}`), version: 0 },
      ],
    });
  }

  steps(n: number): Txn[] {
    const out: Txn[] = [];
    for (let i = 0; i < n; i++) out.push(this.step());
    return out;
  }

  /** Digest of the state after applying the recorded txns up to and including `zxid`. */
  digestAt(zxid: bigint): string {
    const t = new DataTree();
    for (const txn of this.txns) {
      if (txn.zxid > zxid) break;
      t.apply(txn);
    }
    t.notifications.length = 0;
    return t.digest();
  }
}
