import assert from 'node:assert/strict';
import { NodeCache, PathChildrenCache, TreeCache, type PathChildrenCacheEvent, type TreeCacheEvent } from '../../src/api/recipes/index.js';
import type { Member } from '../../src/api/member.js';
import type { Session } from '../../src/api/session.js';
import type { SessionState } from '../../src/api/types.js';
import { eventually, sessionsOf, single, sleep, type Single } from './helpers.js';
import { cacheSnapshot, randomChanges, snapshotTree, text } from './shared.js';

/** What the member itself does to a session's watches when it stops and starts serving. */
function suspendWatches(member: Member, s: Session): void {
  member.watches.removeSession(s.id);
  (s as unknown as { _setState(x: SessionState): void })._setState('SUSPENDED');
}
function resumeWatches(member: Member, s: Session, recursive: string[]): void {
  for (const p of recursive) member.watches.add('recursive', p, s.id);
  (s as unknown as { _setState(x: SessionState): void })._setState('RECONNECTED');
}

describe('recipes/TreeCache', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('loads the initial tree (NODE_ADDED for each node, then INITIALIZED) and follows changes', async () => {
    const [w, c] = await sessionsOf(env, 2);
    await w!.create('/t/a/x', '1', { parents: true });
    await w!.create('/t/b', '2');
    const events: string[] = [];
    const cache = new TreeCache(c!, '/t');
    cache.on('event', (e: TreeCacheEvent) => events.push(`${e.type} ${e.data?.path ?? ''}`.trim()));
    await cache.start();
    assert.deepEqual(events.slice(-1), ['INITIALIZED']);
    assert.deepEqual(events.slice(0, -1).sort(), ['NODE_ADDED /t', 'NODE_ADDED /t/a', 'NODE_ADDED /t/a/x', 'NODE_ADDED /t/b']);
    assert.equal(text(cache.getCurrentData('/t/a/x')!.data), '1');
    assert.deepEqual([...cache.getCurrentChildren('/t')!.keys()], ['a', 'b']);
    events.length = 0;
    await w!.setData('/t/b', 'two');
    await w!.create('/t/b/y', 'new');
    await w!.delete('/t/a/x');
    await eventually(() => events.length === 3, 'three events');
    assert.deepEqual(events, ['NODE_UPDATED /t/b', 'NODE_ADDED /t/b/y', 'NODE_REMOVED /t/a/x']);
    assert.equal(text(cache.getCurrentData('/t/b')!.data), 'two');
    await cache.close();
  });

  it('converges to the tree after random concurrent changes by 4 sessions (compared with a fresh read)', async () => {
    const sessions = await sessionsOf(env, 5);
    const [c, ...writers] = sessions;
    await c!.create('/conv');
    const cache = new TreeCache(c!, '/conv');
    const model = new Map<string, string>();
    cache.on('event', (e: TreeCacheEvent) => {
      if (e.type === 'NODE_ADDED' || e.type === 'NODE_UPDATED') model.set(e.data!.path, `${text(e.data!.data)}|${e.data!.stat.czxid}|${e.data!.stat.mzxid}`);
      if (e.type === 'NODE_REMOVED') model.delete(e.data!.path);
    });
    await cache.start();
    await randomChanges(writers, '/conv', 150, 7);
    await cache.settled();
    const fresh = await snapshotTree(c!, '/conv');
    assert.ok(fresh.size > 3, `tree too small (${fresh.size})`);
    assert.deepEqual(cacheSnapshot(cache), fresh);
    assert.deepEqual(new Map([...model].sort()), new Map([...fresh].sort()), 'the event stream replays to the same tree');
    await cache.close();
  });

  it('respects maxDepth', async () => {
    const [w, c] = await sessionsOf(env, 2);
    await w!.create('/d/1/2/3', 'deep', { parents: true });
    const cache = new TreeCache(c!, '/d', { maxDepth: 1 });
    await cache.start();
    assert.deepEqual(cache.paths(), ['/d', '/d/1']);
    await w!.create('/d/1/2/4');
    await w!.create('/d/x');
    await eventually(() => cache.paths().includes('/d/x'), '/d/x');
    await sleep(20);
    assert.deepEqual(cache.paths(), ['/d', '/d/1', '/d/x']);
    await cache.close();
  });

  it('reports a delete + re-create that happened while disconnected (czxid), and other missed changes', async () => {
    const [w, c] = await sessionsOf(env, 2);
    await w!.create('/r/keep', 'k', { parents: true });
    await w!.create('/r/gone', 'g');
    await w!.create('/r/again', 'v1');
    const cache = new TreeCache(c!, '/r');
    const events: string[] = [];
    cache.on('event', (e: TreeCacheEvent) => events.push(`${e.type} ${e.data?.path ?? ''}`.trim()));
    await cache.start();
    events.length = 0;
    suspendWatches(env.member, c!);
    await w!.delete('/r/again');
    await w!.create('/r/again', 'v2');
    await w!.delete('/r/gone');
    await w!.create('/r/new', 'n');
    await sleep(20);
    assert.deepEqual(events, ['CONNECTION_SUSPENDED'], 'nothing seen while disconnected');
    resumeWatches(env.member, c!, ['/r']);
    await eventually(() => events.length >= 5, 'resync events');
    await cache.settled();
    assert.deepEqual(events.slice(1).sort(), ['CONNECTION_RECONNECTED', 'NODE_ADDED /r/again', 'NODE_ADDED /r/new', 'NODE_REMOVED /r/again', 'NODE_REMOVED /r/gone'].sort());
    assert.ok(events.indexOf('NODE_REMOVED /r/again') < events.indexOf('NODE_ADDED /r/again'));
    assert.equal(text(cache.getCurrentData('/r/again')!.data), 'v2');
    assert.deepEqual(cacheSnapshot(cache), await snapshotTree(c!, '/r'));
    // and the re-registered watch keeps working
    await w!.setData('/r/keep', 'k2');
    await eventually(() => events.includes('NODE_UPDATED /r/keep'), 'update after resync');
    await cache.close();
  });
});

