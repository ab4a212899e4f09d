import { parentOf, ROOT } from './path.js';

/** Watch event types delivered to sessions (never the data itself). */
export type WatchEventType = 'NodeCreated' | 'NodeDeleted' | 'NodeDataChanged' | 'NodeChildrenChanged';

/** A fired watch as a session sees it. */
export interface WatchEvent {
  type: WatchEventType;
  path: string;
}

/** A notification for one session, produced by applying a txn. */
export interface Notification {
  sessionId: bigint;
  type: WatchEventType;
  path: string;
  /** zxid of the txn that caused it. */
  zxid: bigint;
}

/** What kind of registration a session holds on a path (server side). */
export type WatchKind = 'data' | 'child' | 'persistent' | 'recursive';

type PathIndex = Map<string, Set<bigint>>;

function add(index: PathIndex, path: string, sid: bigint): boolean {
  let set = index.get(path);
  if (set === undefined) {
    set = new Set();
    index.set(path, set);
  }
  const before = set.size;
  set.add(sid);
  return set.size !== before;
}

function remove(index: PathIndex, path: string, sid: bigint): boolean {
  const set = index.get(path);
  if (set === undefined || !set.delete(sid)) return false;
  if (set.size === 0) index.delete(path);
  return true;
}

/**
 * Server-side watch registry of one member: path → set of session ids, per kind, and the
 * reverse index for cleanup. No data is copied; a watch is one Set entry. Implements
 * ZooKeeper's trigger table (DataTree + WatchManager), including persistent and
 * persistent-recursive watches (3.6+).
 */
export class WatchManager {
  private readonly data: PathIndex = new Map();
  private readonly child: PathIndex = new Map();
  private readonly persistent: PathIndex = new Map();
  private readonly recursive: PathIndex = new Map();
  private readonly bySession = new Map<bigint, Map<string, Set<WatchKind>>>();
  private count = 0;

  private index(kind: WatchKind): PathIndex {
    switch (kind) {
      case 'data': return this.data;
      case 'child': return this.child;
      case 'persistent': return this.persistent;
      case 'recursive': return this.recursive;
    }
  }

  /** Registers a watch; idempotent per (kind, path, session). */
  add(kind: WatchKind, path: string, sid: bigint): void {
    if (!add(this.index(kind), path, sid)) return;
    this.count++;
    let paths = this.bySession.get(sid);
    if (paths === undefined) {
      paths = new Map();
      this.bySession.set(sid, paths);
    }
    let kinds = paths.get(path);
    if (kinds === undefined) {
      kinds = new Set();
      paths.set(path, kinds);
    }
    kinds.add(kind);
  }

  /** Removes one registration; true when it existed. */
  remove(kind: WatchKind, path: string, sid: bigint): boolean {
    if (!remove(this.index(kind), path, sid)) return false;
    this.count--;
    this.forget(sid, path, kind);
    return true;
  }

  /** True when the session holds a registration of this kind on the path. */
  has(kind: WatchKind, path: string, sid: bigint): boolean {
    return this.index(kind).get(path)?.has(sid) ?? false;
  }

  private forget(sid: bigint, path: string, kind: WatchKind): void {
    const paths = this.bySession.get(sid);
    const kinds = paths?.get(path);
    if (!paths || !kinds) return;
    kinds.delete(kind);
    if (kinds.size === 0) paths.delete(path);
    if (paths.size === 0) this.bySession.delete(sid);
  }

  /** Drops every watch of a session (closed, expired or moved away). */
  removeSession(sid: bigint): void {
    const paths = this.bySession.get(sid);
    if (!paths) return;
    for (const [path, kinds] of paths) {
      for (const kind of kinds) {
        if (remove(this.index(kind), path, sid)) this.count--;
      }
    }
    this.bySession.delete(sid);
  }

  /** The trigger for a change of `type` at `path`, appending one notification per session. */
  trigger(type: WatchEventType, path: string, zxid: bigint, out: Notification[]): void {
    if (this.count === 0) return;
    const fired = new Set<bigint>();
    const fire = (sid: bigint): void => {
      if (fired.has(sid)) return;
      fired.add(sid);
      out.push({ sessionId: sid, type, path, zxid });
    };
    if (type === 'NodeChildrenChanged') {
      takeAll(this, this.child, path, 'child', fire);
    } else {
      takeAll(this, this.data, path, 'data', fire);
      // A deleted node also fires the child watches set on it (ZooKeeper: childWatches.triggerWatch(path, NodeDeleted)).
      if (type === 'NodeDeleted') takeAll(this, this.child, path, 'child', fire);
    }
    const p = this.persistent.get(path);
    if (p) for (const sid of p) fire(sid);
    // Recursive watches see NodeCreated/Deleted/DataChanged at and below their path, never NodeChildrenChanged.
    if (type !== 'NodeChildrenChanged' && this.recursive.size > 0) {
      let cur = path;
      for (;;) {
        const r = this.recursive.get(cur);
        if (r) for (const sid of r) fire(sid);
        if (cur === ROOT) break;
        cur = parentOf(cur);
      }
    }
  }

  /** Total registrations (all kinds). */
  get size(): number {
    return this.count;
  }

  /** Number of distinct watched paths. */
  get pathCount(): number {
    const all = new Set<string>();
    for (const idx of [this.data, this.child, this.persistent, this.recursive]) for (const p of idx.keys()) all.add(p);
    return all.size;
  }

  /** Number of sessions holding any watch. */
  get sessionCount(): number {
    return this.bySession.size;
  }

  /** session → watched paths (for `wchc`). */
  bySessionReport(): Map<bigint, string[]> {
    const out = new Map<bigint, string[]>();
    for (const [sid, paths] of this.bySession) out.set(sid, [...paths.keys()].sort());
    return out;
  }

  /** path → sessions (for `wchp`). */
  byPathReport(): Map<string, bigint[]> {
    const out = new Map<string, bigint[]>();
    for (const idx of [this.data, this.child, this.persistent, this.recursive]) {
      for (const [path, sids] of idx) {
        const list = out.get(path) ?? [];
        for (const s of sids) if (!list.includes(s)) list.push(s);
        out.set(path, list);
      }
    }
    return new Map([...out].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }

  /** Paths a session watches, by kind (used to re-register after a session moves). */
  sessionWatches(sid: bigint): { kind: WatchKind; path: string }[] {
    const out: { kind: WatchKind; path: string }[] = [];
    const paths = this.bySession.get(sid);
    if (paths) for (const [path, kinds] of paths) for (const kind of kinds) out.push({ kind, path });
    return out;
  }
}

function takeAll(
  wm: WatchManager,
  index: PathIndex,
  path: string,
  kind: 'data' | 'child',
  fire: (sid: bigint) => void,
): void {
  const set = index.get(path);
  if (!set) return;
  // One-time watches are removed as they fire.
  for (const sid of [...set]) {
    wm.remove(kind, path, sid);
    fire(sid);
  }
}
