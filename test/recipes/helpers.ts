import assert from 'node:assert/strict';
import { KeeperError } from '../../src/core/errors.js';
import { startMember, type Member } from '../../src/api/member.js';
import type { Session } from '../../src/api/session.js';
import type { SessionBackend } from '../../src/api/session.js';
import type { SessionOptions } from '../../src/api/types.js';

/** A single-member ensemble and the sessions opened on it; `stop()` closes everything. */
export interface Single {
  member: Member;
  sessions: Session[];
  session(options?: SessionOptions): Promise<Session>;
  stop(): Promise<void>;
}

export async function single(options: { maxSessionsPerOrigin?: number } = {}): Promise<Single> {
  const member = await startMember({ id: 1, tickMs: 50, maxSessionsPerOrigin: options.maxSessionsPerOrigin ?? 200, logLevel: 'error' });
  const sessions: Session[] = [];
  return {
    member,
    sessions,
    async session(o?: SessionOptions) {
      const s = await member.session(o);
      sessions.push(s);
      return s;
    },
    async stop() {
      await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
      await member.stop();
    },
  };
}

export async function sessionsOf(env: Single, n: number, options?: SessionOptions): Promise<Session[]> {
  const out: Session[] = [];
  for (let i = 0; i < n; i++) out.push(await env.session(options));
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 5 ms until true; fails after `timeoutMs` with `what`. */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(5);
  }
}

/**
 * Counts the watch notifications the serving member delivers to a session (a spy on the real
 * delivery path; the events are still delivered).
 */
export function countNotifications(session: Session): { count: number; events: string[] } {
  const counter = { count: 0, events: [] as string[] };
  const s = session as unknown as { _notify(type: string, path: string): void };
  const original = s._notify.bind(session);
  s._notify = (type: string, path: string) => {
    counter.count++;
    counter.events.push(`${type} ${path}`);
    original(type, path);
  };
  return counter;
}

/**
 * Fault injection on a real session: the next write of the matching kind is either lost on the
 * way to the member (`before`: never applied) or its response is lost (`after`: applied, reply
 * dropped); the caller sees CONNECTIONLOSS either way, as it would on a dropped connection.
 */
export function loseNextWrite(session: Session, when: 'before' | 'after', match: (op: { type: string; path?: string }) => boolean = () => true): { fired: boolean } {
  const state = { fired: false };
  const s = session as unknown as { backend: SessionBackend };
  const backend = s.backend;
  const original = backend.write.bind(backend);
  const wrapped: SessionBackend = Object.create(backend) as SessionBackend;
  wrapped.write = async (sid, op) => {
    if (state.fired || !match(op as { type: string; path?: string })) return original(sid, op);
    state.fired = true;
    if (when === 'after') await original(sid, op);
    throw new KeeperError('CONNECTIONLOSS', undefined, 'injected: response lost');
  };
  (s as { backend: SessionBackend }).backend = wrapped;
  return state;
}

export function isKeeper(code: string) {
  return (e: unknown): boolean => e instanceof KeeperError && e.code === code;
}
