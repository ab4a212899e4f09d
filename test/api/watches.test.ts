import assert from 'node:assert/strict';
import { CreateMode, type Session, type WatchEvent } from '../../src/index.js';
import { recorder, rejectsWith, settle, singleMember, text } from './helpers.js';

describe('api/watches: one-time watches follow the trigger table (SPEC §2)', () => {
  const ctx = singleMember();
  let a: Session;
  let b: Session;
  beforeEach(async () => {
    a = await ctx.member.session();
    b = await ctx.member.session();
    await b.create('/p');
    await b.create('/p/n', 'v0');
  });

  it('setData fires the getData watch on the node: NodeDataChanged', async () => {
    const w = recorder();
    await a.getData('/p/n', { watch: w });
    await b.setData('/p/n', 'v1');
    assert.deepEqual(w.list(), ['NodeDataChanged /p/n']);
  });

  it('setData fires the exists watch on the node: NodeDataChanged', async () => {
    const w = recorder();
    assert.ok(await a.exists('/p/n', { watch: w }));
    await b.setData('/p/n', 'v1');
    assert.deepEqual(w.list(), ['NodeDataChanged /p/n']);
  });

  it('setData does not fire child watches, on the node or on its parent', async () => {
    const onNode = recorder();
    const onParent = recorder();
    await a.getChildren('/p/n', { watch: onNode });
    await a.getChildren('/p', { watch: onParent });
    await b.setData('/p/n', 'v1');
    await b.setData('/p', 'parent data');
    await a.sync();
    assert.deepEqual(onNode.list(), []);
    assert.deepEqual(onParent.list(), []);
  });

  it('create fires the exists watch on the node (NodeCreated) and the child watch on the parent', async () => {
    const ex = recorder();
    const kids = recorder();
    const parentData = recorder();
    assert.equal(await a.exists('/p/m', { watch: ex }), null);
    await a.getChildren('/p', { watch: kids });
    await a.getData('/p', { watch: parentData });
    await b.create('/p/m');
    assert.deepEqual(ex.list(), ['NodeCreated /p/m']);
    assert.deepEqual(kids.list(), ['NodeChildrenChanged /p']);
    assert.deepEqual(parentData.list(), [], 'a child create does not change the parent\'s data');
  });

  it('delete fires data, exists and child watches on the node and the child watch on the parent', async () => {
    const data = recorder();
    const ex = recorder();
    const kids = recorder();
    const parentKids = recorder();
    await a.getData('/p/n', { watch: data });
    await a.exists('/p/n', { watch: ex });
    await a.getChildren('/p/n', { watch: kids });
    await a.getChildren('/p', { watch: parentKids });
    await b.delete('/p/n');
    assert.deepEqual(data.list(), ['NodeDeleted /p/n']);
    assert.deepEqual(ex.list(), ['NodeDeleted /p/n']);
    assert.deepEqual(kids.list(), ['NodeDeleted /p/n']);
    assert.deepEqual(parentKids.list(), ['NodeChildrenChanged /p']);
  });

  it('a child\'s data change does NOT fire the parent\'s child watch', async () => {
    const w = recorder();
    await a.getChildren('/p', { watch: w });
    await b.setData('/p/n', 'changed');
    await a.sync();
    assert.deepEqual(w.list(), []);
    await b.create('/p/o');
    assert.deepEqual(w.list(), ['NodeChildrenChanged /p']);
  });

  it('a grandchild\'s create does not fire the grandparent\'s child watch', async () => {
    const w = recorder();
    await a.getChildren('/p', { watch: w });
    await b.create('/p/n/deep');
    await a.sync();
    assert.deepEqual(w.list(), []);
  });

  it('a fired one-time watch does not fire again', async () => {
    const data = recorder();
    const kids = recorder();
    const ex = recorder();
    await a.getData('/p/n', { watch: data });
    await a.getChildren('/p', { watch: kids });
    await a.exists('/p/x', { watch: ex });
    await b.setData('/p/n', '1');
    await b.create('/p/x');
    await b.setData('/p/n', '2');
    await b.create('/p/y');
    await b.delete('/p/x');
    await b.delete('/p/n');
    assert.deepEqual(data.list(), ['NodeDataChanged /p/n']);
    assert.deepEqual(kids.list(), ['NodeChildrenChanged /p']);
    assert.deepEqual(ex.list(), ['NodeCreated /p/x']);
  });

  it('a watch can be set again after it fired, and fires again', async () => {
    const w = recorder();
    await a.getData('/p/n', { watch: w });
    await b.setData('/p/n', '1');
    await a.getData('/p/n', { watch: w });
    await b.setData('/p/n', '2');
    assert.deepEqual(w.list(), ['NodeDataChanged /p/n', 'NodeDataChanged /p/n']);
  });

  it('the same callback registered twice on one path fires once', async () => {
    const w = recorder();
    await a.getData('/p/n', { watch: w });
    await a.getData('/p/n', { watch: w });
    await a.exists('/p/n', { watch: w });
    await b.setData('/p/n', '1');
    assert.deepEqual(w.list(), ['NodeDataChanged /p/n']);
  });

  it('the same callback as data and child watch on a deleted node fires once', async () => {
    const w = recorder();
    await a.getData('/p/n', { watch: w });
    await a.getChildren('/p/n', { watch: w });
    await b.delete('/p/n');
    assert.deepEqual(w.list(), ['NodeDeleted /p/n']);
  });

  it('different callbacks on one path each fire', async () => {
    const w1 = recorder();
    const w2 = recorder();
    await a.getData('/p/n', { watch: w1 });
    await a.exists('/p/n', { watch: w2 });
    await b.setData('/p/n', '1');
    assert.deepEqual(w1.list(), ['NodeDataChanged /p/n']);
    assert.deepEqual(w2.list(), ['NodeDataChanged /p/n']);
  });

  it('watches of two sessions on one path both fire', async () => {
    const wa = recorder();
    const wb = recorder();
    await a.getData('/p/n', { watch: wa });
    await b.getData('/p/n', { watch: wb });
    await b.setData('/p/n', '1');
    assert.deepEqual(wa.list(), ['NodeDataChanged /p/n']);
    assert.deepEqual(wb.list(), ['NodeDataChanged /p/n']);
  });

  it('events carry type and path only, never the data', async () => {
    const w = recorder();
    await a.getData('/p/n', { watch: w });
    await b.setData('/p/n', 'secret');
    assert.equal(w.events.length, 1);
    assert.deepEqual(Object.keys(w.events[0]!).sort(), ['path', 'type']);
    assert.deepEqual(w.events[0], { type: 'NodeDataChanged', path: '/p/n' });
  });

  it('a getData or getChildren that fails with NONODE leaves no watch; exists on a missing node does', async () => {
    const data = recorder();
    const kids = recorder();
    const ex = recorder();
    await rejectsWith(a.getData('/p/missing', { watch: data }), 'NONODE');
    await rejectsWith(a.getChildren('/p/missing', { watch: kids }), 'NONODE');
    assert.equal(await a.exists('/p/missing', { watch: ex }), null);
    await b.create('/p/missing');
    await b.create('/p/missing/c');
    assert.deepEqual(data.list(), []);
    assert.deepEqual(kids.list(), []);
    assert.deepEqual(ex.list(), ['NodeCreated /p/missing']);
    const wchc = await ctx.member.admin('wchc');
    assert.deepEqual(wchc.sessions, {}, 'nothing left registered on the member');
  });

  it('a getData refused with NOAUTH leaves no watch', async () => {
    await b.create('/closed', 'x', { acl: [{ perms: 0, scheme: 'world', id: 'anyone' }] });
    const w = recorder();
    await rejectsWith(a.getData('/closed', { watch: w }), 'NOAUTH');
    assert.deepEqual((await ctx.member.admin('wchs')).totalWatches, 0);
  });

  it('ephemerals vanishing with their session fire NodeDeleted and NodeChildrenChanged', async () => {
    const c = await ctx.member.session();
    await c.create('/p/eph', '', { mode: CreateMode.EPHEMERAL });
    const data = recorder();
    const kids = recorder();
    await a.exists('/p/eph', { watch: data });
    await a.getChildren('/p', { watch: kids });
    await c.close();
    assert.deepEqual(data.list(), ['NodeDeleted /p/eph']);
    assert.deepEqual(kids.list(), ['NodeChildrenChanged /p']);
  });

  it('a multi fires the events of all its ops', async () => {
    const data = recorder();
    const kids = recorder();
    await a.getData('/p/n', { watch: data });
    await a.getChildren('/p', { watch: kids });
    await b.multi([
      { type: 'setData', path: '/p/n', data: new TextEncoder().encode('m'), version: -1 },
      { type: 'create', path: '/p/m', data: new Uint8Array(0), acl: [{ perms: 31, scheme: 'world', id: 'anyone' }], mode: 0, ttl: 0 },
    ]);
    assert.deepEqual(data.list(), ['NodeDataChanged /p/n']);
    assert.deepEqual(kids.list(), ['NodeChildrenChanged /p']);
  });

  it('a watcher that throws does not break delivery to the others', async () => {
    const w = recorder();
    const boom = (): void => {
      throw new Error('watcher bug');
    };
    const seen: unknown[] = [];
    const onUncaught = (e: unknown): void => {
      seen.push(e);
    };
    process.prependListener('uncaughtException', onUncaught);
    const mochaListeners = process.listeners('uncaughtException').filter((l) => l !== onUncaught);
    for (const l of mochaListeners) process.off('uncaughtException', l);
    try {
      await a.getData('/p/n', { watch: boom });
      await a.exists('/p/n', { watch: w });
      await b.setData('/p/n', 'x');
      await settle(5);
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const l of mochaListeners) process.on('uncaughtException', l);
    }
    assert.deepEqual(w.list(), ['NodeDataChanged /p/n']);
    assert.equal((seen[0] as Error | undefined)?.message, 'watcher bug', 'the error is rethrown, not swallowed');
    assert.equal((await a.getData('/p/n')).stat.version, 1);
  });
});

