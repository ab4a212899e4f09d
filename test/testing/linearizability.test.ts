import assert from 'node:assert/strict';
import { HistoryRecorder, describeEntry, type HistEntry, type HistOp, type HistResult } from '../../src/testing/history.js';
import { checkLinearizable, checkSequentialReads, type LinearizabilityResult } from '../../src/testing/linearizability.js';
import { mulberry32 as prng } from '../../src/testing/random.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** Builds a history from compact rows: [client, op, invokedAt, completedAt | undefined, result | undefined]. */
type Row = [number, HistOp, number, number | undefined, HistResult | undefined];
function hist(...rows: Row[]): HistEntry[] {
  return rows.map(([client, op, invokedAt, completedAt, result], id) => ({ id, client, op, invokedAt, completedAt, result }));
}
const create = (path: string, value: string): HistOp => ({ kind: 'create', path, value });
const del = (path: string, version = -1): HistOp => ({ kind: 'delete', path, version });
const set = (path: string, value: string, version = -1): HistOp => ({ kind: 'set', path, value, version });
const read = (path: string): HistOp => ({ kind: 'read', path });
const OK: HistResult = { ok: true };
const okV = (version: number): HistResult => ({ ok: true, version });
const val = (value: string, version: number): HistResult => ({ ok: true, value, version });
const err = (code: 'NODEEXISTS' | 'NONODE' | 'BADVERSION' | 'NOTEMPTY'): HistResult => ({ ok: false, code });

function assertOk(r: LinearizabilityResult, h?: HistEntry[]): void {
  if (!r.ok) assert.fail(`expected linearizable, got: ${r.explanation}\n${(h ?? []).map(describeEntry).join('\n')}`);
}
function assertViolation(r: LinearizabilityResult, path: string): Extract<LinearizabilityResult, { ok: false }> {
  assert.equal(r.ok, false, 'expected a violation');
  if (r.ok) throw new Error('unreachable');
  assert.equal(r.timeout, false, `expected a definite verdict, got ${r.explanation}`);
  assert.equal(r.path, path);
  assert.ok(r.explanation.includes(path), r.explanation);
  assert.ok(r.minimalHistory.length > 0);
  for (const e of r.minimalHistory) assert.equal(e.op.path, path);
  for (let i = 1; i < r.minimalHistory.length; i++) assert.ok(r.minimalHistory[i - 1]!.invokedAt <= r.minimalHistory[i]!.invokedAt);
  return r;
}


/** Independent reference model of one znode (deliberately not the checker's code). */
interface Z {
  exists: boolean;
  value: string;
  version: number;
}
function model(z: Z, op: HistOp): [Z, HistResult] {
  const vok = (v: number): boolean => v === -1 || v === z.version;
  if (op.kind === 'read') return [z, z.exists ? val(z.value, z.version) : err('NONODE')];
  if (op.kind === 'create') return z.exists ? [z, err('NODEEXISTS')] : [{ exists: true, value: op.value, version: 0 }, OK];
  if (!z.exists) return [z, err('NONODE')];
  if (!vok(op.version)) return [z, err('BADVERSION')];
  if (op.kind === 'delete') return [{ exists: false, value: '', version: 0 }, OK];
  return [{ exists: true, value: op.value, version: z.version + 1 }, okV(z.version + 1)];
}

function randomOp(rnd: () => number, path: string, values: readonly string[], z: Z | undefined): HistOp {
  const x = rnd();
  const value = values[Math.floor(rnd() * values.length)]!;
  const version = rnd() < 0.5 ? -1 : z?.exists && rnd() < 0.7 ? z.version : Math.floor(rnd() * 4);
  if (x < 0.35) return read(path);
  if (x < 0.55) return create(path, value);
  if (x < 0.85) return set(path, value, version);
  return del(path, version);
}

/**
 * A random sequential history from the model (op k takes effect at time 10k+5), then widened:
 * each interval grows randomly around its effect point, so ops that still do not overlap keep
 * their order and the history stays linearizable by construction. A fraction of ops get an
 * unknown outcome; half of those really took effect, half did not.
 */
