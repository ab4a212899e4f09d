/**
 * The leader's session expiry tracker (ZooKeeper's SessionTrackerImpl). Expiry is decided here,
 * by the leader, and carried out as a replicated closeSession txn. Time is passed in.
 */
export class SessionTracker {
  private readonly sessions = new Map<bigint, { timeoutMs: number; expiresAt: number; closing: boolean }>();

  /** Starts tracking (or resets) a session; a fresh leader gives every session a full timeout. */
  add(sid: bigint, timeoutMs: number, now: number): void {
    this.sessions.set(sid, { timeoutMs, expiresAt: now + timeoutMs, closing: false });
  }

  remove(sid: bigint): void {
    this.sessions.delete(sid);
  }

  /** The session showed life (request or heartbeat); false when it is unknown or closing. */
  touch(sid: bigint, now: number): boolean {
    const s = this.sessions.get(sid);
    if (!s || s.closing) return false;
    const at = now + s.timeoutMs;
    if (at > s.expiresAt) s.expiresAt = at;
    return true;
  }

  /** Sessions past their deadline, each reported once (marked closing). */
  expired(now: number): bigint[] {
    const out: bigint[] = [];
    for (const [sid, s] of this.sessions) {
      if (!s.closing && s.expiresAt <= now) {
        s.closing = true;
        out.push(sid);
      }
    }
    return out;
  }

  /** Marks a session as closing (a close request is on its way). */
  setClosing(sid: bigint): void {
    const s = this.sessions.get(sid);
    if (s) s.closing = true;
  }

  clear(): void {
    this.sessions.clear();
  }

  get size(): number {
    return this.sessions.size;
  }

  has(sid: bigint): boolean {
    return this.sessions.has(sid);
  }
}
