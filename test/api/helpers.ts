/** Shared fixtures for tests that go through startMember + sessions, as users do. */
import assert from 'node:assert/strict';
import { KeeperError, startMember, type Member, type MemberConfig, type WatchEvent } from '../../src/index.js';

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/**
 * A fresh single-member in-memory ensemble per test (stopped afterwards).
 * `config` is merged into `{ id: 1 }`.
 */
export function singleMember(config: Partial<MemberConfig> = {}): { readonly member: Member } {
  const ctx = { member: undefined as unknown as Member };
  beforeEach(async () => {
    ctx.member = await startMember({ id: 1, ...config });
  });
  afterEach(async () => {
    await ctx.member.stop();
  });
  return ctx;
}

/** A watcher that records the events it receives. */
export function recorder(): ((ev: WatchEvent) => void) & { events: WatchEvent[]; list: () => string[] } {
  const events: WatchEvent[] = [];
  const fn = ((ev: WatchEvent) => {
    events.push(ev);
  }) as ((ev: WatchEvent) => void) & { events: WatchEvent[]; list: () => string[] };
  fn.events = events;
  fn.list = () => events.map((e) => `${e.type} ${e.path}`);
  return fn;
}

/** Asserts that `p` rejects with a KeeperError of `code` (and `path`, when given); returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: string, path?: string): Promise<KeeperError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof KeeperError, `expected KeeperError ${code}, got ${err === undefined ? 'success' : String(err)}`);
  assert.equal(err.code, code, err.message);
  if (path !== undefined) assert.equal(err.path, path);
  return err;
}

/** Lets queued microtasks and immediate callbacks run (watch delivery is synchronous with apply). */
export function settle(ms = 0): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