function sequentialThenWidened(seed: number, nOps: number, paths: string[], width: number, unknownRate: number): HistEntry[] {
  const rnd = prng(seed);
  const values = ['a', 'b', 'c', 'd'];
  const state = new Map<string, Z>();
  const out: HistEntry[] = [];
  for (let k = 0; k < nOps; k++) {
    const path = paths[Math.floor(rnd() * paths.length)]!;
    const z = state.get(path) ?? { exists: false, value: '', version: 0 };
    const op = randomOp(rnd, path, values, z);
    const point = 10 * k + 5;
    const invokedAt = point - Math.floor(rnd() * width);
    const completedAt = point + Math.floor(rnd() * width);
    const client = Math.floor(rnd() * 20);
    if (rnd() < unknownRate) {
      if (rnd() < 0.5) state.set(path, model(z, op)[0]);
      out.push({ id: k, client, op, invokedAt, completedAt: undefined, result: undefined });
    } else {
      const [next, result] = model(z, op);
      state.set(path, next);
      out.push({ id: k, client, op, invokedAt, completedAt, result });
    }
  }
  return out;
}

/**
 * A concurrent run: `clients` clients issue ops back to back (each op lasting 1–maxDur ms)
 * on `paths`; every op takes effect at a random instant inside its interval, in which order
 * the model computes the results. Linearizable by construction.
 */
function concurrentRun(seed: number, nOps: number, nPaths: number, clients: number, maxDur: number, unknownRate: number): HistEntry[] {
  const rnd = prng(seed);
  const paths = Array.from({ length: nPaths }, (_, i) => `/p${i}`);
  const values = Array.from({ length: 6 }, (_, i) => `v${i}`);
  type Pending = { e: HistEntry; point: number; applies: boolean };
  const pend: Pending[] = [];
  const clock = new Array<number>(clients).fill(0);
  for (let k = 0; k < nOps; k++) {
    const c = k % clients;
    const path = paths[Math.floor(rnd() * paths.length)]!;
    const op = randomOp(rnd, path, values, undefined);
    const invokedAt = clock[c]! + Math.floor(rnd() * 3);
    const dur = 1 + Math.floor(rnd() * maxDur);
    const point = invokedAt + rnd() * dur;
    const unknown = rnd() < unknownRate;
    const e: HistEntry = { id: k, client: c, op, invokedAt, completedAt: unknown ? undefined : invokedAt + dur, result: undefined };
    pend.push({ e, point, applies: !unknown || rnd() < 0.5 });
    clock[c] = invokedAt + dur + 1;
  }
  const state = new Map<string, Z>();
  for (const p of [...pend].sort((a, b) => a.point - b.point)) {
    if (!p.applies) continue;
    const z = state.get(p.e.op.path) ?? { exists: false, value: '', version: 0 };
    const [next, result] = model(z, p.e.op);
    state.set(p.e.op.path, next);
    if (p.e.completedAt !== undefined) p.e.result = result;
  }
  return pend.map((p) => p.e);
}

/** Changes one known result into a different, well-formed one. */
function mutate(rnd: () => number, h: HistEntry[]): { history: HistEntry[]; index: number } | undefined {
  const known = h.map((e, i) => [e, i] as const).filter(([e]) => e.result !== undefined);
  if (known.length === 0) return undefined;
  const [e, index] = known[Math.floor(rnd() * known.length)]!;
  const r = e.result!;
  let m: HistResult;
  const x = rnd();
  switch (e.op.kind) {
    case 'read':
      if (!r.ok) m = val('a', 0);
      else if (x < 0.4) m = val(r.value!, r.version! + (rnd() < 0.5 ? 1 : -1));
      else if (x < 0.8) m = val(r.value === 'zz' ? 'a' : 'zz', r.version!);
      else m = err('NONODE');
      break;
    case 'create':
      m = r.ok ? err('NODEEXISTS') : OK;
      break;
    case 'set':
      if (r.ok) m = x < 0.5 ? okV(r.version! + (rnd() < 0.5 ? 1 : -1)) : err(x < 0.75 ? 'BADVERSION' : 'NONODE');
      else m = okV(Math.floor(rnd() * 4));
      break;
    case 'delete':
      m = r.ok ? err(x < 0.5 ? 'NONODE' : 'BADVERSION') : x < 0.5 ? OK : err(r.code === 'NONODE' ? 'BADVERSION' : 'NONODE');
      break;
  }
  const history = h.map((y) => ({ ...y }));
  history[index] = { ...e, result: m };
  return { history, index };
}

