/**
 * Linearizability checker for recorded histories of znode operations (see `history.ts`), used
 * by the deterministic simulation harness to check that what clients saw is explainable by a
 * single sequential order of the operations that respects real time.
 *
 * Model (per path; operations touch one path each, and linearizability is compositional, so
 * each path is checked on its own): a state `{ exists, value, version }`, initially absent.
 * - `create` succeeds iff absent (the node gets version 0); `NODEEXISTS` iff present; `NONODE`
 *   (missing parent) requires the node to be absent (a child cannot exist without its parent).
 * - `delete` succeeds iff present and the version matches (-1 matches any); `NONODE` iff absent;
 *   `BADVERSION` iff present with another version; `NOTEMPTY` iff present and the version
 *   matches (ZooKeeper checks the version first; children are not modelled).
 * - `set` succeeds iff present and the version matches, the version becomes version + 1 and the
 *   response must report exactly that; `NONODE`, `BADVERSION` as for delete.
 * - `read` returns the current value and version, or `NONODE`.
 *
 * Search: Wing & Gong's algorithm with Lowe's just-in-time linearization and memoization of
 * (set of linearized operations, model state), as in Porcupine's `checker.go`, plus:
 * - operations with an unknown outcome (no response) return "at infinity": they may take
 *   effect at any point after their invocation, or never; their effect is whatever the model
 *   does; they never constrain. Unknown reads are dropped. An unknown operation is only applied
 *   when it changes the state (otherwise applying it is indistinguishable from never doing so);
 * - a memo entry with a subset of the unknown operations applied subsumes one with a superset
 *   (leaving an unknown operation unapplied only adds options);
 * - symmetry: unknown operations with identical effect are applied in invocation order, and
 *   among available completed operations with identical effect and result only the one that
 *   returns first is tried (exchange arguments);
 * - values that no read ever returns are indistinguishable and share one state value;
 * - a completed operation that does not change the state (reads, definite errors) is
 *   linearized as soon as it is consistent with the current state, without branching (moving
 *   it earlier cannot invalidate a linearization);
 * - a step that leaves a (value, version) some remaining read reports, when no remaining
 *   operation can write it again, is pruned;
 * - completed operations are tried before unknown ones.
 *
 * Cost: linear-ish for typical simulation histories (see the tests: 2,000 operations from 20
 * clients in tens of milliseconds), exponential in the worst case (the problem is
 * NP-complete). What makes it expensive: many concurrent writes to one path whose values are
 * not unique (reads cannot tell the writes apart), and many unknown-outcome writes pending
 * at once. Give every write a unique value (e.g. `client:seq`) and the search stays cheap.
 *
 * Time: intervals that merely touch (one operation returns at the very time another is
 * invoked) count as concurrent, like Porcupine; with a coarse virtual clock, order them by
 * giving distinct timestamps if they must be ordered.
 *
 * What to feed it: writes and `sync`+read pairs (recorded as a read invoked when the sync was)
 * are linearizable in ZooKeeper; plain reads are not — check those with
 * {@link checkSequentialReads}. Deletions that no client issued (ephemerals of an expired or
 * closed session) must be recorded too, e.g. as a `delete` with version -1 invoked when the
 * session ended and completed (ok) when the closeSession was applied, or with an unknown
 * outcome if that moment is not known. `multi` transactions can be recorded as their single-
 * path operations sharing one interval: that checks each path but not the atomicity.
 */
import { describeEntry, type HistEntry, type HistOp, type HistResult } from './history.js';

/** Options of {@link checkLinearizable}. */
export interface LinearizabilityOptions {
  /**
   * Budget for the whole check in wall-clock milliseconds (default 10,000). When the search
   * runs out of it the result is `{ ok: false, timeout: true }`: no verdict, not a violation.
   */
  timeLimitMs?: number;
}

/** Verdict of {@link checkLinearizable}. */
export type LinearizabilityResult =
  | { ok: true }
  | {
      ok: false;
      /**
       * `true` when the time limit ran out before a verdict: the history may well be
       * linearizable. `false` for a definite violation.
       */
      timeout: boolean;
      /** The path whose operations have no linearization (or whose check ran out of time). */
      path: string;
      /** Human-readable account: `'timeout'` on timeout, else the failure and its window. */
      explanation: string;
      /** A short window of that path's operations, in invocation order, around the failure (empty on timeout). */
      minimalHistory: HistEntry[];
    };

/** Verdict of {@link checkSequentialReads}. */
export type SequentialReadsResult =
  | { ok: true }
  | {
      ok: false;
      /** The path and client concerned. */
      path: string;
      client: number;
      explanation: string;
      /** The earlier observation and the read that contradicts it. */
      entries: HistEntry[];
    };

// ---------------------------------------------------------------------------------------------
// Compiled operations

const CREATE = 0;
const DELETE = 1;
const SET = 2;
const READ = 3;
const R_OK = 0;
const R_NODEEXISTS = 1;
const R_NONODE = 2;
const R_BADVERSION = 3;
const R_NOTEMPTY = 4;
const CODES: Record<string, number> = { NODEEXISTS: R_NODEEXISTS, NONODE: R_NONODE, BADVERSION: R_BADVERSION, NOTEMPTY: R_NOTEMPTY };
const KINDS: Record<string, number> = { create: CREATE, delete: DELETE, set: SET, read: READ };
const ALLOWED: Record<string, readonly string[]> = {
  create: ['NODEEXISTS', 'NONODE'],
  delete: ['NONODE', 'BADVERSION', 'NOTEMPTY'],
  set: ['NONODE', 'BADVERSION'],
  read: ['NONODE'],
};

