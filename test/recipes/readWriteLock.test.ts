import assert from 'node:assert/strict';
import { ReadWriteLock } from '../../src/api/recipes/index.js';
import { countNotifications, eventually, isKeeper, sessionsOf, single, sleep, type Single } from './helpers.js';

describe('recipes/ReadWriteLock', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('writers are exclusive, readers concurrent only among themselves (12 sessions, mixed)', async () => {
    const sessions = await sessionsOf(env, 12);
    let readers = 0;
    let writers = 0;
    let maxReaders = 0;
    let violations = 0;
    let writes = 0;
    await Promise.all(sessions.map(async (s, i) => {
      const rw = new ReadWriteLock(s, '/rw/mixed');
      for (let k = 0; k < 6; k++) {
        if ((i + k) % 3 === 0) {
          const w = rw.writeLock();
          assert.ok(await w.acquire());
          writers++;
          if (writers > 1 || readers > 0) violations++;
          await sleep(1);
          writes++;
          writers--;
          await w.release();
        } else {
          const r = rw.readLock();
          assert.ok(await r.acquire());
          readers++;
          if (writers > 0) violations++;
          maxReaders = Math.max(maxReaders, readers);
          await sleep(2);
          readers--;
          await r.release();
        }
      }
    }));
    assert.equal(violations, 0);
    assert.equal(writes, 24);
    assert.ok(maxReaders > 1, `readers never overlapped (max ${maxReaders})`);
    assert.deepEqual(await sessions[0]!.getChildren('/rw/mixed'), []);
  });

  it('a reader waits on the nearest preceding writer, not the first node; a writer on its immediate predecessor', async () => {
    const [s1, s2, s3, s4, s5] = await sessionsOf(env, 5);
    const w1 = new ReadWriteLock(s1!, '/rw/q').writeLock();
    assert.ok(await w1.acquire());
    // Returns the pending acquisition wrapped, so that awaiting the queueing does not await the lock.
    const queue = async (p: Promise<boolean>, n: number): Promise<{ p: Promise<boolean> }> => {
      await eventually(async () => (await w1.getParticipantNodes()).length === n, `${n} queued`);
      return { p };
    };
    const r2 = new ReadWriteLock(s2!, '/rw/q').readLock();
    const { p: pr2 } = await queue(r2.acquire(), 2);
    const w3 = new ReadWriteLock(s3!, '/rw/q').writeLock();
    const { p: pw3 } = await queue(w3.acquire(), 3);
    const r4 = new ReadWriteLock(s4!, '/rw/q').readLock();
    const { p: pr4 } = await queue(r4.acquire(), 4);
    const r5 = new ReadWriteLock(s5!, '/rw/q').readLock();
    const { p: pr5 } = await queue(r5.acquire(), 5);
    await sleep(20);
    const nodes = await w1.getParticipantNodes();
    assert.match(nodes[0]!, /__WRIT__/);
    assert.match(nodes[1]!, /__READ__/);
    assert.match(nodes[2]!, /__WRIT__/);
    const wchp = (await env.member.admin('wchp')) as { paths: Record<string, string[]> };
    const hex = (id: bigint): string => '0x' + id.toString(16);
    assert.deepEqual(wchp.paths[nodes[0]!], [hex(s2!.id)], 'only r2 watches w1');
    assert.deepEqual(wchp.paths[nodes[1]!], [hex(s3!.id)], 'w3 watches its immediate predecessor r2');
    assert.deepEqual([...(wchp.paths[nodes[2]!] ?? [])].sort(), [hex(s4!.id), hex(s5!.id)].sort(), 'r4 and r5 watch w3, the nearest writer');
    const c4 = countNotifications(s4!);
    const c5 = countNotifications(s5!);
    await w1.release();
    assert.ok(await pr2);
    await sleep(20);
    assert.equal(c4.count + c5.count, 0, 'readers behind w3 were not woken by w1');
    await r2.release();
    assert.ok(await pw3);
    await w3.release();
    assert.ok(await pr4);
    assert.ok(await pr5);
    assert.ok(r4.isAcquiredInThisProcess() && r5.isAcquiredInThisProcess(), 'both readers hold at once');
    await r4.release();
    await r5.release();
  });

  it('the write holder may take the read lock (downgrade) but not the reverse (upgrade)', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const rw = new ReadWriteLock(a!, '/rw/down');
    assert.ok(await rw.writeLock().acquire());
    assert.ok(await rw.readLock().acquire({ timeoutMs: 1000 }));
    await rw.writeLock().release();
    const other = new ReadWriteLock(b!, '/rw/down');
    assert.equal(await other.writeLock().acquire({ timeoutMs: 100 }), false, 'our read lock still blocks writers');
    assert.ok(await other.readLock().acquire({ timeoutMs: 1000 }), 'readers share');
    await other.readLock().release();
    await assert.rejects(rw.writeLock().acquire({ timeoutMs: 100 }), isKeeper('BADARGUMENTS'));
    await rw.readLock().release();
    assert.ok(await other.writeLock().acquire({ timeoutMs: 1000 }));
    assert.ok(other.writeLock().fencingToken > 0n);
    await other.writeLock().release();
  });

  it('a held read lock is lost with its session and the writer then proceeds', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const r = new ReadWriteLock(a!, '/rw/lost').readLock();
    assert.ok(await r.acquire());
    const lost: string[] = [];
    r.on('lost', (s) => lost.push(s));
    const w = new ReadWriteLock(b!, '/rw/lost').writeLock();
    const p = w.acquire({ timeoutMs: 5000 });
    await sleep(30);
    await env.member.expireSession(a!.id);
    assert.ok(await p);
    assert.deepEqual(lost, ['LOST']);
    await w.release();
  });
});