/**
 * Brute force: tries every order of the ops that respects real time (ret < call ⇒ before),
 * dropping unknown ops or applying them with whatever result. Only for tiny histories.
 */
function bruteForce(h: HistEntry[]): boolean {
  const byPath = new Map<string, HistEntry[]>();
  for (const e of h) byPath.set(e.op.path, [...(byPath.get(e.op.path) ?? []), e]);
  const same = (a: HistResult, b: HistResult): boolean => JSON.stringify(a) === JSON.stringify(b);
  const go = (rest: HistEntry[], z: Z): boolean => {
    if (rest.every((e) => e.result === undefined)) return true;
    for (const e of rest) {
      if (rest.some((p) => p !== e && p.completedAt !== undefined && p.completedAt < e.invokedAt)) continue;
      const others = rest.filter((p) => p !== e);
      const [next, result] = model(z, e.op);
      if (e.result === undefined) {
        if (go(others, next) || go(others, z)) return true;
      } else if (same(result, e.result) && go(others, next)) return true;
    }
    return false;
  };
  for (const ops of byPath.values()) if (!go(ops, { exists: false, value: '', version: 0 })) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------

describe('testing/history: HistoryRecorder', () => {
  it('records invocations, responses and unknown outcomes, in invocation order', () => {
    const r = new HistoryRecorder();
    const a = r.invoke(1, create('/a', 'x'), 0);
    const b = r.invoke(2, read('/a'), 1);
    const c = r.invoke(3, set('/a', 'y'), 2);
    r.complete(b, val('x', 0), 5);
    r.complete(a, OK, 6);
    r.fail(c, 9);
    const d = r.invoke(1, del('/a'), 10); // still in flight at the end: unknown
    const es = r.entries();
    assert.deepEqual(es.map((e) => e.id), [a, b, c, d]);
    assert.deepEqual(es[0], { id: a, client: 1, op: create('/a', 'x'), invokedAt: 0, completedAt: 6, result: OK });
    assert.equal(es[2]!.completedAt, undefined);
    assert.equal(es[2]!.result, undefined);
    assert.equal(es[2]!.failedAt, 9);
    assert.equal(es[3]!.result, undefined);
    assertOk(checkLinearizable(es));
    assert.match(describeEntry(es[1]!), /^#1 c2 \[1, 5\] read \/a → ok "x" v0$/);
  });

  it('refuses misuse: double completion, unknown ids, time going backwards', () => {
    const r = new HistoryRecorder();
    const a = r.invoke(1, read('/a'), 5);
    r.complete(a, err('NONODE'), 6);
    assert.throws(() => r.complete(a, err('NONODE'), 7), /already/);
    assert.throws(() => r.fail(a, 7), /already/);
    assert.throws(() => r.complete(42, OK, 7), /unknown operation id/);
    assert.throws(() => r.invoke(1, read('/a'), 3), /backwards/);
  });
});

describe('testing/linearizability: checkLinearizable', () => {
  describe('accepts linearizable histories', () => {
    it('empty history and a plain sequential one', () => {
      assertOk(checkLinearizable([]));
      assertOk(
        checkLinearizable(
          hist(
            [1, read('/a'), 0, 1, err('NONODE')],
            [1, create('/a', 'x'), 2, 3, OK],
            [1, read('/a'), 4, 5, val('x', 0)],
            [1, set('/a', 'y', 0), 6, 7, okV(1)],
            [1, read('/a'), 8, 9, val('y', 1)],
            [1, del('/a', 1), 10, 11, OK],
            [1, read('/a'), 12, 13, err('NONODE')],
            [1, create('/a', 'z'), 14, 15, OK],
            [1, read('/a'), 16, 17, val('z', 0)],
          ),
        ),
      );
    });

    it('concurrent overlapping writes, in the order their versions tell', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, 1, OK],
        [2, set('/a', 'p'), 10, 30, okV(2)], // invoked first, took effect second
        [3, set('/a', 'q'), 12, 25, okV(1)],
        [1, read('/a'), 40, 41, val('p', 2)],
      );
      assertOk(checkLinearizable(h));
    });

    it('reads during an overlapping write may see either value, even old after new on other clients', () => {
      const h = hist(
        [1, create('/a', 'old'), 0, 1, OK],
        [1, set('/a', 'new'), 10, 50, okV(1)],
        [2, read('/a'), 12, 20, val('new', 1)],
        [3, read('/a'), 15, 45, val('old', 0)], // overlaps the write and the first read
        [4, read('/a'), 30, 40, val('new', 1)],
      );
      assertOk(checkLinearizable(h));
    });

    it('intervals that merely touch count as concurrent', () => {
      const h = hist([1, create('/a', 'x'), 0, 10, OK], [2, read('/a'), 10, 12, err('NONODE')]);
      assertOk(checkLinearizable(h));
    });

    it('an unknown-outcome create that did take effect', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, undefined, undefined],
        [2, read('/a'), 50, 51, val('x', 0)],
        [2, create('/a', 'y'), 52, 53, err('NODEEXISTS')],
      );
      assertOk(checkLinearizable(h));
    });

    it('an unknown-outcome create that never took effect', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, undefined, undefined],
        [2, read('/a'), 50, 51, err('NONODE')],
        [2, create('/a', 'y'), 52, 53, OK],
        [2, read('/a'), 54, 55, val('y', 0)],
      );
      assertOk(checkLinearizable(h));
    });

    it('an unknown-outcome write that takes effect long after it was invoked', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, 1, OK],
        [2, set('/a', 'late'), 5, undefined, undefined],
        [3, read('/a'), 10, 11, val('x', 0)],
        [3, read('/a'), 100, 101, val('x', 0)],
        [3, read('/a'), 200, 201, val('late', 1)],
        [3, set('/a', 'z', 1), 210, 211, okV(2)],
      );
      assertOk(checkLinearizable(h));
    });

    it('an unknown-outcome set can bring back a value and version that a later read reports', () => {
      const h = hist(
        [1, create('/a', 'a'), 0, 1, OK],
        [1, set('/a', 'b'), 2, 3, okV(1)],
        [1, del('/a'), 4, 5, OK],
        [1, create('/a', 'c'), 6, 7, OK],
        [2, set('/a', 'b'), 8, undefined, undefined], // took effect: (b, 1) again
        [3, read('/a'), 10, 11, val('b', 1)],
        [3, read('/a'), 2, 20, val('b', 1)], // may also read the first (b, 1)
      );
      assertOk(checkLinearizable(h));
    });

    it('BADVERSION, NONODE, NODEEXISTS and NOTEMPTY where the model produces them', () => {
      const h = hist(
        [1, set('/a', 'x'), 0, 1, err('NONODE')],
        [1, del('/a'), 2, 3, err('NONODE')],
        [1, create('/a/b', 'x'), 4, 5, err('NONODE')], // parent missing: /a/b absent
        [1, create('/a', 'x'), 6, 7, OK],
        [2, set('/a', 'y', 5), 8, 9, err('BADVERSION')],
        [2, del('/a', 3), 10, 11, err('BADVERSION')],
        [2, create('/a', 'z'), 12, 13, err('NODEEXISTS')],
        [2, set('/a', 'y', 0), 14, 15, okV(1)],
        [2, set('/a', 'w', 0), 16, 17, err('BADVERSION')],
        [3, del('/a', 1), 18, 19, err('NOTEMPTY')],
        [3, read('/a'), 20, 21, val('y', 1)],
        [3, del('/a', 1), 22, 23, OK],
      );
      assertOk(checkLinearizable(h));
    });

    it('a concurrent conditional set that lost the race gets BADVERSION', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, 1, OK],
        [2, set('/a', 'p', 0), 10, 20, err('BADVERSION')],
        [3, set('/a', 'q', 0), 11, 19, okV(1)],
      );
      assertOk(checkLinearizable(h));
    });

    it('checks paths independently', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, 10, OK],
        [2, create('/b', 'y'), 0, 10, OK],
        [3, read('/b'), 11, 12, val('y', 0)],
        [3, read('/a'), 13, 14, val('x', 0)],
      );
      assertOk(checkLinearizable(h));
    });
  });

  describe('rejects non-linearizable histories, naming the path', () => {
    it('stale read after a completed write', () => {
      const h = hist(
        [1, create('/ok', 'x'), 0, 1, OK],
        [1, create('/a', 'x'), 0, 1, OK],
        [1, set('/a', 'y'), 2, 3, okV(1)],
        [2, read('/a'), 4, 5, val('x', 0)],
        [2, read('/ok'), 6, 7, val('x', 0)],
      );
      const r = assertViolation(checkLinearizable(h), '/a');
      assert.ok(r.minimalHistory.some((e) => e.id === 3), 'the stale read is in the window');
      assert.match(r.explanation, /#3 c2 \[4, 5\] read \/a → ok "x" v0/);
      assert.match(r.explanation, /present with value "y" at version 1/);
    });

    it('two successful creates of the same path without a delete in between', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, 5, OK],
        [2, del('/a'), 1, 2, err('NONODE')],
        [3, create('/a', 'y'), 10, 15, OK],
      );
      const r = assertViolation(checkLinearizable(h), '/a');
      assert.deepEqual(
        r.minimalHistory.map((e) => e.id).sort(),
        [0, 2],
      );
    });

    it('a read of a value never written', () => {
      const h = hist([1, create('/a', 'x'), 0, 5, OK], [2, set('/a', 'y'), 3, 8, okV(1)], [3, read('/a'), 4, 9, val('z', 1)]);
      assertViolation(checkLinearizable(h), '/a');
    });

    it('a version going backwards', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, 1, OK],
        [1, set('/a', 'y'), 2, 3, okV(1)],
        [1, set('/a', 'z'), 4, 5, okV(2)],
        [2, read('/a'), 6, 7, val('z', 2)],
        [2, read('/a'), 8, 9, val('z', 1)],
      );
      assertViolation(checkLinearizable(h), '/a');
    });

    it('a set reporting a version that does not follow', () => {
      const h = hist([1, create('/a', 'x'), 0, 1, OK], [1, set('/a', 'y'), 2, 3, okV(3)]);
      assertViolation(checkLinearizable(h), '/a');
    });

    it('a lost acknowledged write', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, 1, OK],
        [2, set('/a', 'y', 0), 2, 3, okV(1)], // acknowledged …
        [3, read('/a'), 10, 11, val('x', 0)], // … and gone
        [3, set('/a', 'w', 0), 12, 13, okV(1)],
      );
      assertViolation(checkLinearizable(h), '/a');
    });

    it('a lost acknowledged delete', () => {
      const h = hist([1, create('/a', 'x'), 0, 1, OK], [2, del('/a'), 2, 3, OK], [3, read('/a'), 10, 11, val('x', 0)]);
      assertViolation(checkLinearizable(h), '/a');
    });

    it('an unknown-outcome op cannot take effect before it was invoked', () => {
      const h = hist([2, read('/a'), 0, 5, val('x', 0)], [1, create('/a', 'x'), 10, undefined, undefined]);
      assertViolation(checkLinearizable(h), '/a');
    });

    it('an unknown-outcome conditional set cannot take effect at another version', () => {
      const h = hist(
        [1, create('/a', 'x'), 0, 1, OK],
        [2, set('/a', 'y', 5), 2, undefined, undefined],
        [3, read('/a'), 10, 11, val('y', 1)],
      );
      assertViolation(checkLinearizable(h), '/a');
      h[1]!.op = set('/a', 'y', 0);
      assertOk(checkLinearizable(h));
    });

    it('a definite error constrains: NODEEXISTS on an absent node', () => {
      const h = hist([1, create('/a', 'x'), 0, 1, err('NODEEXISTS')]);
      assertViolation(checkLinearizable(h), '/a');
    });

    it('reports the failing path among many healthy ones, with a window from the point of failure', () => {
      const base = concurrentRun(7, 600, 6, 8, 20, 0.02);
      const bad = base.map((e) => ({ ...e }));
      // A read, much later than everything else, of a value /p3 held at no time at that version.
      const t = Math.max(...bad.map((e) => e.completedAt ?? e.invokedAt)) + 100;
      bad.push({ id: 9999, client: 1, op: read('/p3'), invokedAt: t, completedAt: t + 1, result: val('never', 0) });
      assertOk(checkLinearizable(base), base);
      const r = assertViolation(checkLinearizable(bad), '/p3');
      assert.ok(r.minimalHistory.some((e) => e.id === 9999));
      assert.ok(r.minimalHistory.length <= 30, `window of ${r.minimalHistory.length} ops`);
    });
  });

  it('rejects malformed entries with a TypeError', () => {
    assert.throws(() => checkLinearizable(hist([1, read('/a'), 0, 1, undefined])), TypeError);
    assert.throws(() => checkLinearizable(hist([1, read('/a'), 5, 1, err('NONODE')])), TypeError);
    assert.throws(() => checkLinearizable(hist([1, set('/a', 'x'), 0, 1, OK])), /new version/);
    assert.throws(() => checkLinearizable(hist([1, read('/a'), 0, 1, err('BADVERSION')])), /cannot fail with BADVERSION/);
  });

  it('reports a timeout distinctly instead of a verdict', () => {
    // 22 concurrent unknown-outcome sets of distinct values, each observed by a read, and a
    // final read no subset can explain: the search must try exponentially many subsets.
    const rows: Row[] = [[0, create('/a', 'x'), 0, 1, OK]];
    for (let i = 0; i < 22; i++) rows.push([i + 1, set('/a', `u${i}`), 2, undefined, undefined]);
    for (let i = 0; i < 22; i++) rows.push([i + 30, read('/a'), 3, 1000, val(`u${i}`, i + 1)]);
    rows.push([99, read('/a'), 1001, 1002, val('nope', 0)]);
    const h = hist(...rows);
    const t0 = performance.now();
    const r = checkLinearizable(h, { timeLimitMs: 150 });
    const took = performance.now() - t0;
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.timeout, true, r.explanation);
    assert.equal(r.explanation, 'timeout');
    assert.equal(r.path, '/a');
    assert.ok(took < 1000, `took ${took} ms`);
  });

  describe('randomized', () => {
    it('sequential model histories widened into concurrent ones stay linearizable; mutations are caught', function () {
      this.timeout(10_000);
      let mutations = 0;
      let caught = 0;
      for (let seed = 1; seed <= 60; seed++) {
        const paths = ['/a', '/b', '/c'];
        const h = sequentialThenWidened(seed, 120, paths, 5 + (seed % 4) * 15, seed % 3 === 0 ? 0.08 : 0);
        assertOk(checkLinearizable(h), h);
        const rnd = prng(seed * 7919);
        for (let k = 0; k < 5; k++) {
          const m = mutate(rnd, h);
          if (!m) continue;
          mutations++;
          const r = checkLinearizable(m.history);
          if (!r.ok) {
            assert.equal(r.timeout, false, r.explanation);
            // Only the mutated entry's path can be at fault.
            assert.equal(r.path, m.history[m.index]!.op.path, r.explanation);
            caught++;
          }
        }
      }
      assert.ok(caught > 0);
      assert.ok(caught >= mutations / 2, `caught ${caught} of ${mutations} mutations`);
    });

    it('agrees with brute force on tiny histories, mutated or not', function () {
      this.timeout(10_000);
      let disagreements = 0;
      let bad = 0;
      for (let seed = 1; seed <= 700; seed++) {
        const rnd = prng(seed);
        // First mostly completed ops, then many of unknown outcome and wider overlaps.
        const base =
          seed <= 400
            ? sequentialThenWidened(seed, 4 + (seed % 4), ['/a'], 5 + (seed % 3) * 12, 0.15)
            : sequentialThenWidened(seed, 6 + (seed % 3), ['/a'], 10 + (seed % 5) * 10, 0.4);
        const h = rnd() < 0.6 ? (mutate(rnd, base)?.history ?? base) : base;
        const expected = bruteForce(h);
        const r = checkLinearizable(h);
        if (!expected) bad++;
        if (r.ok !== expected) {
          disagreements++;
          assert.fail(`seed ${seed}: checker says ${r.ok}, brute force ${expected}\n${h.map(describeEntry).join('\n')}`);
        }
      }
      assert.equal(disagreements, 0);
      assert.ok(bad > 100, `only ${bad} non-linearizable cases generated`);
    });

    it('concurrent runs with crashes (unknown outcomes) are linearizable', function () {
      this.timeout(10_000);
      for (let seed = 1; seed <= 20; seed++) {
        const h = concurrentRun(seed, 300, 3, 10, 30, 0.05);
        assertOk(checkLinearizable(h), h);
      }
    });
  });

  describe('performance', () => {
    it('2,000 ops over 10 paths from 20 clients, 2% unknown outcomes, well under 2 s', function () {
      this.timeout(10_000);
      const h = concurrentRun(42, 2000, 10, 20, 40, 0.02);
      const t0 = performance.now();
      const r = checkLinearizable(h);
      const ms = performance.now() - t0;
      assertOk(r, h);
      assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`);
    });

    it('2,000 ops on 2 hot paths from 20 clients, well under 2 s', function () {
      this.timeout(10_000);
      const h = concurrentRun(43, 2000, 2, 20, 40, 0.02);
      const t0 = performance.now();
      const r = checkLinearizable(h);
      const ms = performance.now() - t0;
      assertOk(r, h);
      assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`);
    });
  });
});