/** Value id shared by every value that no read ever returns (they are indistinguishable). */
const UNOBSERVED = 0;

interface COp {
  entry: HistEntry;
  kind: number;
  /** Interned value written (create/set). */
  val: number;
  /** Version argument (delete/set). */
  ver: number;
  /** Outcome known (a response arrived). */
  known: boolean;
  /** Result code (known ops). */
  res: number;
  /** Reported value (read ok) and version (read ok, set ok). */
  rVal: number;
  rVer: number;
  /** Known and its result implies a state change. */
  mutating: boolean;
  call: number;
  ret: number;
}

interface State {
  ex: boolean;
  val: number;
  ver: number;
}

const ABSENT: State = { ex: false, val: -1, ver: 0 };

function fail(e: HistEntry, why: string): never {
  throw new TypeError(`linearizability: malformed history entry #${String(e?.id)}: ${why}`);
}

function validate(e: HistEntry): void {
  if (e === null || typeof e !== 'object') fail(e, 'not an object');
  const op = e.op as HistOp | undefined;
  if (op === undefined || op === null || typeof op !== 'object' || KINDS[op.kind] === undefined) fail(e, 'bad op kind');
  if (typeof op.path !== 'string') fail(e, 'op.path must be a string');
  if ((op.kind === 'create' || op.kind === 'set') && typeof op.value !== 'string') fail(e, 'op.value must be a string');
  if ((op.kind === 'delete' || op.kind === 'set') && !Number.isInteger(op.version)) fail(e, 'op.version must be an integer');
  if (typeof e.invokedAt !== 'number' || Number.isNaN(e.invokedAt)) fail(e, 'invokedAt must be a number');
  if ((e.completedAt === undefined) !== (e.result === undefined)) fail(e, 'completedAt and result must both be set or both be undefined');
  if (e.completedAt === undefined || e.result === undefined) return;
  if (typeof e.completedAt !== 'number' || !(e.completedAt >= e.invokedAt)) fail(e, 'completedAt must be a number ≥ invokedAt');
  const r = e.result;
  if (r.ok === true) {
    if (op.kind === 'set' && !Number.isInteger(r.version)) fail(e, 'a successful set must report the new version');
    if (op.kind === 'read' && (typeof r.value !== 'string' || !Number.isInteger(r.version))) fail(e, 'a successful read must report value and version');
  } else if (r.ok === false) {
    if (!ALLOWED[op.kind]!.includes(r.code)) fail(e, `${op.kind} cannot fail with ${String(r.code)}`);
  } else {
    fail(e, 'result.ok must be a boolean');
  }
}

/** Compiles one path's entries (already validated). Unknown reads are dropped. */
function compile(entries: HistEntry[]): COp[] {
  const observed = new Set<string>();
  for (const e of entries) {
    if (e.op.kind === 'read' && e.result?.ok === true) observed.add(e.result.value!);
  }
  const ids = new Map<string, number>();
  const intern = (v: string): number => {
    if (!observed.has(v)) return UNOBSERVED;
    let id = ids.get(v);
    if (id === undefined) ids.set(v, (id = ids.size + 1));
    return id;
  };
  const out: COp[] = [];
  for (const e of entries) {
    const op = e.op;
    const known = e.result !== undefined;
    if (!known && op.kind === 'read') continue;
    const r = e.result;
    const res = r === undefined || r.ok ? R_OK : CODES[r.code]!;
    out.push({
      entry: e,
      kind: KINDS[op.kind]!,
      val: op.kind === 'create' || op.kind === 'set' ? intern(op.value) : -1,
      ver: op.kind === 'delete' || op.kind === 'set' ? op.version : -1,
      known,
      res,
      rVal: op.kind === 'read' && r?.ok === true ? intern(r.value!) : -1,
      rVer: r?.ok === true && r.version !== undefined ? r.version : -1,
      mutating: known && res === R_OK && op.kind !== 'read',
      call: e.invokedAt,
      ret: e.completedAt ?? Infinity,
    });
  }
  return out;
}

/** The state after a known operation with its recorded result, or `null` if inconsistent. */
function stepKnown(o: COp, s: State): State | null {
  switch (o.kind) {
    case CREATE:
      if (o.res === R_OK) return s.ex ? null : { ex: true, val: o.val, ver: 0 };
      if (o.res === R_NODEEXISTS) return s.ex ? s : null;
      return s.ex ? null : s; // NONODE: the parent is missing, so this node is too
    case DELETE: {
      if (!s.ex) return o.res === R_NONODE ? s : null;
      const match = o.ver === -1 || o.ver === s.ver;
      if (o.res === R_OK) return match ? ABSENT : null;
      if (o.res === R_BADVERSION) return match ? null : s;
      if (o.res === R_NOTEMPTY) return match ? s : null;
      return null;
    }
    case SET: {
      if (!s.ex) return o.res === R_NONODE ? s : null;
      const match = o.ver === -1 || o.ver === s.ver;
      if (o.res === R_OK) return match && o.rVer === s.ver + 1 ? { ex: true, val: o.val, ver: s.ver + 1 } : null;
      if (o.res === R_BADVERSION) return match ? null : s;
      return null;
    }
    default:
      if (o.res === R_OK) return s.ex && s.val === o.rVal && s.ver === o.rVer ? s : null;
      return s.ex ? null : s;
  }
}

