import assert from 'node:assert/strict';
import { DelayQueue, PriorityQueue, Queue, stringCodec } from '../../src/api/recipes/index.js';
import { loseNextWrite, sessionsOf, single, sleep, type Single } from './helpers.js';
import { moveItems } from './shared.js';

describe('recipes/Queue', function () {
  this.timeout(60_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('is FIFO for one producer and one consumer', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const q = new Queue<string>(a!, '/q/fifo', { codec: stringCodec });
    for (let i = 0; i < 20; i++) await q.put(`item-${i}`);
    assert.equal(await q.size(), 20);
    assert.equal(await q.peek(), 'item-0');
    const c = new Queue<string>(b!, '/q/fifo', { codec: stringCodec });
    const got: string[] = [];
    for (let i = 0; i < 20; i++) got.push((await c.take())!);
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `item-${i}`));
    assert.equal(await c.poll(), null);
    assert.equal(await q.size(), 0);
  });

  it('moves 2000 items from 4 producers to 4 consumers exactly once, FIFO', async () => {
    const sessions = await sessionsOf(env, 8);
    const { taken } = await moveItems(sessions.slice(0, 4), sessions.slice(4), '/q/many', 500);
    assert.ok(taken.filter((l) => l.length > 0).length >= 2, 'the work was shared');
  });

  it('take() waits for an item, times out with null, and rejects on abort', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const c = new Queue<string>(b!, '/q/wait', { codec: stringCodec });
    const t0 = Date.now();
    assert.equal(await c.take({ timeoutMs: 100 }), null);
    assert.ok(Date.now() - t0 >= 95);
    const p = c.take({ timeoutMs: 5000 });
    await sleep(30);
    await new Queue<string>(a!, '/q/wait', { codec: stringCodec }).put('late');
    assert.equal(await p, 'late');
    const ac = new AbortController();
    const p2 = c.take({ signal: ac.signal });
    ac.abort(new Error('bye'));
    await assert.rejects(p2, /bye/);
  });

  it('a consumption whose response is lost is still decided exactly (the receipt), not lost or duplicated', async () => {
    const [a, b, c] = await sessionsOf(env, 3);
    const q = new Queue<string>(a!, '/q/lost', { codec: stringCodec });
    for (let i = 0; i < 4; i++) await q.put(`v${i}`);
    const consumer = new Queue<string>(b!, '/q/lost', { codec: stringCodec });
    const other = new Queue<string>(c!, '/q/lost', { codec: stringCodec });
    const lostAfter = loseNextWrite(b!, 'after', (op) => op.type === 'multi');
    assert.equal(await consumer.take(), 'v0', 'applied but reply lost: still ours');
    assert.ok(lostAfter.fired);
    const lostBefore = loseNextWrite(b!, 'before', (op) => op.type === 'multi');
    assert.equal(await consumer.take(), 'v1', 'never applied: retried');
    assert.ok(lostBefore.fired);
    assert.equal(await other.take(), 'v2');
    assert.equal(await consumer.take(), 'v3');
    assert.equal(await q.size(), 0);
  });

  it("a producer's lost create response does not add the item twice", async () => {
    const [a, b] = await sessionsOf(env, 2);
    const lost = loseNextWrite(a!, 'after', (op) => op.type === 'create' && (op.path ?? '').startsWith('/q/prod/'));
    await new Queue<string>(b!, '/q/prod', { codec: stringCodec }).put('first');
    await new Queue<string>(a!, '/q/prod', { codec: stringCodec }).put('once');
    assert.ok(lost.fired);
    const c = new Queue<string>(b!, '/q/prod', { codec: stringCodec });
    assert.equal(await c.take(), 'first');
    assert.equal(await c.take(), 'once');
    assert.equal(await c.poll(), null);
  });
});

describe('recipes/PriorityQueue and DelayQueue', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('PriorityQueue takes lower numbers first, FIFO within a priority, and sees urgent items put later', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const q = new PriorityQueue<string>(a!, '/pq', { codec: stringCodec });
    await q.put('low-1', 10);
    await q.put('high', -5);
    await q.put('low-2', 10);
    await q.put('mid', 0);
    const c = new PriorityQueue<string>(b!, '/pq', { codec: stringCodec });
    assert.equal(await c.take(), 'high');
    await q.put('urgent', -100);
    await sleep(10);
    assert.equal(await c.take(), 'urgent');
    assert.deepEqual([await c.take(), await c.take(), await c.take()], ['mid', 'low-1', 'low-2']);
    await assert.rejects(q.put('x', 1.5));
  });

  it('DelayQueue releases items at their time, never earlier, in time order', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const q = new DelayQueue<string>(a!, '/dq', { codec: stringCodec });
    const now = Date.now();
    const due: Record<string, number> = { later: now + 400, soon: now + 200, now: now - 1 };
    await q.put('later', due.later!);
    await q.put('soon', due.soon!);
    await q.put('now', due.now!);
    const c = new DelayQueue<string>(b!, '/dq', { codec: stringCodec });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const v = await c.take({ timeoutMs: i === 1 ? 20 : 2000 });
      if (v === null) {
        assert.ok(Date.now() < due.soon! + 50, 'nothing was due yet');
        i--;
        continue;
      }
      assert.ok(Date.now() >= due[v]!, `${v} was taken ${due[v]! - Date.now()} ms before it was due`);
      got.push(v);
    }
    assert.deepEqual(got, ['now', 'soon', 'later']);
  });
});