describe('api/watches: ordering (SPEC §2)', () => {
  const ctx = singleMember();
  let a: Session;
  let b: Session;
  beforeEach(async () => {
    a = await ctx.member.session();
    b = await ctx.member.session();
    for (const p of ['/x', '/y', '/z']) await b.create(p, '0');
  });

  it('the event is delivered before the result of a later read that shows the change', async () => {
    const log: string[] = [];
    await a.getData('/x', { watch: (ev) => log.push(`event ${ev.type}`) });
    const write = b.setData('/x', 'new');
    // Poll from the watching session until it sees the new data: the event must already be there.
    for (let i = 0; i < 100; i++) {
      const { data } = await a.getData('/x');
      if (text(data) === 'new') {
        log.push('read new');
        break;
      }
      await settle(0);
    }
    await write;
    assert.deepEqual(log, ['event NodeDataChanged', 'read new']);
  });

  it('a watch never fires before the caller has the result of the read that set it (no lost wakeup)', async () => {
    // Another session's delete is applied a few microtasks after the exists() below answered;
    // whatever the interleaving, the caller must see "exists" first, then the event.
    for (let k = 0; k < 8; k++) {
      await b.create('/race' + k);
      const log: string[] = [];
      const del = b.delete('/race' + k);
      for (let i = 0; i < k; i++) await null;
      const st = await a.exists('/race' + k, { watch: (ev) => log.push(ev.type) });
      log.push(st ? 'result: exists' : 'result: null');
      await del;
      await settle(2);
      assert.ok(
        log.length === 1 ? log[0] === 'result: null' : log[0] === 'result: exists' && log[1] === 'NodeDeleted',
        `interleaving ${k}: ${log.join(', ')}`,
      );
    }
  });

  it('the event reaches the writing session before its own write resolves', async () => {
    const log: string[] = [];
    await a.getData('/x', { watch: (ev) => log.push(`event ${ev.type} ${ev.path}`) });
    await a.setData('/x', 'mine').then(() => log.push('setData resolved'));
    assert.deepEqual(log, ['event NodeDataChanged /x', 'setData resolved']);
  });

  it('events reach a session in zxid order across paths', async () => {
    const got: string[] = [];
    const w = (ev: WatchEvent): void => {
      got.push(`${ev.type} ${ev.path}`);
    };
    await a.getData('/x', { watch: w });
    await a.getData('/y', { watch: w });
    await a.exists('/w', { watch: w });
    await a.getChildren('/', { watch: w });
    await a.getData('/z', { watch: w });
    // Pipelined, without awaiting in between: the zxid order is the order of issue.
    await Promise.all([b.setData('/z', '1'), b.setData('/x', '1'), b.create('/w'), b.delete('/y')]);
    assert.deepEqual(got, [
      'NodeDataChanged /z',
      'NodeDataChanged /x',
      'NodeCreated /w',
      'NodeChildrenChanged /',
      'NodeDeleted /y',
    ]);
  });

  it('events interleave with results in zxid order', async () => {
    const log: string[] = [];
    await a.getData('/x', { watch: (ev) => log.push(`event ${ev.path}`) });
    await a.getData('/y', { watch: (ev) => log.push(`event ${ev.path}`) });
    const p1 = a.setData('/z', 'a').then(() => log.push('result /z'));
    const p2 = b.setData('/x', 'b');
    const p3 = a.setData('/y', 'c').then(() => log.push('result /y'));
    await Promise.all([p1, p2, p3]);
    assert.deepEqual(log, ['result /z', 'event /x', 'event /y', 'result /y']);
  });
});