/** The state after an operation of unknown outcome (returns `s` itself when it has no effect). */
function stepUnknown(o: COp, s: State): State {
  switch (o.kind) {
    case CREATE:
      return s.ex ? s : { ex: true, val: o.val, ver: 0 };
    case DELETE:
      return s.ex && (o.ver === -1 || o.ver === s.ver) ? ABSENT : s;
    case SET:
      return s.ex && (o.ver === -1 || o.ver === s.ver) ? { ex: true, val: o.val, ver: s.ver + 1 } : s;
    default:
      return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Search

type SearchOutcome =
  | { kind: 'ok' }
  | { kind: 'timeout' }
  | { kind: 'fail'; prefix: number[]; state: State; blocker: number; knownPlaced: number };

interface MemoEntry {
  k: Uint32Array;
  ex: boolean;
  val: number;
  ver: number;
  /** Unknown-op sets already explored with this (known set, state); an antichain under ⊆. */
  us: Uint32Array[];
}

function xorshift(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function subset(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < a.length; w++) if ((a[w]! & ~b[w]!) !== 0) return false;
  return true;
}

function equalBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < a.length; w++) if (a[w] !== b[w]) return false;
  return true;
}

/**
 * Searches for a linearization of `ops` (one path) starting from state `init`. With `prune`
 * off, the stranded-read pruning is skipped (slower, but the longest prefix it reports stops
 * at the op that really fails, which makes better explanations).
 *
 * The ops with a known outcome live in a doubly linked list of call and return events
 * (node 0 = head, 2i+1 = call of op i, 2i+2 = its return), lifted out as they are linearized,
 * as in Porcupine. Ops of unknown outcome have no return event; they are kept apart, grouped in
 * symmetry classes, and are available once their call precedes the first pending return.
 */
