import assert from 'node:assert/strict';
import { CreateMode, KeeperError, op, type Session } from '../../src/index.js';
import { recorder, rejectsWith, singleMember, text } from './helpers.js';

describe('api/multi: atomic transactions (SPEC §1, API multi)', () => {
  const ctx = singleMember();
  let s: Session;
  beforeEach(async () => {
    s = await ctx.member.session();
    await s.create('/a', 'v0');
  });

  it('returns one result per op, typed by op', async () => {
    const results = await s.multi([
      op.create('/b', 'b'),
      op.setData('/a', 'v1', 0),
      op.check('/a', 1),
      op.delete('/b'),
    ]);
    const stat = (await s.exists('/a'))!;
    assert.deepEqual(results, [
      { type: 'create', path: '/b' },
      { type: 'setData', stat },
      { type: 'check' },
      { type: 'delete' },
    ]);
    assert.equal(text((await s.getData('/a')).data), 'v1');
    assert.equal(await s.exists('/b'), null);
  });

  it('applies all ops under one zxid', async () => {
    const before = ctx.member.lastZxid;
    await s.multi([op.create('/x'), op.create('/y'), op.setData('/a', 'z')]);
    assert.equal(ctx.member.lastZxid, before + 1n);
    const zx = (await s.exists('/x'))!.czxid;
    assert.equal(zx, before + 1n);
    assert.equal((await s.exists('/y'))!.czxid, zx);
    assert.equal((await s.exists('/a'))!.mzxid, zx);
  });

  it('is all or nothing: a failing op rolls everything back; .results say OK / the code / RUNTIMEINCONSISTENCY', async () => {
    const digest = ctx.member.tree.digest();
    const e = await rejectsWith(
      s.multi([op.create('/b'), op.setData('/a', 'v1'), op.delete('/missing'), op.create('/c'), op.check('/a', 0)]),
      'NONODE',
    );
    assert.equal(e.path, '/missing');
    assert.deepEqual(e.results, [
      { type: 'error', code: 'OK' },
      { type: 'error', code: 'OK' },
      { type: 'error', code: 'NONODE' },
      { type: 'error', code: 'RUNTIMEINCONSISTENCY' },
      { type: 'error', code: 'RUNTIMEINCONSISTENCY' },
    ]);
    assert.equal(await s.exists('/b'), null);
    assert.equal(await s.exists('/c'), null);
    assert.equal((await s.exists('/a'))!.version, 0);
    assert.equal(text((await s.getData('/a')).data), 'v0');
    assert.equal(ctx.member.tree.digest(), digest);
  });

  it('the failing op may be the first or the last', async () => {
    const first = await rejectsWith(s.multi([op.create('/a'), op.create('/b')]), 'NODEEXISTS');
    assert.deepEqual(first.results!.map((r) => (r as { code: string }).code), ['NODEEXISTS', 'RUNTIMEINCONSISTENCY']);
    const last = await rejectsWith(s.multi([op.create('/b'), op.check('/a', 3)]), 'BADVERSION');
    assert.deepEqual(last.results!.map((r) => (r as { code: string }).code), ['OK', 'BADVERSION']);
    assert.equal(await s.exists('/b'), null);
  });

  it('check ops: pass on the current version (or -1), fail with BADVERSION or NONODE', async () => {
    assert.deepEqual(await s.multi([op.check('/a', 0)]), [{ type: 'check' }]);
    assert.deepEqual(await s.multi([op.check('/a', -1)]), [{ type: 'check' }]);
    await rejectsWith(s.multi([op.check('/a', 1)]), 'BADVERSION');
    await rejectsWith(s.multi([op.check('/nope', -1)]), 'NONODE');
  });

  it('check guards a write: compare-and-set across two nodes', async () => {
    await s.create('/lock', 'owner');
    const lockVersion = (await s.exists('/lock'))!.version;
    await s.multi([op.check('/lock', lockVersion), op.setData('/a', 'guarded')]);
    await s.setData('/lock', 'someone else');
    await rejectsWith(s.multi([op.check('/lock', lockVersion), op.setData('/a', 'stale')]), 'BADVERSION');
    assert.equal(text((await s.getData('/a')).data), 'guarded');
  });

  it('later ops see earlier ones: create a parent then its child', async () => {
    const r = await s.multi([op.create('/p'), op.create('/p/c', 'c'), op.create('/p/c/d')]);
    assert.deepEqual(r.map((x) => (x as { path: string }).path), ['/p', '/p/c', '/p/c/d']);
    assert.equal((await s.exists('/p'))!.numChildren, 1);
  });

  it('later ops see earlier ones: delete then re-create, setData then check the new version', async () => {
    const before = (await s.exists('/a'))!;
    await s.multi([op.delete('/a', 0), op.create('/a', 'reborn'), op.setData('/a', 'again', 0), op.check('/a', 1)]);
    const after = (await s.exists('/a'))!;
    assert.ok(after.czxid > before.czxid);
    assert.equal(after.version, 1);
    assert.equal(text((await s.getData('/a')).data), 'again');
  });

  it('later ops see earlier ones: a delete makes the parent deletable, a create makes it not', async () => {
    await s.create('/p');
    await s.create('/p/c');
    await s.multi([op.delete('/p/c'), op.delete('/p')]);
    assert.equal(await s.exists('/p'), null);
    await rejectsWith(s.multi([op.create('/p'), op.create('/p/c'), op.delete('/p')]), 'NOTEMPTY');
    assert.equal(await s.exists('/p'), null);
  });

  it('an empty multi succeeds with no results', async () => {
    assert.deepEqual(await s.multi([]), []);
  });

  it('sequential and ephemeral creates inside a multi', async () => {
    await s.create('/q');
    const r = await s.multi([
      op.create('/q/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL }),
      op.create('/q/e-', '', { mode: CreateMode.EPHEMERAL_SEQUENTIAL }),
    ]);
    assert.deepEqual(r, [{ type: 'create', path: '/q/n-0000000000' }, { type: 'create', path: '/q/e-0000000001' }]);
    assert.equal((await s.exists('/q/e-0000000001'))!.ephemeralOwner, s.id);
    assert.deepEqual(await s.getEphemerals('/q'), ['/q/e-0000000001']);
  });

  it('a failed multi fires no watch; a successful one fires them all', async () => {
    const o = await ctx.member.session();
    const data = recorder();
    const kids = recorder();
    await o.getData('/a', { watch: data });
    await o.getChildren('/', { watch: kids });
    await rejectsWith(s.multi([op.setData('/a', 'x'), op.create('/n'), op.check('/a', 42)]), 'BADVERSION');
    await o.sync();
    assert.deepEqual(data.list(), []);
    assert.deepEqual(kids.list(), []);
    await s.multi([op.setData('/a', 'x'), op.create('/n')]);
    assert.deepEqual(data.list(), ['NodeDataChanged /a']);
    assert.deepEqual(kids.list(), ['NodeChildrenChanged /']);
  });

  it('ACLs are checked per op: NOAUTH rolls back the whole multi', async () => {
    await s.create('/ro', '', { acl: [{ perms: 1, scheme: 'world', id: 'anyone' }] });
    const e = await rejectsWith(s.multi([op.create('/ok'), op.setData('/ro', 'x')]), 'NOAUTH');
    assert.deepEqual(e.results!.map((r) => (r as { code: string }).code), ['OK', 'NOAUTH']);
    assert.equal(await s.exists('/ok'), null);
  });

  it('a malformed op is refused before anything is proposed, with results', async () => {
    const zxid = ctx.member.lastZxid;
    const e = await rejectsWith(s.multi([op.create('/fine'), op.create('bad path')]), 'BADARGUMENTS');
    assert.ok(e instanceof KeeperError);
    assert.deepEqual(e.results, [{ type: 'error', code: 'OK' }, { type: 'error', code: 'BADARGUMENTS' }]);
    assert.equal(ctx.member.lastZxid, zxid);
  });

  it('NOCHILDRENFOREPHEMERALS and NODEEXISTS inside a multi, on nodes the multi itself created', async () => {
    await rejectsWith(s.multi([op.create('/e', '', { mode: CreateMode.EPHEMERAL }), op.create('/e/c')]), 'NOCHILDRENFOREPHEMERALS');
    await rejectsWith(s.multi([op.create('/twice'), op.create('/twice')]), 'NODEEXISTS');
    assert.equal(await s.exists('/e'), null);
    assert.equal(await s.exists('/twice'), null);
  });
});