describe('recipes/PathChildrenCache', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  const record = (cache: PathChildrenCache): string[] => {
    const events: string[] = [];
    cache.on('event', (e: PathChildrenCacheEvent) => events.push(`${e.type} ${e.data?.path ?? ''}`.trim()));
    return events;
  };

  it('NORMAL: initial children as CHILD_ADDED, no INITIALIZED; then added/updated/removed; grandchildren ignored', async () => {
    const [w, c] = await sessionsOf(env, 2);
    await w!.create('/p/a', 'A', { parents: true });
    const cache = new PathChildrenCache(c!, '/p');
    const events = record(cache);
    await cache.start('NORMAL');
    assert.deepEqual(events, ['CHILD_ADDED /p/a']);
    await w!.create('/p/b', 'B');
    await w!.setData('/p/a', 'A2');
    await w!.create('/p/a/deeper', 'x');
    await w!.delete('/p/b');
    await eventually(() => events.length === 4, '4 events');
    await sleep(20);
    assert.deepEqual(events, ['CHILD_ADDED /p/a', 'CHILD_ADDED /p/b', 'CHILD_UPDATED /p/a', 'CHILD_REMOVED /p/b']);
    assert.deepEqual(cache.getCurrentData().map((d) => [d.path, text(d.data)]), [['/p/a', 'A2']]);
    assert.equal(text(cache.getCurrentData('/p/a')!.data), 'A2');
    await cache.close();
  });

  it('BUILD_INITIAL_CACHE: primed before start() resolves, without events', async () => {
    const [w, c] = await sessionsOf(env, 2);
    for (const n of ['x', 'y', 'z']) await w!.create(`/p2/${n}`, n, { parents: true });
    const cache = new PathChildrenCache(c!, '/p2');
    const events = record(cache);
    await cache.start('BUILD_INITIAL_CACHE');
    assert.deepEqual(events, []);
    assert.deepEqual(cache.getCurrentData().map((d) => d.path), ['/p2/x', '/p2/y', '/p2/z']);
    await w!.delete('/p2/y');
    await eventually(() => events.length === 1, 'removal');
    assert.deepEqual(events, ['CHILD_REMOVED /p2/y']);
    await cache.close();
  });

  it('POST_INITIALIZED_EVENT: CHILD_ADDED for the initial children, then INITIALIZED with them', async () => {
    const [w, c] = await sessionsOf(env, 2);
    for (const n of ['x', 'y']) await w!.create(`/p3/${n}`, n, { parents: true });
    const cache = new PathChildrenCache(c!, '/p3');
    let initial: string[] = [];
    cache.on('event', (e: PathChildrenCacheEvent) => {
      if (e.type === 'INITIALIZED') initial = e.initialData!.map((d) => d.path);
    });
    const events = record(cache);
    await cache.start('POST_INITIALIZED_EVENT');
    assert.deepEqual(events, ['CHILD_ADDED /p3/x', 'CHILD_ADDED /p3/y', 'INITIALIZED']);
    assert.deepEqual(initial, ['/p3/x', '/p3/y']);
    await cache.close();
  });

  it('cacheData: false keeps only stats', async () => {
    const [w, c] = await sessionsOf(env, 2);
    await w!.create('/p4/x', 'secret', { parents: true });
    const cache = new PathChildrenCache(c!, '/p4', { cacheData: false });
    await cache.start('BUILD_INITIAL_CACHE');
    const d = cache.getCurrentData('/p4/x')!;
    assert.equal(d.data, undefined);
    assert.equal(d.stat.dataLength, 6);
    await cache.close();
  });

  it('a cache on a missing parent fills in once the parent is created', async () => {
    const [w, c] = await sessionsOf(env, 2);
    const cache = new PathChildrenCache(c!, '/later');
    const events = record(cache);
    await cache.start();
    assert.deepEqual(cache.getCurrentData(), []);
    await w!.create('/later/k', 'v', { parents: true });
    await eventually(() => events.includes('CHILD_ADDED /later/k'), 'child');
    await cache.close();
  });
});

describe('recipes/NodeCache', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('reports creation, changes and deletion of one node; ignores its children', async () => {
    const [w, c] = await sessionsOf(env, 2);
    const cache = new NodeCache(c!, '/n');
    const seen: (string | undefined)[] = [];
    cache.on('nodeChanged', (d) => seen.push(d ? text(d.data) : undefined));
    await cache.start();
    assert.equal(cache.getCurrentData(), undefined);
    await w!.create('/n', 'one');
    await eventually(() => seen.length === 1, 'created');
    await w!.setData('/n', 'two');
    await w!.create('/n/child', 'x');
    await eventually(() => seen.length === 2, 'changed');
    await w!.delete('/n/child');
    await w!.delete('/n');
    await eventually(() => seen.length === 3, 'deleted');
    await sleep(20);
    assert.deepEqual(seen, ['one', 'two', undefined]);
    await w!.create('/n', 'three');
    const c2 = new NodeCache(c!, '/n');
    let quiet = 0;
    c2.on('nodeChanged', () => quiet++);
    await c2.start(true);
    assert.equal(quiet, 0);
    assert.equal(text(c2.getCurrentData()!.data), 'three');
    await cache.close();
    await c2.close();
  });
});