describe('testing/linearizability: checkSequentialReads', () => {
  it('accepts stale but monotonic reads, and reads of own writes', () => {
    const h = hist(
      [1, create('/a', 'x'), 0, 1, OK],
      [1, set('/a', 'y'), 2, 3, okV(1)],
      [1, set('/a', 'z'), 4, 5, okV(2)],
      // client 2 lags behind (a slow follower) but never goes back
      [2, read('/a'), 10, 11, err('NONODE')],
      [2, read('/a'), 12, 13, val('x', 0)],
      [2, read('/a'), 14, 15, val('x', 0)],
      [2, read('/a'), 16, 17, val('z', 2)],
      // client 1 sees its own writes
      [1, read('/a'), 20, 21, val('z', 2)],
    );
    assert.deepEqual(checkSequentialReads(h), { ok: true });
    assert.equal(checkLinearizable(h).ok, false, 'client 2 is not linearizable, as expected for plain reads');
  });

  it('accepts a lower version after a possible delete and re-create by someone else', () => {
    const h = hist(
      [1, create('/a', 'x'), 0, 1, OK],
      [1, set('/a', 'y'), 2, 3, okV(1)],
      [2, read('/a'), 4, 5, val('y', 1)],
      [3, del('/a'), 6, 7, OK],
      [3, create('/a', 'n'), 8, undefined, undefined],
      [2, read('/a'), 10, 11, err('NONODE')],
      [2, read('/a'), 12, 13, val('n', 0)],
    );
    assert.deepEqual(checkSequentialReads(h), { ok: true });
  });

  it('rejects a read going back to an older version (monotonic reads)', () => {
    const h = hist(
      [1, create('/a', 'x'), 0, 1, OK],
      [1, set('/a', 'y'), 2, 3, okV(1)],
      [2, read('/a'), 4, 5, val('y', 1)],
      [2, read('/a'), 6, 7, val('x', 0)],
    );
    const r = checkSequentialReads(h);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.path, '/a');
    assert.equal(r.client, 2);
    assert.match(r.explanation, /monotonic reads/);
    assert.deepEqual(r.entries.map((e) => e.id), [2, 3]);
  });

  it('rejects a read that misses the client\'s own completed write (read-your-writes)', () => {
    const h = hist([1, create('/a', 'x'), 0, 1, OK], [1, set('/a', 'y'), 2, 3, okV(1)], [1, read('/a'), 4, 5, val('x', 0)]);
    const r = checkSequentialReads(h);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.explanation, /read-your-writes/);
    assert.equal(r.client, 1);
  });

  it('rejects a node reappearing or vanishing without a create/delete, and own delete ignored', () => {
    const vanish = hist([1, create('/a', 'x'), 0, 1, OK], [2, read('/a'), 2, 3, val('x', 0)], [2, read('/a'), 4, 5, err('NONODE')]);
    assert.equal(checkSequentialReads(vanish).ok, false);
    const ownDelete = hist([1, create('/a', 'x'), 0, 1, OK], [1, del('/a'), 2, 3, OK], [1, read('/a'), 4, 5, val('x', 0)]);
    const r = checkSequentialReads(ownDelete);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.explanation, /read-your-writes/);
  });

  it('timestamps are coarse: a write whose interval only touches another\'s (equal ms) may fall on either side of it', () => {
    // Found by the simulation (seed 800323, --steps 8000 --clients 8): client 1's set and client
    // 2's delete both ran within ms 10; the set succeeded, so it took effect first, and the delete
    // explains client 1's later NONODE. Equal timestamps do not order two operations.
    const tie = hist([1, create('/a', 'x'), 0, 1, OK], [1, set('/a', 'y'), 10, 10, okV(1)], [2, del('/a'), 10, 10, OK], [1, read('/a'), 20, 20, err('NONODE')]);
    assert.deepEqual(checkSequentialReads(tie), { ok: true });
    // Likewise a create completing in the very ms a read is answered may be what the read saw.
    const reappear = hist([1, create('/a', 'x'), 0, 1, OK], [1, del('/a'), 2, 3, OK], [2, create('/a', 'z'), 9, 9, OK], [1, read('/a'), 9, 9, val('z', 0)]);
    assert.deepEqual(checkSequentialReads(reappear), { ok: true });
    // Strictly before the client's own write, the delete cannot explain the read.
    const before = hist([1, create('/a', 'x'), 0, 1, OK], [2, del('/a'), 8, 9, OK], [1, set('/a', 'y'), 10, 10, okV(1)], [1, read('/a'), 20, 20, err('NONODE')]);
    const r = checkSequentialReads(before);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.explanation, /read-your-writes/);
  });

  it('does not compare a read with an observation still in flight when it was invoked', () => {
    const h = hist([1, create('/a', 'x'), 0, 1, OK], [1, set('/a', 'y'), 2, 10, okV(1)], [1, read('/a'), 5, 6, val('x', 0)]);
    assert.deepEqual(checkSequentialReads(h), { ok: true });
  });

  it('random concurrent runs satisfy it (they are even linearizable)', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const h = concurrentRun(seed, 400, 3, 8, 20, 0.03);
      const r = checkSequentialReads(h);
      assert.ok(r.ok, r.ok ? '' : r.explanation);
    }
  });
});