function search(ops: COp[], init: State, deadline: number, prune = true): SearchOutcome {
  const n = ops.length;
  // Global event order, by time; calls before returns at equal times (touching = concurrent).
  const events: number[] = [];
  for (let i = 0; i < n; i++) {
    events.push(2 * i + 1);
    if (ops[i]!.known) events.push(2 * i + 2);
  }
  const timeOf = (node: number): number => (node & 1 ? ops[(node - 1) >> 1]!.call : ops[(node - 1) >> 1]!.ret);
  events.sort((a, b) => {
    const ta = timeOf(a);
    const tb = timeOf(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    const ka = a & 1 ? 0 : 1;
    const kb = b & 1 ? 0 : 1;
    return ka !== kb ? ka - kb : a - b;
  });
  const pos = new Int32Array(2 * n + 1);
  events.forEach((node, p) => {
    pos[node] = p;
  });

  // Linked list of the known ops' events.
  const next = new Int32Array(2 * n + 1);
  const prev = new Int32Array(2 * n + 1);
  let last = 0;
  for (const node of events) {
    if (!ops[(node - 1) >> 1]!.known) continue;
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  next[last] = -1;

  // Bit indexes and Zobrist hashes (known ops); symmetry classes of unknown ops: ops with the
  // same effect, applied in invocation order (any order of identical, never-expiring ops can
  // be exchanged for that one).
  const bit = new Int32Array(n);
  let nKnown = 0;
  let nUnknown = 0;
  const rnd = xorshift(0x2545f491);
  const h1: number[] = [];
  const h2: number[] = [];
  const cls = new Int32Array(n);
  const classOf = new Map<string, number>();
  const members: number[][] = [];
  for (const node of events) {
    if ((node & 1) === 0) continue;
    const i = (node - 1) >> 1;
    const o = ops[i]!;
    if (o.known) {
      bit[i] = nKnown++;
      h1.push(rnd());
      h2.push(rnd());
    } else {
      bit[i] = nUnknown++;
      const key = `${o.kind}:${o.ver}:${o.val}`;
      let c = classOf.get(key);
      if (c === undefined) {
        classOf.set(key, (c = members.length));
        members.push([]);
      }
      cls[i] = c;
      members[c]!.push(i);
    }
  }
  const nClasses = members.length;
  const applied = new Int32Array(nClasses);

  // Symmetry of known ops: among available ops with identical effect and identical result,
  // only the one returning first needs trying (exchange argument, as in EDF scheduling).
  const kcls = new Int32Array(n);
  const kclasses = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    if (!o.mutating) continue;
    const key = `${o.kind}:${o.ver}:${o.val}:${o.rVer}`;
    let c = kclasses.get(key);
    if (c === undefined) kclasses.set(key, (c = kclasses.size));
    kcls[i] = c;
  }
  const eligStamp = new Int32Array(kclasses.size);
  const eligOp = new Int32Array(kclasses.size);
  let gen = 0;
  /** Marks, per class, the available known mutating op that returns first. */
  const markEligible = (): void => {
    gen++;
    for (let c = next[0]!; c !== -1 && (c & 1) === 1; c = next[c]!) {
      const i = (c - 1) >> 1;
      if (!ops[i]!.mutating) continue;
      const k = kcls[i]!;
      if (eligStamp[k] !== gen || pos[2 * i + 2]! < pos[2 * eligOp[k]! + 2]!) {
        eligStamp[k] = gen;
        eligOp[k] = i;
      }
    }
  };
  /** The first pending return event (the end of the window of available ops). */
  const firstReturn = (): number => {
    let c = next[0]!;
    while (c !== -1 && (c & 1) === 1) c = next[c]!;
    return c;
  };

  // Memo of explored configurations: (known ops linearized, state) → antichain of the sets of
  // unknown ops applied. A configuration with a subset of a failed one's unknown ops applied
  // and otherwise equal has no more options, so it fails too.
  const kbits = new Uint32Array((nKnown + 31) >>> 5);
  const ubits = new Uint32Array((nUnknown + 31) >>> 5);
  let zh1 = 0;
  let zh2 = 0;
  const memo = new Map<number, MemoEntry[]>();
  const admit = (s: State): boolean => {
    const sh = Math.imul((s.ex ? 1 : 2) ^ Math.imul(s.val + 7, 0x9e3779b1) ^ Math.imul(s.ver + 13, 0x85ebca6b), 0xc2b2ae35);
    const key = ((zh1 ^ sh) >>> 0) * 2097152 + ((zh2 ^ Math.imul(sh, 0x27d4eb2f)) & 0x1fffff);
    let bucket = memo.get(key);
    if (bucket === undefined) memo.set(key, (bucket = []));
    for (const m of bucket) {
      if (m.ex !== s.ex || m.val !== s.val || m.ver !== s.ver || !equalBits(m.k, kbits)) continue;
      for (const u of m.us) if (subset(u, ubits)) return false;
      m.us = m.us.filter((u) => !subset(ubits, u));
      m.us.push(ubits.slice());
      return true;
    }
    bucket.push({ k: kbits.slice(), ex: s.ex, val: s.val, ver: s.ver, us: [ubits.slice()] });
    return true;
  };

  // Value-version tokens that known reads report: once the state leaves a token that a
  // remaining read needs and no remaining op can write it again, the configuration is dead.
  const tokOf = new Map<number, number>();
  const tokReaders: number[] = [];
  const tokWriters: number[] = [];
  const readTok = new Int32Array(n).fill(-1);
  const writeTok = new Int32Array(n).fill(-1);
  let maxVal = 0;
  for (const o of ops) maxVal = Math.max(maxVal, o.val, o.rVal);
  const wildLeft = new Int32Array(maxVal + 1); // remaining unknown sets writing each value
  const tokKey = (val: number, ver: number): number => val * 4294967296 + ver;
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    if (!o.known || o.kind !== READ || o.res !== R_OK) continue;
    const key = tokKey(o.rVal, o.rVer);
    let t = tokOf.get(key);
    if (t === undefined) {
      tokOf.set(key, (t = tokReaders.length));
      tokReaders.push(0);
      tokWriters.push(0);
    }
    readTok[i] = t;
    tokReaders[t]!++;
  }
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    if (o.val <= UNOBSERVED) continue;
    if (!o.known && o.kind === SET) {
      wildLeft[o.val]!++;
      continue;
    }
    let key: number;
    if (o.kind === CREATE && (!o.known || o.res === R_OK)) key = tokKey(o.val, 0);
    else if (o.kind === SET && o.known && o.res === R_OK) key = tokKey(o.val, o.rVer);
    else continue;
    const t = tokOf.get(key);
    if (t === undefined) continue;
    writeTok[i] = t;
    tokWriters[t]!++;
  }
  const account = (i: number, d: number): void => {
    if (readTok[i]! >= 0) tokReaders[readTok[i]!]! += d;
    if (writeTok[i]! >= 0) tokWriters[writeTok[i]!]! += d;
    const o = ops[i]!;
    if (!o.known && o.kind === SET && o.val > UNOBSERVED) wildLeft[o.val]! += d;
  };
  /** Would applying op i (to reach ns) strand a remaining read of the current token? */
  const strands = (i: number, ns: State): boolean => {
    const s = state;
    if (!prune || !s.ex || s.val <= UNOBSERVED || (ns.ex && ns.val === s.val && ns.ver === s.ver)) return false;
    const t = tokOf.get(tokKey(s.val, s.ver));
    if (t === undefined || tokReaders[t]! === 0) return false;
    const o = ops[i]!;
    const writers = tokWriters[t]! - (writeTok[i] === t ? 1 : 0);
    const wild = wildLeft[s.val]! - (!o.known && o.kind === SET && o.val === s.val ? 1 : 0);
    return writers === 0 && wild === 0;
  };

  const stOp = new Int32Array(n);
  const stForced = new Uint8Array(n);
  // Per depth: the unknown ops available in that configuration, in the order they are tried,
  // and how far through them the search is.
  const stCands: number[][] = [];
  const stCandAt = new Int32Array(n + 1);
  const stState: State[] = new Array<State>(n);
  let depth = 0;
  let state = init;
  let knownLeft = nKnown;
  let best = -1;
  let bestPrefix: number[] = [];
  let bestState = init;
  let bestBlocker = -1;

  /** Linearizes op i next, moving to state ns, unless pruned or explored before. */
  const enter = (i: number, ns: State, forced: boolean): boolean => {
    if (strands(i, ns)) return false;
    const o = ops[i]!;
    const b = bit[i]!;
    if (o.known) {
      kbits[b >>> 5]! ^= 1 << (b & 31);
      zh1 ^= h1[b]!;
      zh2 ^= h2[b]!;
    } else {
      ubits[b >>> 5]! ^= 1 << (b & 31);
    }
    if (!admit(ns)) {
      if (o.known) {
        kbits[b >>> 5]! ^= 1 << (b & 31);
        zh1 ^= h1[b]!;
        zh2 ^= h2[b]!;
      } else {
        ubits[b >>> 5]! ^= 1 << (b & 31);
      }
      return false;
    }
    stOp[depth] = i;
    stForced[depth] = forced ? 1 : 0;
    stState[depth] = state;
    depth++;
    state = ns;
    account(i, -1);
    if (o.known) {
      knownLeft--;
      const c = 2 * i + 1;
      const r = c + 1;
      next[prev[c]!] = next[c]!;
      if (next[c] !== -1) prev[next[c]!] = prev[c]!;
      next[prev[r]!] = next[r]!;
      if (next[r] !== -1) prev[next[r]!] = prev[r]!;
    } else {
      applied[cls[i]!]!++;
    }
    return true;
  };
  /** Undoes the last linearization step; returns its op. */
  const undo = (): number => {
    depth--;
    const i = stOp[depth]!;
    const o = ops[i]!;
    const b = bit[i]!;
    state = stState[depth]!;
    account(i, 1);
    if (o.known) {
      knownLeft++;
      kbits[b >>> 5]! ^= 1 << (b & 31);
      zh1 ^= h1[b]!;
      zh2 ^= h2[b]!;
      const c = 2 * i + 1;
      const r = c + 1;
      next[prev[r]!] = r;
      if (next[r] !== -1) prev[next[r]!] = r;
      next[prev[c]!] = c;
      if (next[c] !== -1) prev[next[c]!] = c;
    } else {
      ubits[b >>> 5]! ^= 1 << (b & 31);
      applied[cls[i]!]!--;
    }
    return i;
  };

  let fresh = true; // just entered a new configuration
  let phase = 0; // 0: trying known ops (cursor: list node); 1: unknown ops (cursor: class)
  let cursor = 0;
  let windowEnd = -1; // first pending return event, during phase 1
  let iter = 0;
  for (;;) {
    if ((iter++ & 1023) === 0 && performance.now() >= deadline) return { kind: 'timeout' };
    let backtrack = false;
    if (fresh) {
      fresh = false;
      if (knownLeft === 0) return { kind: 'ok' };
      // A known op that leaves the state unchanged and fits it now is linearized right away:
      // moving it earlier in any linearization keeps it valid, so there is nothing to branch on.
      for (let c = next[0]!; c !== -1 && (c & 1) === 1; c = next[c]!) {
        const i = (c - 1) >> 1;
        const o = ops[i]!;
        if (o.mutating || stepKnown(o, state) === null) continue;
        if (enter(i, state, true)) fresh = true;
        else backtrack = true; // explored before and failed: so does this configuration
        break;
      }
      if (fresh) continue;
      phase = 0;
      cursor = next[0]!;
      markEligible();
    }
    if (!backtrack) {
      if (phase === 0) {
        if (cursor !== -1 && (cursor & 1) === 1) {
          const i = (cursor - 1) >> 1;
          const o = ops[i]!;
          if (o.mutating && eligOp[kcls[i]!] === i) {
            const ns = stepKnown(o, state);
            if (ns !== null && enter(i, ns, false)) {
              fresh = true;
              continue;
            }
          }
          cursor = next[cursor]!;
          continue;
        }
        windowEnd = cursor;
        if (nClasses > 0) {
          // Candidates: per class, the first member not yet applied, if already invoked and
          // if it changes the state (an unknown op that changes nothing is as good as never
          // applied), tried in invocation order.
          const cands: number[] = [];
          const limit = windowEnd === -1 ? Infinity : pos[windowEnd]!;
          for (let c = 0; c < nClasses; c++) {
            const i = members[c]![applied[c]!];
            if (i !== undefined && pos[2 * i + 1]! < limit && stepUnknown(ops[i]!, state) !== state) cands.push(i);
          }
          cands.sort((a, b) => pos[2 * a + 1]! - pos[2 * b + 1]!);
          stCands[depth] = cands;
          stCandAt[depth] = 0;
          phase = 1;
          continue;
        }
      } else if (stCandAt[depth]! < stCands[depth]!.length) {
        const i = stCands[depth]![stCandAt[depth]!++]!;
        if (enter(i, stepUnknown(ops[i]!, state), false)) {
          fresh = true;
          continue;
        }
        continue;
      }
      // Dead end: the op returning at `windowEnd` cannot be linearized in this configuration.
      const placed = nKnown - knownLeft;
      if (placed > best && windowEnd !== -1) {
        best = placed;
        bestPrefix = Array.from(stOp.subarray(0, depth));
        bestState = state;
        bestBlocker = (windowEnd - 1) >> 1;
      }
    }
    // Backtrack: undo the last choice and try the next candidate; forced choices were the only
    // option of their configuration, so undo past them.
    for (;;) {
      if (depth === 0) return { kind: 'fail', prefix: bestPrefix, state: bestState, blocker: bestBlocker, knownPlaced: best };
      const forced = stForced[depth - 1] === 1;
      const i = undo();
      if (forced) continue;
      if (ops[i]!.known) {
        phase = 0;
        cursor = next[2 * i + 1]!;
        markEligible();
      } else {
        phase = 1;
        windowEnd = firstReturn();
      }
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Explanations

interface ZState {
  exists: boolean;
  value: string;
  version: number;
}

/** The reference model on strings: the next state and the answer the model gives. */
function applyModel(s: ZState, op: HistOp): { next: ZState; result: HistResult } {
  const match = (v: number): boolean => v === -1 || v === s.version;
  switch (op.kind) {
    case 'create':
      return s.exists ? { next: s, result: { ok: false, code: 'NODEEXISTS' } } : { next: { exists: true, value: op.value, version: 0 }, result: { ok: true } };
    case 'delete':
      if (!s.exists) return { next: s, result: { ok: false, code: 'NONODE' } };
      return match(op.version) ? { next: { exists: false, value: '', version: 0 }, result: { ok: true } } : { next: s, result: { ok: false, code: 'BADVERSION' } };
    case 'set':
      if (!s.exists) return { next: s, result: { ok: false, code: 'NONODE' } };
      if (!match(op.version)) return { next: s, result: { ok: false, code: 'BADVERSION' } };
      return { next: { exists: true, value: op.value, version: s.version + 1 }, result: { ok: true, version: s.version + 1 } };
    case 'read':
      return { next: s, result: s.exists ? { ok: true, value: s.value, version: s.version } : { ok: false, code: 'NONODE' } };
  }
}

/** State after an entry of a (valid) linearization: definite errors change nothing. */
function replay(s: ZState, e: HistEntry): ZState {
  if (e.result !== undefined && !e.result.ok) return s;
  return applyModel(s, e.op).next;
}

function showState(s: ZState): string {
  return s.exists ? `present with value ${JSON.stringify(s.value)} at version ${s.version}` : 'absent';
}

function showAnswer(r: HistResult): string {
  if (!r.ok) return r.code;
  let out = 'ok';
  if (r.value !== undefined) out += ` ${JSON.stringify(r.value)}`;
  if (r.version !== undefined) out += ` v${r.version}`;
  return out;
}

function byInvocation(a: HistEntry, b: HistEntry): number {
  return a.invokedAt - b.invokedAt || a.id - b.id;
}

function explainFailure(path: string, ops: COp[], f: Extract<SearchOutcome, { kind: 'fail' }>, budgetMs: number): { explanation: string; minimalHistory: HistEntry[] } {
  if (f.blocker < 0) {
    // Not expected (every failure passes a dead end); stay useful anyway.
    const all = ops.map((o) => o.entry).sort(byInvocation);
    return { explanation: `Operations on ${path} are not linearizable.\n${all.map((e) => `  ${describeEntry(e)}`).join('\n')}`, minimalHistory: all };
  }
  const P = f.prefix;
  const b = ops[f.blocker]!;
  const T = b.ret;
  const inPrefix = new Set(P);
  const pending: number[] = [];
  for (let i = 0; i < ops.length; i++) if (!inPrefix.has(i) && ops[i]!.call <= T) pending.push(i);

  // The window holds a suffix P[j..] of the placed ops plus everything pending at T; it starts
  // no later than the first placed op concurrent with the blocker.
  let firstConc = P.length;
  for (let x = 0; x < P.length; x++) {
    const o = ops[P[x]!]!;
    if (o.known && o.ret >= b.call) {
      firstConc = x;
      break;
    }
  }
  const startState = (j: number): ZState => {
    let s: ZState = { exists: false, value: '', version: 0 };
    for (let x = 0; x < j; x++) s = replay(s, ops[P[x]!]!.entry);
    return s;
  };
  const toState = (z: ZState): State => {
    if (!z.exists) return ABSENT;
    // Re-intern through an op that wrote the same string, if any; otherwise UNOBSERVED.
    for (const o of ops) {
      const op = o.entry.op;
      if ((op.kind === 'create' || op.kind === 'set') && op.value === z.value) return { ex: true, val: o.val, ver: z.version };
    }
    return { ex: true, val: UNOBSERVED, ver: z.version };
  };

  // Verify candidate windows, shortest first: does the window alone, from the state the placed
  // ops before it leave, fail too? Ops still pending at T other than the blocker are relaxed to
  // unknown outcome there (their results may depend on ops outside the window).
  const deadline = performance.now() + budgetMs;
  const verifies = (j: number): boolean | undefined => {
    const window: COp[] = [];
    for (let x = j; x < P.length; x++) window.push(ops[P[x]!]!);
    for (const i of pending) {
      const o = ops[i]!;
      if (i === f.blocker || !o.known) window.push(o);
      else if (o.kind !== READ) window.push({ ...o, known: false, mutating: false, ret: Infinity });
    }
    const verdict = search(window, toState(startState(j)), deadline);
    return verdict.kind === 'timeout' ? undefined : verdict.kind === 'fail';
  };
  let chosen = Math.max(0, Math.min(firstConc, P.length - 3));
  let verified = false;
  const tried = new Set<number>();
  for (const d of [0, 1, 2, 3, 5, 10, 20, Infinity]) {
    const j = Math.max(0, firstConc - d);
    if (tried.has(j)) continue;
    tried.add(j);
    const v = verifies(j);
    if (v === undefined) break;
    if (v) {
      chosen = j;
      verified = true;
      break;
    }
  }
  if (verified) {
    // For context, also show the placed op that produced the window's starting state, if the
    // window still has no linearization with it.
    let x = chosen - 1;
    while (x >= 0 && !(ops[P[x]!]!.mutating || !ops[P[x]!]!.known)) x--;
    if (x >= 0 && verifies(x) === true) chosen = x;
  }

  const windowEntries: HistEntry[] = [];
  for (let x = chosen; x < P.length; x++) windowEntries.push(ops[P[x]!]!.entry);
  for (const i of pending) windowEntries.push(ops[i]!.entry);
  windowEntries.sort(byInvocation);

  const before = startState(chosen);
  const after = startState(P.length);
  const wouldBe = applyModel(after, b.entry.op).result;
  const got = b.entry.result!;
  const nKnown = ops.filter((o) => o.known).length;
  const lines: string[] = [];
  lines.push(`Operations on ${path} are not linearizable (${nKnown} with a known outcome, ${ops.length - nKnown} with an unknown one).`);
  lines.push(
    `The longest linearizable prefix places ${f.knownPlaced} of the ${nKnown} operations with a known outcome; after it ${path} is ${showState(after)}.`,
  );
  const reason =
    stepKnown(b, f.state) !== null
      ? 'it fits that state, but no order of the operations concurrent with it leads any further'
      : `there the model would answer ${showAnswer(wouldBe)}, but it returned ${showAnswer(got)}, and no other order of the operations concurrent with it helps`;
  lines.push(`Next, ${describeEntry(b.entry)} must take effect before it returns at t=${T}, but cannot: ${reason}.`);
  lines.push(
    `Window (invocation order), starting from ${path} ${showState(before)}${chosen > 0 ? ` (after ${chosen} earlier operation${chosen === 1 ? '' : 's'})` : ' (its initial state)'}:`,
  );
  for (const e of windowEntries) lines.push(`  ${describeEntry(e)}${e === b.entry ? '   <-- cannot be linearized' : ''}`);
  lines.push(
    verified
      ? `This window alone has no linearization from that state${
          pending.some((i) => i !== f.blocker && ops[i]!.known)
            ? ` (even letting the other operations still pending at t=${T} take effect or not, with any result)`
            : ''
        }.`
      : 'This window alone can be linearized from that state; the contradiction also involves operations outside it — see the full history of the path.',
  );
  return { explanation: lines.join('\n'), minimalHistory: windowEntries };
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Checks that a history of znode operations is linearizable: that there is one sequential
 * order of the operations, consistent with the model described at the top of this module, in
 * which every operation takes effect at one instant between its invocation and its response.
 * Operations with an unknown outcome (`completedAt`/`result` undefined) may take effect at any
 * point after their invocation, or never, with whatever result the model gives.
 *
 * Each path is checked independently (smallest first); the first path without a linearization
 * is reported with an explanation and a short window of its operations around the point where
 * the search got stuck (building it may take up to what remains of the budget, at least
 * 100 ms and at most 2 s). Running out of `timeLimitMs` gives `{ ok: false, timeout: true,
 * explanation: 'timeout' }`, which is not a verdict.
 *
 * @throws TypeError for malformed entries (e.g. a result without `completedAt`, a `set`
 *   reported successful without its new version, an error code the operation cannot return).
 */
export function checkLinearizable(entries: HistEntry[], options: LinearizabilityOptions = {}): LinearizabilityResult {
  const limit = options.timeLimitMs ?? 10_000;
  const deadline = performance.now() + limit;
  const byPath = new Map<string, HistEntry[]>();
  for (const e of entries) {
    validate(e);
    let list = byPath.get(e.op.path);
    if (list === undefined) byPath.set(e.op.path, (list = []));
    list.push(e);
  }
  const paths = [...byPath.keys()].sort((a, b) => byPath.get(a)!.length - byPath.get(b)!.length || (a < b ? -1 : a > b ? 1 : 0));
  for (const path of paths) {
    const ops = compile(byPath.get(path)!);
    const verdict = search(ops, ABSENT, deadline);
    if (verdict.kind === 'ok') continue;
    if (verdict.kind === 'timeout') {
      return { ok: false, timeout: true, path, explanation: 'timeout', minimalHistory: [] };
    }
    // For the explanation, redo the search without the stranded-read pruning when affordable:
    // its longest prefix then stops at the op that really fails (e.g. the stale read rather
    // than the write that made it stale).
    const budget = Math.min(1000, Math.max(50, (deadline - performance.now()) / 2));
    const plain = search(ops, ABSENT, performance.now() + budget, false);
    const f = plain.kind === 'fail' ? plain : verdict;
    const { explanation, minimalHistory } = explainFailure(path, ops, f, budget);
    return { ok: false, timeout: false, path, explanation, minimalHistory };
  }
  return { ok: true };
}

interface Observation {
  entry: HistEntry;
  exists: boolean;
  value: string;
  version: number;
  /** Own write rather than a read. */
  own: boolean;
}

/**
 * Checks ZooKeeper's guarantees for plain (non-`sync`) reads, which need not be linearizable:
 * per client (session) and path,
 * - monotonic reads: a read never observes an older state of the path than an earlier read of
 *   the same client observed (one that completed before this one was invoked);
 * - read-your-writes: a read reflects the client's own writes completed before it was invoked.
 *
 * "Older" is judged by existence and version: within one incarnation of the node the version
 * must not go down (and equal versions must hold equal values); going from present to absent
 * needs a delete, and from absent to present (or to a lower version) a create — by any client,
 * successful or of unknown outcome — that could have taken effect between the two
 * observations. Plain reads may be stale, so after an earlier *read* any such write invoked
 * before the later read completed excuses it; after the client's own write, only one that could
 * take effect after that write. Without such an operation the read saw the past. The check is
 * sound (it never flags a history ZooKeeper's guarantees allow) but not complete.
 */
export function checkSequentialReads(entries: HistEntry[]): SequentialReadsResult {
  for (const e of entries) validate(e);
  const creates = new Map<string, HistEntry[]>();
  const deletes = new Map<string, HistEntry[]>();
  const obs = new Map<string, Observation[]>(); // key: client + path
  const keyOf = (client: number, path: string): string => `${client}\u0000${path}`;
  for (const e of entries) {
    const op = e.op;
    const r = e.result;
    if (op.kind === 'create' || op.kind === 'delete') {
      if (r === undefined || r.ok) {
        const m = op.kind === 'create' ? creates : deletes;
        let l = m.get(op.path);
        if (l === undefined) m.set(op.path, (l = []));
        l.push(e);
      }
    }
    if (r === undefined) continue;
    let o: Observation | undefined;
    if (op.kind === 'read') {
      o = r.ok ? { entry: e, exists: true, value: r.value!, version: r.version!, own: false } : { entry: e, exists: false, value: '', version: 0, own: false };
    } else if (r.ok) {
      if (op.kind === 'create') o = { entry: e, exists: true, value: op.value, version: 0, own: true };
      else if (op.kind === 'set') o = { entry: e, exists: true, value: op.value, version: r.version!, own: true };
      else o = { entry: e, exists: false, value: '', version: 0, own: true };
    }
    if (o === undefined) continue;
    const k = keyOf(e.client, op.path);
    let l = obs.get(k);
    if (l === undefined) obs.set(k, (l = []));
    l.push(o);
  }
  const possibleBetween = (list: HistEntry[] | undefined, p: HistEntry, pOwn: boolean, q: HistEntry): boolean => {
    if (list === undefined) return false;
    for (const w of list) {
      if (w === p || w === q) continue;
      // The write must take effect before q's observation (≤ q.completedAt). A read may have
      // observed a stale state, so after p only if p is the client's own write (its real point).
      // Timestamps are coarse (ms; virtual time runs many steps in one): equal ones do not order
      // two operations, so a write whose interval only touches q's or p's may fall on either side.
      if (w.invokedAt <= q.completedAt! && (!pOwn || (w.completedAt ?? Infinity) >= p.invokedAt)) return true;
    }
    return false;
  };
  let worst: { path: string; client: number; p: Observation; q: Observation; why: string } | undefined;
  for (const list of obs.values()) {
    const sorted = [...list].sort((a, b) => a.entry.completedAt! - b.entry.completedAt! || a.entry.id - b.entry.id);
    for (const q of sorted) {
      if (q.own) continue;
      if (worst !== undefined && q.entry.invokedAt >= worst.q.entry.invokedAt) continue;
      const path = q.entry.op.path;
      for (const p of sorted) {
        if (!(p.entry.completedAt! < q.entry.invokedAt)) break;
        let why: string | undefined;
        if (p.exists && q.exists) {
          if (q.version < p.version || (q.version === p.version && q.value !== p.value)) {
            if (!(possibleBetween(deletes.get(path), p.entry, p.own, q.entry) && possibleBetween(creates.get(path), p.entry, p.own, q.entry))) {
              why = q.version < p.version ? 'the version went backwards' : 'the same version holds a different value';
            }
          }
        } else if (p.exists && !q.exists) {
          if (!possibleBetween(deletes.get(path), p.entry, p.own, q.entry)) why = 'the node vanished though no delete could have taken effect in between';
        } else if (!p.exists && q.exists) {
          if (!possibleBetween(creates.get(path), p.entry, p.own, q.entry)) why = 'the node reappeared though no create could have taken effect in between';
        }
        if (why !== undefined) {
          worst = { path, client: q.entry.client, p, q, why };
          break;
        }
      }
    }
  }
  if (worst === undefined) return { ok: true };
  const { path, client, p, q, why } = worst;
  const rule = p.own ? 'read-your-writes' : 'monotonic reads';
  const seen = p.exists ? `present at version ${p.version} (${JSON.stringify(p.value)})` : 'absent';
  const explanation =
    `${rule} violated for client ${client} on ${path}: ` +
    `${p.own ? 'its own write' : 'an earlier read'} ${describeEntry(p.entry)} left/showed ${path} ${seen}, ` +
    `then ${describeEntry(q.entry)}, invoked after that completed, saw an older state: ${why}.`;
  return { ok: false, path, client, explanation, entries: [p.entry, q.entry] };
}
