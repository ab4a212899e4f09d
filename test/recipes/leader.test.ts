import assert from 'node:assert/strict';
import { LeaderLatch, LeaderSelector } from '../../src/api/recipes/index.js';
import type { Session } from '../../src/api/session.js';
import type { SessionState } from '../../src/api/types.js';
import { eventually, isKeeper, sessionsOf, single, sleep, type Single } from './helpers.js';

/** Drives the session's state as the member does on a lost/regained quorum (the member keeps serving it). */
function setState(s: Session, state: SessionState): void {
  (s as unknown as { _setState(x: SessionState): void })._setState(state);
}

describe('recipes/LeaderLatch', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('elects exactly one leader and hands over in queue order when leaders close', async () => {
    const sessions = await sessionsOf(env, 5);
    const latches = sessions.map((s, i) => new LeaderLatch(s, '/election/a', { id: `p${i}` }));
    const log: string[] = [];
    let leaders = 0;
    let maxLeaders = 0;
    latches.forEach((l, i) => {
      l.on('isLeader', () => {
        leaders++;
        maxLeaders = Math.max(maxLeaders, latches.filter((x) => x.hasLeadership()).length);
        log.push(`+${i}`);
      });
      l.on('notLeader', () => {
        leaders--;
        log.push(`-${i}`);
      });
    });
    for (const l of latches) await l.start();
    assert.equal(await latches[0]!.await({ timeoutMs: 1000 }), true);
    assert.deepEqual(latches.map((l) => l.hasLeadership()), [true, false, false, false, false]);
    const parts = await latches[3]!.getParticipants();
    assert.deepEqual(parts.map((p) => p.id), ['p0', 'p1', 'p2', 'p3', 'p4']);
    assert.equal((await latches[4]!.getLeader())!.id, 'p0');
    const token0 = latches[0]!.fencingToken;
    for (let i = 0; i < 4; i++) {
      await latches[i]!.close();
      assert.equal(await latches[i + 1]!.await({ timeoutMs: 2000 }), true);
      assert.equal(latches.filter((x) => x.hasLeadership()).length, 1);
    }
    assert.ok(latches[4]!.fencingToken > token0);
    assert.equal(maxLeaders, 1);
    assert.deepEqual(log, ['+0', '+1', '+2', '+3', '+4'], 'SILENT close mode: no notLeader on close');
    await latches[4]!.close();
    assert.deepEqual(await sessions[0]!.getChildren('/election/a'), []);
  });

  it('await() times out with false, rejects on abort and when the latch is closed', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const la = new LeaderLatch(a!, '/election/b');
    const lb = new LeaderLatch(b!, '/election/b', { closeMode: 'NOTIFY_LEADER' });
    await la.start();
    await lb.start();
    assert.equal(await lb.await({ timeoutMs: 100 }), false);
    const ac = new AbortController();
    const p = lb.await({ signal: ac.signal });
    ac.abort(new Error('stop'));
    await assert.rejects(p, /stop/);
    const p2 = lb.await();
    await lb.close();
    await assert.rejects(p2, isKeeper('BADARGUMENTS'));
    await assert.rejects(new LeaderLatch(b!, '/election/b').await(), isKeeper('BADARGUMENTS'));
    await la.close();
  });

  it('gives up leadership when its session expires; the next contender leads only after that', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const la = new LeaderLatch(a!, '/election/c');
    const lb = new LeaderLatch(b!, '/election/c');
    await la.start();
    await lb.start();
    assert.ok(la.hasLeadership());
    const events: string[] = [];
    la.on('notLeader', () => events.push('a-'));
    la.on('error', () => events.push('a-error'));
    lb.on('isLeader', () => {
      events.push(`b+ (a leads: ${la.hasLeadership()})`);
    });
    await env.member.expireSession(a!.id);
    assert.ok(await lb.await({ timeoutMs: 2000 }));
    assert.deepEqual(events, ['a-', 'a-error', 'b+ (a leads: false)']);
  });

  it('drops leadership on SUSPENDED and, after RECONNECTED, re-checks its node before leading again', async () => {
    const [a, b, admin] = await sessionsOf(env, 3);
    const la = new LeaderLatch(a!, '/election/d');
    const lb = new LeaderLatch(b!, '/election/d');
    await la.start();
    await lb.start();
    assert.ok(la.hasLeadership());
    const both: number[] = [];
    const track = (): void => {
      both.push([la, lb].filter((l) => l.hasLeadership()).length);
    };
    la.on('isLeader', track);
    lb.on('isLeader', track);
    let notLeader = 0;
    la.on('notLeader', () => notLeader++);
    setState(a!, 'SUSPENDED');
    assert.equal(la.hasLeadership(), false, 'no leadership while suspended');
    assert.equal(notLeader, 1);
    // Plain reconnect with the node still first: leads again, after the re-check.
    setState(a!, 'RECONNECTED');
    await eventually(() => la.hasLeadership(), 'a leads again');
    // Suspended, and meanwhile its node is removed (as if it had expired): b takes over...
    setState(a!, 'SUSPENDED');
    await admin!.delete(la.ourPath!);
    assert.ok(await lb.await({ timeoutMs: 2000 }));
    // ...and when a comes back it must not lead: its node is gone; it queues again behind b.
    setState(a!, 'RECONNECTED');
    await eventually(async () => (await lb.getParticipants()).length === 2, 'a re-queued');
    await sleep(50);
    assert.equal(la.hasLeadership(), false);
    assert.equal(lb.hasLeadership(), true);
    assert.ok(both.every((n) => n === 1), `leaders at each isLeader: ${both.join(',')}`);
    await lb.close();
    assert.ok(await la.await({ timeoutMs: 2000 }));
    await la.close();
  });
});

