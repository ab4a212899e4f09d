/**
 * Recorded client histories of znode operations, the input of the linearizability checker
 * (`linearizability.ts`). A history is a list of {@link HistEntry}: one per operation a client
 * issued, with the (virtual) time it was invoked, the time its response arrived and the
 * response itself — or no response at all when the outcome is unknown (the client crashed, the
 * connection was lost, the run ended while it was in flight).
 *
 * Operations are single-path and carry only what the checker's model needs: data, versions and
 * existence. Sequential creates must be recorded under the path the server actually created;
 * a sequential create whose outcome is unknown cannot be recorded meaningfully and should be
 * left out.
 */

/** One operation on one path. `version: -1` means "any version" (unconditional). */
export type HistOp =
  /** Create `path` holding `value`. Result: ok, `NODEEXISTS`, or `NONODE` (the parent is missing). */
  | { kind: 'create'; path: string; value: string }
  /** Delete `path` if its version matches. Result: ok, `NONODE`, `BADVERSION` or `NOTEMPTY`. */
  | { kind: 'delete'; path: string; version: number }
  /** Replace the data of `path` if its version matches. Result: ok with the new version, `NONODE` or `BADVERSION`. */
  | { kind: 'set'; path: string; value: string; version: number }
  /** Read `path`. Result: ok with its value and version, or `NONODE`. */
  | { kind: 'read'; path: string };

/** Error codes an operation of a history may definitely fail with. */
export type HistErrorCode = 'NODEEXISTS' | 'NONODE' | 'BADVERSION' | 'NOTEMPTY';

/**
 * The response to an operation. Successful responses carry:
 * - `create`, `delete`: nothing;
 * - `set`: `version`, the node's new data version;
 * - `read`: `value` and `version`.
 */
export type HistResult =
  | { ok: true; value?: string; version?: number }
  | { ok: false; code: HistErrorCode };

/** One recorded operation. */
export interface HistEntry {
  /** Unique id, in invocation order when produced by {@link HistoryRecorder}. */
  id: number;
  /** The client (session) that issued the operation. */
  client: number;
  op: HistOp;
  /** Time of invocation, on any monotone clock (virtual milliseconds in simulation). */
  invokedAt: number;
  /** Time the response arrived; `undefined` when the outcome is unknown. */
  completedAt: number | undefined;
  /** The response; `undefined` exactly when `completedAt` is (outcome unknown). */
  result: HistResult | undefined;
  /** When the client gave up waiting (see {@link HistoryRecorder.fail}); informational only. */
  failedAt?: number;
}

/**
 * Records a history as a simulation runs: call {@link invoke} when a client issues an
 * operation, then exactly one of {@link complete} (a definite response, success or error) or
 * {@link fail} (no response, e.g. CONNECTIONLOSS or a crash: the operation may or may not have
 * taken effect). Operations still in flight when {@link entries} is called count as unknown.
 */
export class HistoryRecorder {
  private readonly list: HistEntry[] = [];
  private readonly open = new Set<number>();
  private lastNow = -Infinity;

  /**
   * Records the invocation of `op` by `client` at time `now`.
   * @returns the id to pass to {@link complete} or {@link fail}.
   */
  invoke(client: number, op: HistOp, now: number): number {
    this.tick(now);
    const id = this.list.length;
    this.list.push({ id, client, op: { ...op }, invokedAt: now, completedAt: undefined, result: undefined });
    this.open.add(id);
    return id;
  }

  /** Records the definite response `result` to operation `id`, received at `now`. */
  complete(id: number, result: HistResult, now: number): void {
    const e = this.take(id, now);
    e.completedAt = now;
    e.result = { ...result };
  }

  /** Records that operation `id` got no response (its outcome is unknown); the client gave up at `now`. */
  fail(id: number, now: number): void {
    const e = this.take(id, now);
    e.failedAt = now;
  }

  /** The history so far, in invocation order (copies; the recorder keeps recording). */
  entries(): HistEntry[] {
    return this.list.map((e) => ({ ...e, op: { ...e.op }, result: e.result === undefined ? undefined : { ...e.result } }));
  }

  private tick(now: number): void {
    if (!Number.isFinite(now)) throw new RangeError(`HistoryRecorder: time must be a finite number, got ${now}`);
    if (now < this.lastNow) throw new RangeError(`HistoryRecorder: time went backwards (${now} < ${this.lastNow})`);
    this.lastNow = now;
  }

  private take(id: number, now: number): HistEntry {
    const e = this.list[id];
    if (e === undefined) throw new RangeError(`HistoryRecorder: unknown operation id ${id}`);
    if (!this.open.has(id)) throw new Error(`HistoryRecorder: operation ${id} was already completed or failed`);
    this.tick(now);
    this.open.delete(id);
    return e;
  }
}

/** Short human-readable rendering of a value (quoted, truncated). */
function showValue(v: string): string {
  const s = JSON.stringify(v);
  return s.length > 42 ? `${s.slice(0, 39)}…"` : s;
}

/** Renders an operation, e.g. `set /a "x" (version -1)`. */
export function describeOp(op: HistOp): string {
  switch (op.kind) {
    case 'create': return `create ${op.path} ${showValue(op.value)}`;
    case 'delete': return `delete ${op.path} (version ${op.version})`;
    case 'set': return `set ${op.path} ${showValue(op.value)} (version ${op.version})`;
    case 'read': return `read ${op.path}`;
  }
}

/** Renders a response, e.g. `ok "x" v3`, `NODEEXISTS`, or `?` for an unknown outcome. */
export function describeResult(r: HistResult | undefined): string {
  if (r === undefined) return '? (outcome unknown)';
  if (!r.ok) return r.code;
  let s = 'ok';
  if (r.value !== undefined) s += ` ${showValue(r.value)}`;
  if (r.version !== undefined) s += ` v${r.version}`;
  return s;
}

/** Renders a whole entry on one line: `#12 c3 [100, 140] set /a "x" (version -1) → ok v2`. */
export function describeEntry(e: HistEntry): string {
  const end = e.completedAt === undefined ? '?' : String(e.completedAt);
  return `#${e.id} c${e.client} [${e.invokedAt}, ${end}] ${describeOp(e.op)} → ${describeResult(e.result)}`;
}