describe('api/watches: persistent and recursive watches (SPEC §2 beyond)', () => {
  const ctx = singleMember();
  let a: Session;
  let b: Session;
  beforeEach(async () => {
    a = await ctx.member.session();
    b = await ctx.member.session();
    await b.create('/cfg');
  });

  it('addWatch (persistent) sees every change of its node, including children changes, and keeps firing', async () => {
    const w = recorder();
    await a.addWatch('/cfg', w);
    await b.setData('/cfg', '1');
    await b.setData('/cfg', '2');
    await b.create('/cfg/c');
    await b.setData('/cfg/c', 'not mine');
    await b.delete('/cfg/c');
    await b.delete('/cfg');
    await b.create('/cfg');
    assert.deepEqual(w.list(), [
      'NodeDataChanged /cfg',
      'NodeDataChanged /cfg',
      'NodeChildrenChanged /cfg',
      'NodeChildrenChanged /cfg',
      'NodeDeleted /cfg',
      'NodeCreated /cfg',
    ]);
  });

  it('addWatch can be set on a node that does not exist yet', async () => {
    const w = recorder();
    await a.addWatch('/later', w);
    await b.create('/later');
    assert.deepEqual(w.list(), ['NodeCreated /later']);
  });

  it('the remover stops the watch and unregisters it on the member', async () => {
    const w = recorder();
    const remove = await a.addWatch('/cfg', w);
    assert.equal((await ctx.member.admin('wchs')).totalWatches, 1);
    await b.setData('/cfg', '1');
    await remove();
    await remove(); // idempotent
    await b.setData('/cfg', '2');
    assert.deepEqual(w.list(), ['NodeDataChanged /cfg']);
    assert.equal((await ctx.member.admin('wchs')).totalWatches, 0);
  });

  it('removing one of two persistent listeners on a path keeps the other', async () => {
    const w1 = recorder();
    const w2 = recorder();
    const r1 = await a.addWatch('/cfg', w1);
    await a.addWatch('/cfg', w2);
    await r1();
    await b.setData('/cfg', 'x');
    assert.deepEqual(w1.list(), []);
    assert.deepEqual(w2.list(), ['NodeDataChanged /cfg']);
  });

  it('a recursive watch sees creates, data changes and deletes at and below its path, and no NodeChildrenChanged', async () => {
    const w = recorder();
    await a.addWatch('/cfg', w, { recursive: true });
    await b.create('/cfg/a');
    await b.create('/cfg/a/b', 'x');
    await b.setData('/cfg/a/b', 'y');
    await b.setData('/cfg', 'top');
    await b.delete('/cfg/a/b');
    await b.create('/cfgx'); // shares a string prefix, but is not below /cfg
    await b.create('/other');
    assert.deepEqual(w.list(), [
      'NodeCreated /cfg/a',
      'NodeCreated /cfg/a/b',
      'NodeDataChanged /cfg/a/b',
      'NodeDataChanged /cfg',
      'NodeDeleted /cfg/a/b',
    ]);
  });

  it('a persistent watch and a one-time watch on one path each fire; the one-time one only once', async () => {
    const p = recorder();
    const once = recorder();
    await a.addWatch('/cfg', p);
    await a.getData('/cfg', { watch: once });
    await b.setData('/cfg', '1');
    await b.setData('/cfg', '2');
    assert.deepEqual(p.list(), ['NodeDataChanged /cfg', 'NodeDataChanged /cfg']);
    assert.deepEqual(once.list(), ['NodeDataChanged /cfg']);
  });

  it('removing a persistent watch leaves a one-time watch of the session on the same path working', async () => {
    const p = recorder();
    const once = recorder();
    const remove = await a.addWatch('/cfg', p);
    await a.getData('/cfg', { watch: once });
    await remove();
    await b.setData('/cfg', '1');
    assert.deepEqual(p.list(), []);
    assert.deepEqual(once.list(), ['NodeDataChanged /cfg']);
  });

  it('for await … of session.watch() yields events; breaking out removes the watch', async () => {
    const got: string[] = [];
    const loop = (async () => {
      for await (const ev of a.watch('/cfg', { recursive: true })) {
        got.push(`${ev.type} ${ev.path}`);
        if (got.length === 3) break;
      }
    })();
    // The watch is registered asynchronously; wait for it on the member.
    for (let i = 0; i < 50 && (await ctx.member.admin('wchs')).totalWatches === 0; i++) await settle(1);
    await b.create('/cfg/1');
    await b.setData('/cfg/1', 'x');
    await b.delete('/cfg/1');
    await loop;
    assert.deepEqual(got, ['NodeCreated /cfg/1', 'NodeDataChanged /cfg/1', 'NodeDeleted /cfg/1']);
    assert.equal((await ctx.member.admin('wchs')).totalWatches, 0, 'the iterator removed its watch');
  });

  it('session.watch() buffers events that arrive between iterations', async () => {
    const it = a.watch('/cfg')[Symbol.asyncIterator]();
    const first = it.next();
    for (let i = 0; i < 50 && (await ctx.member.admin('wchs')).totalWatches === 0; i++) await settle(1);
    await b.setData('/cfg', '1');
    await b.setData('/cfg', '2');
    await b.setData('/cfg', '3');
    assert.deepEqual((await first).value, { type: 'NodeDataChanged', path: '/cfg' });
    assert.deepEqual((await it.next()).value, { type: 'NodeDataChanged', path: '/cfg' });
    assert.deepEqual((await it.next()).value, { type: 'NodeDataChanged', path: '/cfg' });
    const r = await it.return!();
    assert.equal(r.done, true);
  });

  it('session.watch() ends when the session closes', async () => {
    const got: WatchEvent[] = [];
    const loop = (async () => {
      for await (const ev of a.watch('/cfg')) got.push(ev);
      return 'ended';
    })();
    for (let i = 0; i < 50 && (await ctx.member.admin('wchs')).totalWatches === 0; i++) await settle(1);
    await b.setData('/cfg', '1');
    await a.close();
    assert.equal(await loop, 'ended');
    assert.deepEqual(got, [{ type: 'NodeDataChanged', path: '/cfg' }]);
  });
});

