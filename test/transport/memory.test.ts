import assert from 'node:assert/strict';
import { memoryNetwork, type MemoryNetwork, type MemoryTransport } from '../../src/transport/memory.js';
import type { PeerMessage } from '../../src/transport/types.js';
import { record, runCompliance, waitFor, type Recorder } from './compliance.js';
import { lifecycleExitMs } from './processes.js';
import { mulberry32 as seeded } from '../../src/testing/random.js';

runCompliance({
  kind: 'memory',
  async cluster(n) {
    let net = memoryNetwork();
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const transports = ids.map((id) => net.transport(id));
    const peers = new Map(ids.map((id) => [id, `memory:${id}`]));
    const all: MemoryTransport[] = [...transports];
    return {
      transports,
      peers,
      renew: async (id) => {
        const t = net.transport(id);
        all.push(t);
        return t;
      },
      close: async () => {
        await Promise.all(all.map((t) => t.stop()));
        net = memoryNetwork();
      },
    };
  },
  async frozenPair(maxQueueBytes) {
    const net = memoryNetwork({ maxPendingBytes: maxQueueBytes });
    const local = net.transport(1);
    const remote = net.transport(2);
    const peers = new Map([[1, 'memory:1'], [2, 'memory:2']]);
    remote.on('message', (from, msg) => remote.send(from, { t: 'echo', n: (msg as unknown as { n: number }).n } as PeerMessage));
    await remote.start(2, peers);
    return {
      local,
      peers,
      freeze: async () => net.pause(2),
      thaw: async () => net.resume(2),
      close: async () => {
        await local.stop();
        await remote.stop();
      },
    };
  },
  lifecycleExitMs: () => lifecycleExitMs({ kind: 'memory' }),
});


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

async function ensemble(net: MemoryNetwork, n: number): Promise<{ ts: MemoryTransport[]; recs: Recorder[] }> {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const peers = new Map(ids.map((id) => [id, `memory:${id}`]));
  const ts = ids.map((id) => net.transport(id));
  const recs = ts.map(record);
  await Promise.all(ts.map((t, i) => t.start(i + 1, peers)));
  await waitFor(() => recs.every((r) => r.ups.length === n - 1), 2000, 'ups');
  return { ts, recs };
}

function texts(r: Recorder, from?: number): string[] {
  return r.messages.filter(([f]) => from === undefined || f === from).map(([, m]) => (m as unknown as { s: string }).s);
}

const m = (s: string): PeerMessage => ({ t: 'm', s }) as PeerMessage;

