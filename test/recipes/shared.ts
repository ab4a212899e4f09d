import assert from 'node:assert/strict';
import { Queue, jsonCodec, type TakenItem, type TreeCache } from '../../src/api/recipes/index.js';
import type { Session } from '../../src/api/session.js';

/* Scenario helpers shared by the single-member and the ensemble recipe tests. */

export const text = (d: Uint8Array | undefined): string | undefined => (d === undefined ? undefined : new TextDecoder().decode(d));

/** A fresh read of the subtree: path → "data|czxid|mzxid". */
export async function snapshotTree(s: Session, root: string, maxDepth = Infinity): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (p: string, depth: number): Promise<void> => {
    let r;
    try {
      r = await s.getData(p);
    } catch {
      return;
    }
    out.set(p, `${text(r.data)}|${r.stat.czxid}|${r.stat.mzxid}`);
    if (depth >= maxDepth) return;
    let kids: string[] = [];
    try {
      kids = await s.getChildren(p);
    } catch {
      return;
    }
    for (const k of kids) await walk(p === '/' ? `/${k}` : `${p}/${k}`, depth + 1);
  };
  await walk(root, 0);
  return out;
}

export function cacheSnapshot(cache: TreeCache): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of cache.paths()) {
    const d = cache.getCurrentData(p)!;
    out.set(p, `${text(d.data)}|${d.stat.czxid}|${d.stat.mzxid}`);
  }
  return out;
}

/** Random creates, updates and deletes (leaves first) under `root` by several sessions at once. */
export async function randomChanges(writers: Session[], root: string, opsPerWriter: number, seed: number): Promise<void> {
  let x = seed;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  const names = ['a', 'b', 'c', 'd'];
  await Promise.all(writers.map(async (s, w) => {
    for (let i = 0; i < opsPerWriter; i++) {
      const depth = 1 + rnd(3);
      let p = root;
      for (let d = 0; d < depth; d++) p += '/' + names[rnd(names.length)];
      const op = rnd(10);
      try {
        if (op < 4) await s.create(p, `w${w}-${i}`, { parents: true });
        else if (op < 7) await s.setData(p, `w${w}-${i}`);
        else await s.delete(p);
      } catch {
        // NODEEXISTS / NONODE / NOTEMPTY: the tree moved under us, as intended
      }
    }
  }));
}


type Item = { p: number; i: number };

/**
 * Producers put `perProducer` items each; consumers take until all are consumed. Checks:
 * every item exactly once; each consumer sees each producer's items in order; and consumptions
 * ordered by their zxid follow the queue order (global FIFO).
 */
export async function moveItems(producers: Session[], consumers: Session[], path: string, perProducer: number): Promise<{ taken: TakenItem<Item>[][] }> {
  const total = producers.length * perProducer;
  const taken: TakenItem<Item>[][] = consumers.map(() => []);
  let count = 0;
  const putting = Promise.all(producers.map(async (s, p) => {
    const q = new Queue<Item>(s, path, { codec: jsonCodec<Item>() });
    for (let i = 0; i < perProducer; i++) await q.put({ p, i });
  }));
  const queues = consumers.map((s) => new Queue<Item>(s, path, { codec: jsonCodec<Item>() }));
  const consuming = Promise.all(queues.map(async (q, c) => {
    while (count < total) {
      const item = await q.takeItem({ timeoutMs: 100 });
      if (!item) continue;
      count++;
      taken[c]!.push(item);
    }
  }));
  await putting;
  await consuming;
  await Promise.all(queues.map((q) => q.close()));
  const seen = new Map<string, number>();
  for (const list of taken) for (const t of list) seen.set(`${t.value.p}:${t.value.i}`, (seen.get(`${t.value.p}:${t.value.i}`) ?? 0) + 1);
  assert.equal(seen.size, total, 'every item consumed');
  for (const [k, n] of seen) assert.equal(n, 1, `item ${k} consumed ${n} times`);
  for (const list of taken) {
    const last = new Map<number, number>();
    for (const t of list) {
      assert.ok((last.get(t.value.p) ?? -1) < t.value.i, `consumer saw producer ${t.value.p} out of order`);
      last.set(t.value.p, t.value.i);
    }
  }
  const all = taken.flat().sort((a, b) => (a.zxid < b.zxid ? -1 : a.zxid > b.zxid ? 1 : 0));
  for (let k = 1; k < all.length; k++) assert.ok(all[k]!.sequence > all[k - 1]!.sequence, 'consumptions in zxid order follow queue order');
  const perProd = new Map<number, number>();
  for (const t of all) {
    assert.ok((perProd.get(t.value.p) ?? -1) < t.value.i, 'FIFO per producer');
    perProd.set(t.value.p, t.value.i);
  }
  return { taken };
}

