import assert from 'node:assert/strict';
import type { Logger } from '../../src/api/log.js';
import type { Session } from '../../src/api/session.js';
import { KeeperError } from '../../src/core/errors.js';
import { SimCluster, type SimClusterOptions } from '../../src/testing/cluster.js';

/** A logger that keeps every line (scenario tests look for what the members reported). */
export function captureLogger(lines: string[]): Logger {
  const make = (bindings: Record<string, unknown>): Logger => {
    const put = (level: string) => (obj: Record<string, unknown>, msg: string): void => {
      lines.push(`${level} ${JSON.stringify({ ...bindings, ...obj }, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))} ${msg}`);
    };
    return { debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error'), child: (b) => make({ ...bindings, ...b }) };
  };
  return make({});
}

export function newCluster(options: SimClusterOptions & { lines?: string[] } = {}): SimCluster {
  const lines = options.lines ?? [];
  return new SimCluster({ logger: captureLogger(lines), ...options });
}

/** Outcome of a write whose reply may never come (the member it went through crashed). */
export type Outcome = 'ok' | 'unknown' | { code: string };

/** Starts an operation and records its outcome without blocking virtual time. */
export function track(p: Promise<unknown>): { outcome: () => Outcome; done: () => boolean } {
  let out: Outcome | undefined;
  void p.then(() => {
    out = 'ok';
  }, (e: unknown) => {
    out = e instanceof KeeperError && e.code !== 'CONNECTIONLOSS' && e.code !== 'SESSIONEXPIRED' ? { code: e.code } : 'unknown';
  });
  return { outcome: () => out ?? 'unknown', done: () => out !== undefined };
}

/** Reads `path` on every live member (local tree), as a map member id → value or null. */
export function valuesEverywhere(c: SimCluster, path: string): Map<number, string | null> {
  const out = new Map<number, string | null>();
  for (const id of c.live()) {
    const n = c.member(id).tree.get(path);
    out.set(id, n ? new TextDecoder().decode(n.data) : null);
  }
  return out;
}

/** Asserts the cluster converged, replicas are identical, and no invariant was violated. */
export async function assertHealthy(c: SimCluster, maxMs = 10_000): Promise<void> {
  const ok = await c.converge(maxMs);
  assert.ok(ok, `did not converge: ${c.describe()}\n${c.events.slice(-30).join('\n')}`);
  c.checkReplicas();
  assert.deepEqual(c.violations, [], c.events.slice(-40).join('\n'));
}

export async function createOn(c: SimCluster, s: Session, path: string, data = ''): Promise<string> {
  return c.settle(s.create(path, data));
}