describe('api/watches: dropped when the session ends (SPEC §2, §3)', () => {
  const ctx = singleMember();

  it('after close(): no events, nothing registered on the member', async () => {
    const a = await ctx.member.session();
    const b = await ctx.member.session();
    await b.create('/n');
    const one = recorder();
    const pers = recorder();
    await a.getData('/n', { watch: one });
    await a.getChildren('/', { watch: one });
    await a.addWatch('/', pers, { recursive: true });
    assert.equal((await ctx.member.admin('wchs')).totalWatches, 3);
    await a.close();
    assert.equal((await ctx.member.admin('wchs')).totalWatches, 0);
    await b.setData('/n', 'x');
    await b.create('/m');
    assert.deepEqual(one.list(), []);
    assert.deepEqual(pers.list(), []);
  });

  it('after expiry: no events, nothing registered on the member', async () => {
    const a = await ctx.member.session();
    const b = await ctx.member.session();
    await b.create('/n');
    const one = recorder();
    const pers = recorder();
    await a.getData('/n', { watch: one });
    await a.addWatch('/n', pers);
    const lost = new Promise<void>((r) => a.on('state', (s) => s === 'LOST' && r()));
    await ctx.member.expireSession(a.id);
    await lost;
    assert.equal(a.state, 'LOST');
    assert.equal((await ctx.member.admin('wchs')).totalWatches, 0);
    await b.setData('/n', 'x');
    assert.deepEqual(one.list(), []);
    assert.deepEqual(pers.list(), []);
  });
});