describe('memoryNetwork: fault injection', () => {
  let ts: MemoryTransport[] = [];
  afterEach(async () => {
    await Promise.all(ts.map((t) => t.stop()));
    ts = [];
  });

  it('partition([1], [2, 3]) silently drops messages across groups, also in flight; heal() restores them', async () => {
    const net = memoryNetwork();
    const e = await ensemble(net, 3);
    ts = e.ts;
    const [t1, t2, t3] = ts as [MemoryTransport, MemoryTransport, MemoryTransport];
    net.delay(30);
    t1.send(2, m('in-flight'));
    net.partition([1], [2, 3]);
    t1.send(2, m('1to2'));
    t2.send(1, m('2to1'));
    t3.send(1, m('3to1'));
    t2.send(3, m('2to3'));
    t3.send(2, m('3to2'));
    await sleep(60);
    assert.deepEqual(texts(e.recs[0]!), []);
    assert.deepEqual(texts(e.recs[1]!), ['3to2']);
    assert.deepEqual(texts(e.recs[2]!), ['2to3']);
    assert.ok(e.recs.every((r) => r.downs.length === 0 && r.ups.length === 2), 'a partition emits no events');
    assert.deepEqual(t1.connected(), [2, 3], 'a partition is invisible to connected()');
    assert.equal(net.stats().dropped.partition, 4);
    net.heal();
    t1.send(2, m('healed'));
    t2.send(1, m('healed'));
    await waitFor(() => texts(e.recs[0]!).length === 1 && texts(e.recs[1]!).length === 2, 1000, 'delivery after heal');
    assert.equal(net.stats().delivered, 4);
  });

  it('members named in no group form one more group; isolate(id) cuts one member off on top', async () => {
    const net = memoryNetwork();
    const e = await ensemble(net, 4);
    ts = e.ts;
    net.partition([1], [2]);
    for (const [i, t] of ts.entries()) for (let to = 1; to <= 4; to++) if (to !== i + 1) t.send(to, m(`${i + 1}>${to}`));
    await sleep(10);
    assert.deepEqual(texts(e.recs[2]!), ['4>3']);
    assert.deepEqual(texts(e.recs[3]!), ['3>4']);
    assert.deepEqual(texts(e.recs[0]!), []);
    net.heal();
    net.isolate(4);
    for (const [i, t] of ts.entries()) for (let to = 1; to <= 4; to++) if (to !== i + 1) t.send(to, m(`b${i + 1}>${to}`));
    await sleep(10);
    assert.deepEqual(texts(e.recs[0]!).sort(), ['b2>1', 'b3>1']);
    assert.deepEqual(texts(e.recs[3]!), ['3>4']);
    assert.throws(() => net.partition([1, 2], [2, 3]), /two groups/);
  });

  it('drop(p) drops about p of the messages with a seeded random, drop(predicate) exactly the matching ones', async () => {
    const net = memoryNetwork({ random: seeded(7) });
    const e = await ensemble(net, 2);
    ts = e.ts;
    net.drop(0.3);
    for (let i = 0; i < 2000; i++) ts[0]!.send(2, m(String(i)));
    await waitFor(() => net.stats().delivered + net.stats().dropped.rule === 2000, 1000, 'all decided');
    const got = texts(e.recs[1]!).map(Number);
    assert.ok(got.length > 1200 && got.length < 1600, `${got.length} of 2000 delivered with drop(0.3)`);
    assert.deepEqual(got, [...got].sort((a, b) => a - b), 'survivors stay in order');
    e.recs[1]!.messages.length = 0;
    net.drop((from, to, msg) => from === 1 && to === 2 && (msg as unknown as { s: string }).s.startsWith('vote'));
    for (const s of ['vote-1', 'data-1', 'vote-2', 'data-2']) ts[0]!.send(2, m(s));
    ts[1]!.send(1, m('vote-back'));
    await sleep(10);
    assert.deepEqual(texts(e.recs[1]!), ['data-1', 'data-2']);
    assert.deepEqual(texts(e.recs[0]!), ['vote-back']);
    net.drop(1);
    ts[0]!.send(2, m('x'));
    net.heal();
    ts[0]!.send(2, m('after-heal'));
    await sleep(10);
    assert.deepEqual(texts(e.recs[1]!), ['data-1', 'data-2', 'after-heal']);
  });

  it('delay(ms) holds messages back; random delays keep FIFO per pair', async () => {
    const net = memoryNetwork({ random: seeded(3) });
    const e = await ensemble(net, 2);
    ts = e.ts;
    net.delay(80);
    const t0 = Date.now();
    ts[0]!.send(2, m('late'));
    await sleep(40);
    assert.deepEqual(texts(e.recs[1]!), [], 'not delivered before the delay');
    await waitFor(() => texts(e.recs[1]!).length === 1, 1000, 'the delayed message');
    assert.ok(Date.now() - t0 >= 75);
    e.recs[1]!.messages.length = 0;
    net.delay({ min: 0, max: 25 });
    for (let i = 0; i < 500; i++) ts[0]!.send(2, m(String(i)));
    await waitFor(() => e.recs[1]!.messages.length === 500, 3000, '500 delayed messages');
    assert.deepEqual(texts(e.recs[1]!).map(Number), Array.from({ length: 500 }, (_, i) => i));
    assert.ok(net.stats().delayed >= 490);
  });

  it('duplicate(p) delivers second copies right behind the originals', async () => {
    const net = memoryNetwork({ random: seeded(11) });
    const e = await ensemble(net, 2);
    ts = e.ts;
    net.duplicate(1);
    for (const s of ['a', 'b', 'c']) ts[0]!.send(2, m(s));
    await waitFor(() => e.recs[1]!.messages.length === 6, 1000, 'duplicates');
    assert.deepEqual(texts(e.recs[1]!), ['a', 'a', 'b', 'b', 'c', 'c']);
    const [first, second] = [e.recs[1]!.messages[0]![1], e.recs[1]!.messages[1]![1]];
    assert.notEqual(first, second, 'each copy is its own object');
    e.recs[1]!.messages.length = 0;
    net.duplicate(0.25);
    const before = net.stats().duplicated;
    for (let i = 0; i < 400; i++) ts[0]!.send(2, m(String(i)));
    await settle();
    await settle();
    const dups = net.stats().duplicated - before;
    assert.equal(e.recs[1]!.messages.length, 400 + dups);
    assert.ok(dups > 60 && dups < 140, `${dups} duplicates of 400 at 0.25`);
  });

  it('reorder(p) lets messages overtake each other, none lost or duplicated', async () => {
    const net = memoryNetwork({ random: seeded(5) });
    const e = await ensemble(net, 2);
    ts = e.ts;
    net.reorder(0.5, 20);
    for (let i = 0; i < 300; i++) ts[0]!.send(2, m(String(i)));
    await waitFor(() => e.recs[1]!.messages.length === 300, 2000, '300 messages');
    const got = texts(e.recs[1]!).map(Number);
    assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i));
    let inversions = 0;
    for (let i = 1; i < got.length; i++) if (got[i]! < got[i - 1]!) inversions++;
    assert.ok(inversions > 10, `only ${inversions} inversions with reorder(0.5)`);
    assert.ok(net.stats().reordered > 100);
  });

  it('pause(id) freezes delivery to a member; resume(id) delivers the backlog in order', async () => {
    const net = memoryNetwork();
    const e = await ensemble(net, 2);
    ts = e.ts;
    net.pause(2);
    for (let i = 0; i < 50; i++) ts[0]!.send(2, m(String(i)));
    ts[1]!.send(1, m('from-paused'));
    await sleep(10);
    assert.equal(e.recs[1]!.messages.length, 0);
    assert.deepEqual(texts(e.recs[0]!), ['from-paused'], 'a paused member still sends');
    assert.ok(ts[0]!.queued(2) > 0);
    net.resume(2);
    await settle();
    assert.deepEqual(texts(e.recs[1]!).map(Number), Array.from({ length: 50 }, (_, i) => i));
    assert.equal(ts[0]!.queued(2), 0);
  });

  it('a backlog beyond maxPendingBytes resets the link: down on both sides, up again after resume', async () => {
    const net = memoryNetwork({ maxPendingBytes: 100_000 });
    const e = await ensemble(net, 2);
    ts = e.ts;
    net.pause(2);
    const data = new Uint8Array(10_000);
    for (let i = 0; i < 30; i++) ts[0]!.send(2, { t: 'bulk', data } as PeerMessage);
    await settle();
    assert.deepEqual(e.recs[0]!.downs, [2], 'the sender saw the link drop');
    assert.equal(net.stats().resets, 1);
    assert.ok(!net.linked(1, 2));
    net.resume(2);
    await waitFor(() => e.recs[0]!.ups.length === 2 && e.recs[1]!.ups.length === 2, 1000, 'up again');
    assert.deepEqual(e.recs[1]!.log.filter((x) => !x.startsWith('msg')), ['up:1', 'down:1', 'up:1']);
    ts[0]!.send(2, m('fresh'));
    await settle();
    assert.deepEqual(texts(e.recs[1]!).filter((s) => s === 'fresh'), ['fresh']);
  });

  it('a seeded simulator scheduler controls delivery; FIFO per pair holds and a seed replays identically', async () => {
    const run = async (seed: number): Promise<string[]> => {
      const rnd = seeded(seed);
      const tasks: { fn: () => void; at: number }[] = [];
      let now = 0;
      const clock = {
        now: () => now,
        setTimeout: (fn: () => void, ms: number) => tasks.push({ fn, at: now + ms }),
        clearTimeout: () => undefined,
        setInterval: () => 0,
        clearInterval: () => undefined,
        yield: () => Promise.resolve(),
      };
      const net = memoryNetwork({ clock, random: rnd, schedule: (fn, ms) => void tasks.push({ fn, at: now + ms }) });
      net.delay({ min: 0, max: 10 });
      net.drop(0.1);
      net.duplicate(0.1);
      const peers = new Map([[1, 'a'], [2, 'b'], [3, 'c']]);
      const local = [1, 2, 3].map((id) => net.transport(id));
      const log: string[] = [];
      for (const [i, t] of local.entries()) {
        t.on('up', (p) => log.push(`${i + 1}:up:${p}`));
        t.on('message', (from, msg) => {
          log.push(`${i + 1}<${from}:${(msg as unknown as { s: string }).s}`);
          const n = Number((msg as unknown as { s: string }).s);
          if (n < 40) t.send(from, m(String(n + 1)));
        });
      }
      for (const [i, t] of local.entries()) await t.start(i + 1, peers);
      local[0]!.send(2, m('0'));
      local[2]!.send(1, m('0'));
      for (let step = 0; step < 100_000 && tasks.length > 0; step++) {
        // Run one due task chosen at random among the earliest ones (a simulator's interleaving).
        const earliest = Math.min(...tasks.map((x) => x.at));
        const due = tasks.map((x, i) => [x, i] as const).filter(([x]) => x.at <= earliest + 5);
        const [task, index] = due[Math.floor(rnd() * due.length)]!;
        tasks.splice(index, 1);
        now = Math.max(now, task.at);
        task.fn();
      }
      for (const t of local) await t.stop();
      return log;
    };
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    assert.deepEqual(a, b, 'same seed, same delivery sequence');
    assert.notDeepEqual(a, c);
    for (const log of [a, c]) {
      const last = new Map<string, number>();
      for (const line of log) {
        const mm = /^(\d)<(\d):(\d+)$/.exec(line);
        if (!mm) continue;
        const key = `${mm[2]}>${mm[1]}`;
        const n = Number(mm[3]);
        assert.ok(n >= (last.get(key) ?? -1), `FIFO broken on ${key}: ${n} after ${last.get(key)}`);
        last.set(key, n);
      }
    }
  });

  it('fails loudly on a message that cannot cross a wire (strict), or warns and drops it (strict: false)', async () => {
    const strict = memoryNetwork({ maxFrameBytes: 1024 });
    const e = await ensemble(strict, 2);
    ts = e.ts;
    assert.throws(() => ts[0]!.send(2, { t: 'x', n: 2n ** 64n } as unknown as PeerMessage), TypeError);
    const cyclic: Record<string, unknown> = { t: 'cyclic' };
    cyclic.self = cyclic;
    assert.throws(() => ts[0]!.send(2, cyclic as PeerMessage), TypeError);
    assert.throws(() => ts[0]!.send(2, { t: 'big', data: new Uint8Array(2000) } as PeerMessage), /maxFrameBytes/);
    assert.throws(() => ts[0]!.send(2, 'not an object' as unknown as PeerMessage), TypeError);
    const lenient = memoryNetwork({ strict: false });
    const l = await ensemble(lenient, 2);
    ts.push(...l.ts);
    l.ts[0]!.send(2, { t: 'x', n: 2n ** 64n } as unknown as PeerMessage);
    l.ts[0]!.send(2, m('ok'));
    await settle();
    assert.equal(l.recs[0]!.warns.length, 1);
    assert.deepEqual(texts(l.recs[1]!), ['ok']);
  });

  it('links only members that list each other, and refuses a second live transport for one id', async () => {
    const net = memoryNetwork();
    const a = net.transport(1);
    const b = net.transport(2);
    const c = net.transport(3);
    ts = [a, b, c];
    const ra = record(a);
    await a.start(1, new Map([[1, ''], [2, '']]));
    await b.start(2, new Map([[1, ''], [2, '']]));
    await c.start(3, new Map([[1, ''], [3, '']]));
    await settle();
    assert.deepEqual(a.connected(), [2]);
    assert.deepEqual(c.connected(), []);
    assert.deepEqual(ra.ups, [2]);
    assert.equal(net.transport(1), a, 'the same object while it runs');
    await a.stop();
    const a2 = net.transport(1);
    assert.notEqual(a2, a, 'a fresh object once stopped');
    await a2.start(1, new Map([[1, ''], [2, '']]));
    ts.push(a2);
    await assert.rejects(a.start(1, new Map([[1, ''], [2, '']])), /already started/);
    await assert.rejects(net.transport(4).start(5, new Map()), /belongs to member 4/);
  });

  it('counts what happened in stats()', async () => {
    const net = memoryNetwork();
    const e = await ensemble(net, 2);
    ts = e.ts;
    ts[0]!.send(2, m('a'));
    ts[0]!.send(3, m('nobody'));
    await settle();
    const s = net.stats();
    assert.equal(s.sent, 1);
    assert.equal(s.delivered, 1);
    assert.equal(s.dropped.unconnected, 1);
    assert.ok(s.bytes > 0);
  });
});
