import assert from 'node:assert/strict';
import {
  ExponentialBackoffRetry, LeaderLatch, LeaderSelector, Mutex, PathChildrenCache, ReadWriteLock, TreeCache, createProtected,
  protectedPrefix, type PathChildrenCacheEvent, type TreeCacheEvent,
} from '../../src/api/recipes/index.js';
import { sequenceOf } from '../../src/api/recipes/util.js';
import type { Session } from '../../src/api/session.js';
import { countNotifications, ensemble, eventually, sleep, type Ensemble } from './helpers.js';
import { cacheSnapshot, moveItems, randomChanges, snapshotTree, text } from './shared.js';

/*
 * The acceptance tests, on a 3-member ensemble over the in-memory transport: sessions
 * spread over the members, real partitions, real crashes, real session expiry by the leader.
 */

const memberOf = (i: number): number => (i % 3) + 1;

/** Timings for the README (printed with CONCLAVE_RECIPES_TIMINGS=1). */
function timing(what: string, ms: number): void {
  if (process.env.CONCLAVE_RECIPES_TIMINGS) console.log(`      timing: ${what}: ${Math.round(ms)} ms`);
}

describe('recipes on a 3-member ensemble: contention', function () {
  this.timeout(60_000);
  let env: Ensemble;
  beforeEach(async () => {
    env = await ensemble();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('Mutex: 20 sessions over 3 members — never two holders, acquisitions in FIFO order, each release wakes one waiter', async () => {
    const sessions: Session[] = [];
    for (let i = 0; i < 20; i++) sessions.push(await env.session(memberOf(i)));
    const notes = sessions.map((s) => countNotifications(s));
    let holders = 0;
    let max = 0;
    const order: number[] = [];
    let releases = 0;
    await Promise.all(sessions.map(async (s) => {
      const m = new Mutex(s, '/locks/shared');
      for (let k = 0; k < 8; k++) {
        assert.ok(await m.acquire({ timeoutMs: 30_000 }), 'every acquire eventually succeeds');
        holders++;
        max = Math.max(max, holders);
        order.push(sequenceOf(m.node!.name));
        await sleep(Math.random() < 0.3 ? 1 : 0);
        holders--;
        releases++;
        await m.release();
      }
    }));
    assert.equal(max, 1, 'two holders at once');
    assert.equal(order.length, 160);
    for (let i = 1; i < order.length; i++) assert.ok(order[i]! > order[i - 1]!, `acquisition ${i} out of queue order (${order[i - 1]} then ${order[i]})`);
    const perPath = new Map<string, number>();
    for (const n of notes) for (const e of n.events) {
      assert.match(e, /^NodeDeleted \/locks\/shared\//, `unexpected notification ${e}`);
      perPath.set(e, (perPath.get(e) ?? 0) + 1);
    }
    for (const [p, c] of perPath) assert.equal(c, 1, `${p} woke ${c} waiters`);
    assert.ok(perPath.size > 0 && perPath.size <= releases, `${perPath.size} wake-ups for ${releases} releases`);
  });

  it('ReadWriteLock: 20 sessions over 3 members — writers exclusive, readers concurrent only among themselves, readers woken only by writers', async () => {
    const sessions: Session[] = [];
    for (let i = 0; i < 20; i++) sessions.push(await env.session(memberOf(i)));
    const role = new Map<Session, 'reader' | 'writer' | 'idle'>();
    const byPath = new Map<string, { reader: number; writer: number }>();
    for (const s of sessions) {
      role.set(s, 'idle');
      const spy = s as unknown as { _notify(type: string, path: string): void };
      const orig = spy._notify.bind(s);
      spy._notify = (type: string, path: string) => {
        const r = role.get(s)!;
        assert.notEqual(r, 'idle', `a notification reached a session that was not waiting: ${type} ${path}`);
        const e = byPath.get(path) ?? { reader: 0, writer: 0 };
        e[r as 'reader' | 'writer']++;
        byPath.set(path, e);
        orig(type, path);
      };
    }
    let readers = 0;
    let writers = 0;
    let maxReaders = 0;
    let violations = 0;
    await Promise.all(sessions.map(async (s, i) => {
      const rw = new ReadWriteLock(s, '/locks/rw');
      for (let k = 0; k < 6; k++) {
        const writer = (i + k) % 4 === 0;
        role.set(s, writer ? 'writer' : 'reader');
        const lock = writer ? rw.writeLock() : rw.readLock();
        assert.ok(await lock.acquire({ timeoutMs: 30_000 }));
        role.set(s, 'idle');
        if (writer) {
          writers++;
          if (writers > 1 || readers > 0) violations++;
          await sleep(1);
          writers--;
        } else {
          readers++;
          if (writers > 0) violations++;
          maxReaders = Math.max(maxReaders, readers);
          await sleep(2);
          readers--;
        }
        await lock.release();
      }
    }));
    assert.equal(violations, 0);
    assert.ok(maxReaders > 1, 'readers overlapped');
    for (const [path, c] of byPath) {
      if (path.includes('__READ__')) {
        assert.equal(c.reader, 0, `a reader was woken by a read node ${path}`);
        assert.ok(c.writer <= 1, `${c.writer} writers woken by ${path}`);
      } else {
        assert.ok(c.writer <= 1, `${c.writer} writers woken by ${path}`);
      }
    }
  });

  it('Queue: 5 producers and 5 consumers on different members move 10,000 items exactly once, FIFO per producer', async () => {
    const producers: Session[] = [];
    const consumers: Session[] = [];
    for (let i = 0; i < 5; i++) producers.push(await env.session(memberOf(i)));
    for (let i = 0; i < 5; i++) consumers.push(await env.session(memberOf(i + 1)));
    const t0 = Date.now();
    const { taken } = await moveItems(producers, consumers, '/queues/big', 2000);
    timing('queue: 10,000 items moved', Date.now() - t0);
    // Consumers served by the ZAB leader's member win most races for the head item (they see commits first): correct, not fair.
    assert.equal(taken.reduce((n, l) => n + l.length, 0), 10_000);
  });

  it('caches converge to the tree after random concurrent changes by writers on every member', async () => {
    const c = await env.session(3);
    const writers: Session[] = [];
    for (let i = 0; i < 6; i++) writers.push(await env.session(memberOf(i)));
    await c.create('/conv');
    const tree = new TreeCache(c, '/conv');
    const children = new PathChildrenCache(c, '/conv');
    await tree.start();
    await children.start();
    await randomChanges(writers, '/conv', 120, 11);
    await c.sync('/conv');
    await eventually(async () => {
      await tree.settled();
      const fresh = await snapshotTree(c, '/conv');
      return JSON.stringify([...cacheSnapshot(tree)]) === JSON.stringify([...fresh]);
    }, 'tree cache converged', 5000);
    const fresh1 = await snapshotTree(c, '/conv', 1);
    fresh1.delete('/conv');
    await children.settled();
    assert.deepEqual(new Map(children.getCurrentData().map((d) => [d.path, `${text(d.data)}|${d.stat.czxid}|${d.stat.mzxid}`])), fresh1);
    await tree.close();
    await children.close();
  });
});

describe('recipes on a 3-member ensemble: failures', function () {
  this.timeout(60_000);
  let env: Ensemble;
  beforeEach(async () => {
    env = await ensemble();
  });
  afterEach(async () => {
    await env.stop();
  });

  const TIMEOUT = 2000;

  for (const where of ['a follower', 'the ZAB leader'] as const) {
    it(`Mutex: the holder's member (${where}) is partitioned away — the holder gets lost before its session can expire; only then does another acquire`, async () => {
      const leader = env.leader();
      const holderMember = where === 'the ZAB leader' ? leader : env.followers()[0]!;
      const other = env.ids.find((id) => id !== holderMember.id)!;
      const hs = await env.session(holderMember.id, { sessionTimeoutMs: TIMEOUT });
      const ws = await env.session(other, { sessionTimeoutMs: TIMEOUT });
      const holder = new Mutex(hs, '/locks/fail');
      const waiter = new Mutex(ws, '/locks/fail');
      assert.ok(await holder.acquire());
      const token = holder.fencingToken;
      let lostAt = 0;
      holder.on('lost', () => {
        lostAt = Date.now();
      });
      let acquiredAt = 0;
      const p = waiter.acquire({ timeoutMs: 20_000 }).then((ok) => {
        acquiredAt = Date.now();
        return ok;
      });
      await eventually(async () => (await waiter.getParticipantNodes()).length === 2, 'waiter queued');
      const cutAt = Date.now();
      env.net.isolate(holderMember.id);
      assert.ok(await p, 'the waiter acquired once the holder session expired');
      assert.ok(lostAt > 0, 'the holder was told');
      assert.ok(lostAt - cutAt < TIMEOUT, `lost after ${lostAt - cutAt} ms: later than the session timeout`);
      assert.ok(lostAt < acquiredAt, 'lost before the next holder acquired');
      // The leader expires a session one timeout after its last heartbeat, which came at most a third of a timeout before the cut.
      assert.ok(acquiredAt - cutAt >= TIMEOUT * 0.6, `acquired ${acquiredAt - cutAt} ms after the cut: before the holder's session could expire`);
      assert.ok(waiter.fencingToken > token);
      assert.ok(!holder.isAcquiredInThisProcess());
      timing(`holder on ${where}: lost after the cut`, lostAt - cutAt);
      timing(`holder on ${where}: next holder acquired after the cut`, acquiredAt - cutAt);
      env.net.heal();
      await eventually(() => hs.state === 'LOST', 'the holder session ends LOST', 10_000);
      await waiter.release();
    });
  }

  it("LeaderSelector: the leader's member is partitioned away — it stops acting on SUSPENDED; the next leader starts only after that and after expiry", async () => {
    const leaderMember = env.followers()[0]!;
    const others = env.ids.filter((id) => id !== leaderMember.id);
    const acts: { who: string; at: number }[] = [];
    const suspendedAt = new Map<string, number>();
    const started = new Map<string, number>();
    const make = async (who: string, memberId: number): Promise<LeaderSelector> => {
      const s = await env.session(memberId, { sessionTimeoutMs: TIMEOUT });
      s.on('state', (st) => {
        if (st === 'SUSPENDED' && !suspendedAt.has(who)) suspendedAt.set(who, Date.now());
      });
      const sel = new LeaderSelector(s, '/election/part', async (signal) => {
        started.set(who, Date.now());
        while (!signal.aborted) {
          acts.push({ who, at: Date.now() });
          await sleep(5);
        }
      }, { autoRequeue: true });
      return sel;
    };
    const first = await make('old', leaderMember.id);
    first.start();
    await eventually(() => first.hasLeadership(), 'old leads');
    const rivals = [await make('r1', others[0]!), await make('r2', others[1]!)];
    for (const r of rivals) r.start();
    await sleep(50);
    const cutAt = Date.now();
    env.net.isolate(leaderMember.id);
    await eventually(() => rivals.some((r) => r.hasLeadership()), 'a new leader', 15_000);
    const newWho = rivals[0]!.hasLeadership() ? 'r1' : 'r2';
    const oldSuspended = suspendedAt.get('old');
    assert.ok(oldSuspended, 'the old leader learned SUSPENDED');
    const oldActsAfter = acts.filter((a) => a.who === 'old' && a.at > oldSuspended);
    assert.equal(oldActsAfter.length, 0, 'the old leader acted after SUSPENDED');
    assert.ok(started.get(newWho)! > oldSuspended, 'the new leader started after the old one stopped');
    assert.ok(started.get(newWho)! - cutAt >= TIMEOUT * 0.6, 'the new leader started before the old session could expire');
    assert.ok(started.get(newWho)! - cutAt < TIMEOUT + 3000, `handover took ${started.get(newWho)! - cutAt} ms`);
    timing('selector: old leader SUSPENDED after the cut', oldSuspended - cutAt);
    timing('selector: new leader started after the cut', started.get(newWho)! - cutAt);
    env.net.heal();
    await Promise.all([first, ...rivals].map((s) => s.close()));
  });

  it("LeaderLatch: the leader's member (the ZAB leader) crashes — a new leader within the session timeout after the ensemble recovers; never two leaders on connected sessions", async () => {
    const zabLeader = env.leader();
    const latches: { latch: LeaderLatch; s: Session }[] = [];
    const violations: string[] = [];
    const check = (who: LeaderLatch): void => {
      for (const o of latches) {
        if (o.latch !== who && o.latch.hasLeadership()) violations.push(`${who.id} and ${o.latch.id} lead at once`);
      }
    };
    for (const id of [zabLeader.id, ...env.ids.filter((x) => x !== zabLeader.id)]) {
      const s = await env.session(id, { sessionTimeoutMs: TIMEOUT });
      const latch = new LeaderLatch(s, '/election/crash', { id: `on-${id}` });
      latch.on('isLeader', () => check(latch));
      latches.push({ latch, s });
      await latch.start();
    }
    assert.ok(latches[0]!.latch.hasLeadership());
    const crashAt = Date.now();
    await env.crash(zabLeader.id);
    assert.equal(latches[0]!.latch.hasLeadership(), false, 'the crashed member\'s latch is no longer leader');
    await env.settled(2, 10_000);
    const recoveredAt = Date.now();
    await eventually(() => latches.some((l) => l.latch.hasLeadership()), 'a new leader', 15_000);
    const handover = Date.now() - recoveredAt;
    assert.ok(handover <= TIMEOUT + 1500, `new leader ${handover} ms after the ensemble recovered (${recoveredAt - crashAt} ms to elect a ZAB leader)`);
    timing('latch crash: new ZAB leader serving after the crash', recoveredAt - crashAt);
    timing('latch crash: new latch leader after the crash', Date.now() - crashAt);
    assert.deepEqual(violations, []);
    for (const l of latches.slice(1)) await l.latch.close();
  });

  it('Mutex: a short partition (SUSPENDED → RECONNECTED) gives the lock up at once; the waiter gets it without waiting for an expiry', async () => {
    const f = env.followers()[0]!;
    const other = env.ids.find((id) => id !== f.id)!;
    const hs = await env.session(f.id, { sessionTimeoutMs: 8000 });
    const ws = await env.session(other, { sessionTimeoutMs: 8000 });
    const holder = new Mutex(hs, '/locks/blip');
    assert.ok(await holder.acquire());
    const lost: string[] = [];
    holder.on('lost', (st) => lost.push(st));
    const waiter = new Mutex(ws, '/locks/blip');
    const p = waiter.acquire({ timeoutMs: 20_000 });
    await eventually(async () => (await waiter.getParticipantNodes()).length === 2, 'queued');
    const cutAt = Date.now();
    env.net.isolate(f.id);
    await eventually(() => lost.length === 1, 'lost on SUSPENDED', 5000);
    env.net.heal();
    assert.ok(await p);
    const took = Date.now() - cutAt;
    assert.deepEqual(lost, ['SUSPENDED']);
    assert.ok(took < 8000 * 0.6, `the waiter waited ${took} ms: for an expiry rather than for the reconnect`);
    assert.equal(hs.state, 'RECONNECTED', 'the holder session survived');
    timing('blip: waiter acquired after the cut (lock released on reconnect)', took);
    await waiter.release();
  });

  it("LeaderSelector with interruptOn 'LOST' keeps leading through a short partition, and nobody else leads meanwhile", async () => {
    const f = env.followers()[0]!;
    const others = env.ids.filter((id) => id !== f.id);
    const s = await env.session(f.id, { sessionTimeoutMs: 8000 });
    let aborted = false;
    const sel = new LeaderSelector(s, '/election/lostonly', async (signal) => {
      await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
      aborted = true;
    }, { interruptOn: 'LOST' });
    sel.start();
    await eventually(() => sel.hasLeadership(), 'leads');
    const rivals: LeaderSelector[] = [];
    for (const id of others) {
      const r = new LeaderSelector(await env.session(id), '/election/lostonly', async (signal) => {
        await new Promise<void>((res) => signal.addEventListener('abort', () => res()));
      });
      r.start();
      rivals.push(r);
    }
    env.net.isolate(f.id);
    await eventually(() => s.state === 'SUSPENDED', 'suspended', 5000);
    assert.ok(sel.hasLeadership(), 'still leading while suspended (LOST policy)');
    await sleep(300);
    env.net.heal();
    await eventually(() => s.state === 'RECONNECTED', 'reconnected', 10_000);
    await sleep(100);
    assert.ok(sel.hasLeadership() && !aborted);
    assert.ok(rivals.every((r) => !r.hasLeadership()), 'a rival led while the leader was only suspended');
    await sel.close();
    await eventually(() => rivals.some((r) => r.hasLeadership()), 'a rival leads after close');
    await Promise.all(rivals.map((r) => r.close()));
  });

  it('caches converge after a partition heals, reporting a delete + re-create made while they were cut off', async () => {
    const cacheMember = env.followers()[0]!;
    const others = env.ids.filter((id) => id !== cacheMember.id);
    const c = await env.session(cacheMember.id, { sessionTimeoutMs: 8000 });
    const writers = [await env.session(others[0]!), await env.session(others[1]!)];
    await writers[0]!.create('/part/again', 'v1', { parents: true });
    await writers[0]!.create('/part/stay', 's');
    const tree = new TreeCache(c, '/part');
    const kids = new PathChildrenCache(c, '/part');
    const treeEvents: string[] = [];
    const kidEvents: string[] = [];
    tree.on('event', (e: TreeCacheEvent) => treeEvents.push(`${e.type} ${e.data?.path ?? ''}`.trim()));
    kids.on('event', (e: PathChildrenCacheEvent) => kidEvents.push(`${e.type} ${e.data?.path ?? ''}`.trim()));
    await tree.start();
    await kids.start();
    treeEvents.length = 0;
    kidEvents.length = 0;
    env.net.isolate(cacheMember.id);
    await eventually(() => c.state === 'SUSPENDED', 'cache session suspended', 5000);
    await writers[0]!.delete('/part/again');
    await writers[1]!.create('/part/again', 'v2');
    await randomChanges(writers, '/part', 60, 3);
    env.net.heal();
    await eventually(() => c.state === 'RECONNECTED', 'reconnected', 10_000);
    await c.sync('/part');
    await eventually(async () => {
      await tree.settled();
      return JSON.stringify([...cacheSnapshot(tree)]) === JSON.stringify([...(await snapshotTree(c, '/part'))]);
    }, 'tree cache converged', 5000);
    await kids.settled();
    const fresh1 = await snapshotTree(c, '/part', 1);
    fresh1.delete('/part');
    assert.deepEqual(new Map(kids.getCurrentData().map((d) => [d.path, `${text(d.data)}|${d.stat.czxid}|${d.stat.mzxid}`])), fresh1);
    for (const [events, removed, added] of [[treeEvents, 'NODE_REMOVED /part/again', 'NODE_ADDED /part/again'], [kidEvents, 'CHILD_REMOVED /part/again', 'CHILD_ADDED /part/again']] as const) {
      assert.ok(events.includes('CONNECTION_SUSPENDED') && events.includes('CONNECTION_RECONNECTED'));
      if (fresh1.has('/part/again')) {
        assert.ok(events.indexOf(removed) >= 0 && events.indexOf(removed) < events.indexOf(added), `re-create reported: ${events.join(', ')}`);
      }
    }
    await tree.close();
    await kids.close();
  });

  it('protected creation: a create whose reply is lost with the connection is found again by its GUID, not made twice', async () => {
    const leader = env.leader();
    const f = env.followers()[0]!;
    const s = await env.session(f.id, { sessionTimeoutMs: 8000 });
    await s.create('/prot');
    // Everything from the leader to this member is lost from now on: the create commits on the
    // leader and the other follower, but this member never hears of it and stops serving.
    env.net.drop((from, to) => from === leader.id && to === f.id);
    const p = createProtected(s, '/prot', 'item-', { data: 'x' });
    await eventually(() => s.state === 'SUSPENDED', 'suspended', 5000);
    const other = await env.session(env.ids.find((id) => id !== f.id && id !== leader.id)!);
    await eventually(async () => (await other.getChildren('/prot')).length === 1, 'committed elsewhere', 5000);
    env.net.heal();
    const node = await p;
    assert.ok(node);
    const children = await s.getChildren('/prot');
    assert.equal(children.length, 1, `children: ${children.join(', ')}`);
    assert.ok(children[0]!.startsWith(protectedPrefix(node.guid)));
  });

  it('a session with ExponentialBackoffRetry rides out a short partition of its member', async () => {
    const f = env.followers()[0]!;
    const s = await env.session(f.id, { sessionTimeoutMs: 8000, retry: new ExponentialBackoffRetry(20, 29, 200) });
    await s.create('/retry', 'a');
    env.net.isolate(f.id);
    await eventually(() => s.state === 'SUSPENDED', 'suspended', 5000);
    const p = s.setData('/retry', 'b');
    await sleep(300);
    env.net.heal();
    await p;
    assert.equal(text((await s.getData('/retry')).data), 'b');
  });
});