describe('api/watches: removeWatches (SPEC §2 beyond, ZooKeeper 3.5 removeWatches / removeAllWatches)', () => {
  const ctx = singleMember();
  const watchCount = async (): Promise<number> => Number((await ctx.member.admin('mntr')).zk_watch_count);

  it('removes one-time data and child watches: the callbacks never fire and the member forgets them', async () => {
    const s = await ctx.member.session();
    await s.create('/rw', 'x');
    const data = recorder();
    const child = recorder();
    await s.getData('/rw', { watch: data });
    await s.getChildren('/rw', { watch: child });
    assert.equal(await watchCount(), 2);
    await s.removeWatches('/rw', { type: 'data' });
    assert.equal(await watchCount(), 1, 'the member dropped the data registration');
    await s.setData('/rw', 'y');
    await s.create('/rw/c', '');
    await s.sync('/rw');
    await settle(10);
    assert.deepEqual(data.list(), [], 'a removed data watch does not fire');
    assert.deepEqual(child.list(), ['NodeChildrenChanged /rw'], 'the child watch was left alone');
    await s.close();
  });

  it('with a watcher, only that callback goes; the registration stays while another callback of its kind is left', async () => {
    const s = await ctx.member.session();
    await s.create('/rw2', 'x');
    const a = recorder();
    const b = recorder();
    await s.getData('/rw2', { watch: a });
    await s.exists('/rw2', { watch: b });
    await s.removeWatches('/rw2', { type: 'data', watcher: a });
    assert.equal(await watchCount(), 1, 'b still needs the data registration');
    await s.setData('/rw2', 'y');
    await s.sync('/rw2');
    await settle(10);
    assert.deepEqual(a.list(), []);
    assert.deepEqual(b.list(), ['NodeDataChanged /rw2']);
    await s.close();
  });

  it('removes persistent and recursive watches with type persistent; any removes every kind', async () => {
    const s = await ctx.member.session();
    await s.create('/rw3', '');
    const p = recorder();
    const r = recorder();
    const d = recorder();
    await s.addWatch('/rw3', p);
    await s.addWatch('/rw3', r, { recursive: true });
    await s.getData('/rw3', { watch: d });
    await s.removeWatches('/rw3', { type: 'persistent' });
    assert.equal(await watchCount(), 1);
    await s.removeWatches('/rw3');
    assert.equal(await watchCount(), 0);
    await s.setData('/rw3', 'v');
    await s.create('/rw3/k', '');
    await s.sync('/rw3');
    await settle(10);
    assert.deepEqual([...p.list(), ...r.list(), ...d.list()], []);
    await s.close();
  });

  it('NOWATCHER when there is no such watch, BADARGUMENTS for a bad type or path; nothing changes', async () => {
    const s = await ctx.member.session();
    await s.create('/rw4', '');
    const d = recorder();
    await s.getData('/rw4', { watch: d });
    await rejectsWith(s.removeWatches('/rw4', { type: 'child' }), 'NOWATCHER', '/rw4');
    await rejectsWith(s.removeWatches('/rw4', { type: 'data', watcher: recorder() }), 'NOWATCHER', '/rw4');
    await rejectsWith(s.removeWatches('/none'), 'NOWATCHER', '/none');
    await rejectsWith(s.removeWatches('/rw4', { type: 'bogus' as 'data' }), 'BADARGUMENTS');
    await rejectsWith(s.removeWatches('rw4'), 'BADARGUMENTS');
    assert.equal(await watchCount(), 1);
    await s.setData('/rw4', 'v');
    await s.sync('/rw4');
    await settle(10);
    assert.deepEqual(d.list(), ['NodeDataChanged /rw4'], 'the watch that was asked about wrongly still fires');
    await s.close();
  });

  it('local: true forgets the callbacks here only; the member keeps its registration until it fires', async () => {
    const s = await ctx.member.session();
    await s.create('/rw5', '');
    const d = recorder();
    await s.getData('/rw5', { watch: d });
    await s.removeWatches('/rw5', { local: true });
    assert.equal(await watchCount(), 1, 'still registered on the member');
    await s.setData('/rw5', 'v');
    await s.sync('/rw5');
    await settle(10);
    assert.deepEqual(d.list(), []);
    assert.equal(await watchCount(), 0, 'fired (into nothing) and gone');
    await s.close();
  });
});