describe('recipes/LeaderSelector', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('rotates leadership with autoRequeue; leadership ends when takeLeadership returns; never two leaders', async () => {
    const sessions = await sessionsOf(env, 4);
    let active = 0;
    let max = 0;
    const turns: number[] = [];
    const selectors = sessions.map((s, i) => new LeaderSelector(s, '/election/sel', async (signal) => {
      active++;
      max = Math.max(max, active);
      turns.push(i);
      await sleep(5);
      assert.equal(signal.aborted, false);
      active--;
    }, { autoRequeue: true, id: `s${i}` }));
    for (const s of selectors) s.start();
    await eventually(() => turns.length >= 20, '20 turns');
    await Promise.all(selectors.map((s) => s.close()));
    assert.equal(max, 1);
    for (let i = 0; i < 4; i++) assert.ok(turns.includes(i), `selector ${i} led`);
    // Fair queue: consecutive turns go round-robin.
    for (let k = 4; k < 16; k++) assert.equal(turns[k], turns[k - 4]);
  });

  it('without autoRequeue leads once; requeue() queues again', async () => {
    const [a] = await sessionsOf(env, 1);
    let n = 0;
    const sel = new LeaderSelector(a!, '/election/once', () => {
      n++;
    });
    sel.start();
    await eventually(() => n === 1, 'led once');
    await sleep(30);
    assert.equal(n, 1);
    await eventually(() => sel.requeue(), 'requeued');
    await eventually(() => n === 2, 'led again');
    await sel.close();
  });

  it('aborts the signal on SUSPENDED (the leader stops acting) and another selector takes over once the session is gone', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const acts: string[] = [];
    let suspendedAt = -1;
    const work = (name: string) => async (signal: AbortSignal): Promise<void> => {
      for (let i = 0; i < 1000 && !signal.aborted; i++) {
        acts.push(name);
        await sleep(2);
      }
    };
    const sa = new LeaderSelector(a!, '/election/susp', work('a'));
    sa.start();
    await eventually(() => sa.hasLeadership(), 'a leads');
    const sb = new LeaderSelector(b!, '/election/susp', work('b'));
    sb.start();
    await sleep(20);
    a!.on('state', (s) => {
      if (s === 'SUSPENDED') suspendedAt = acts.length;
    });
    setState(a!, 'SUSPENDED');
    assert.equal(sa.hasLeadership(), false);
    await sleep(20);
    const aAfter = acts.slice(suspendedAt).filter((x) => x === 'a').length;
    assert.equal(aAfter, 0, 'a acted after it learned SUSPENDED');
    assert.equal(sb.hasLeadership(), false, 'b cannot lead while a\'s session may still live');
    await env.member.expireSession(a!.id);
    await eventually(() => sb.hasLeadership(), 'b leads after a expired');
    await sb.close();
    await sa.close();
  });

  it("with interruptOn 'LOST' keeps leading through SUSPENDED→RECONNECTED, and is interrupted by LOST", async () => {
    const [a] = await sessionsOf(env, 1);
    let reason: unknown;
    const sel = new LeaderSelector(a!, '/election/lostonly', async (signal) => {
      await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
      reason = signal.reason;
    }, { interruptOn: 'LOST' });
    sel.start();
    await eventually(() => sel.hasLeadership(), 'leads');
    setState(a!, 'SUSPENDED');
    await sleep(10);
    assert.ok(sel.hasLeadership(), 'still leading while suspended');
    setState(a!, 'RECONNECTED');
    await sleep(10);
    assert.ok(sel.hasLeadership());
    await env.member.expireSession(a!.id);
    await eventually(() => !sel.hasLeadership(), 'interrupted');
    assert.ok(isKeeper('SESSIONEXPIRED')(reason));
    await sel.close();
  });

  it('close() interrupts a running leader and waits for it to return', async () => {
    const [a] = await sessionsOf(env, 1);
    let returned = false;
    const sel = new LeaderSelector(a!, '/election/close', async (signal) => {
      await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
      returned = true;
    }, { autoRequeue: true });
    sel.start();
    await eventually(() => sel.hasLeadership(), 'leads');
    await sel.close();
    assert.ok(returned);
    assert.deepEqual(await a!.getChildren('/election/close'), []);
  });
});
