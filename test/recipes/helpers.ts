import assert from 'node:assert/strict';
import { KeeperError } from '../../src/core/errors.js';
import { startMember, type Member } from '../../src/api/member.js';
import type { Session } from '../../src/api/session.js';
import type { SessionBackend } from '../../src/api/session.js';
import type { SessionOptions } from '../../src/api/types.js';
import { memoryNetwork, type MemoryNetwork } from '../../src/transport/memory.js';

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

/** A 3-member (by default) ensemble on a memoryNetwork, with sessions spread over its members. */
export interface Ensemble {
  net: MemoryNetwork;
  members: Map<number, Member>;
  ids: number[];
  sessions: Session[];
  /** The member that currently leads (fails if none does). */
  leader(): Member;
  /** Members that currently follow. */
  followers(): Member[];
  session(memberId: number, options?: SessionOptions): Promise<Session>;
  /** Stops a member without closing its sessions (a crash, as the others see it). */
  crash(id: number): Promise<void>;
  /** Waits until `n` members serve with one leader among them. */
  settled(n?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function ensemble(options: { size?: number; tickMs?: number; syncLimit?: number } = {}): Promise<Ensemble> {
  const size = options.size ?? 3;
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const net = memoryNetwork();
  const spec: Record<number, string> = {};
  for (const id of ids) spec[id] = `m${id}`;
  const members = new Map<number, Member>();
  const started = await Promise.all(ids.map((id) => startMember({
    id, ensemble: spec, transport: net.transport(id), tickMs: options.tickMs ?? 50, syncLimit: options.syncLimit ?? 10,
    maxSessionsPerOrigin: 200, logLevel: 'error',
  })));
  for (const m of started) members.set(m.id, m);
  const sessions: Session[] = [];
  const live = (): Member[] => [...members.values()].filter((m) => !m.stopped);
  const env: Ensemble = {
    net, members, ids, sessions,
    leader() {
      const l = live().find((m) => m.state === 'leading' && m.serving);
      assert.ok(l, `no serving leader (states: ${live().map((m) => `${m.id}:${m.state}`).join(' ')})`);
      return l;
    },
    followers() {
      return live().filter((m) => m.state === 'following');
    },
    async session(memberId, o) {
      const m = members.get(memberId);
      assert.ok(m, `no member ${memberId}`);
      const s = await m.session(o);
      sessions.push(s);
      return s;
    },
    async crash(id) {
      await members.get(id)!.halt();
    },
    async settled(n = size, timeoutMs = 10_000) {
      await eventually(() => {
        const l = live();
        return l.filter((m) => m.serving).length >= n && l.filter((m) => m.state === 'leading' && m.serving).length === 1;
      }, `${n} members serving with one leader`, timeoutMs);
    },
    async stop() {
      net.heal();
      await Promise.all(sessions.map((s) => Promise.race([s.close().catch(() => undefined), sleep(1000)])));
      await Promise.all([...members.values()].map((m) => m.stop().catch(() => undefined)));
    },
  };
  await Promise.all(started.map((m) => m.ready(10_000)));
  await env.settled();
  return env;
}
