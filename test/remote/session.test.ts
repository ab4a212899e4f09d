import assert from 'node:assert/strict';
import {
  connect, CreateMode, digest, Ids, KeeperError, op, Perms, type Session,
} from '../../src/index.js';
import { recorder, rejectsWith } from '../api/helpers.js';
import { sleep, tcpEnsemble, waitFor, type TcpEnsemble } from './helpers.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('remote sessions: operations over TCP behave like local ones (SPEC §3, §9)', function () {
  this.timeout(30_000);
  let ens: TcpEnsemble;
  let s: Session;
  before(async () => {
    ens = await tcpEnsemble({ size: 3 });
  });
  after(async () => {
    await ens.stopAll();
  });
  beforeEach(async () => {
    s = await connect(ens.all(), { sessionTimeoutMs: 3000 });
  });
  afterEach(async () => {
    if (s.state !== 'CLOSED' && s.state !== 'LOST') await s.close();
  });

  it('connects to a member and negotiates the timeout; the session is in the replicated table', async () => {
    assert.equal(s.state, 'CONNECTED');
    assert.equal(s.timeoutMs, 3000);
    for (const m of ens.members.values()) await waitFor(() => m!.tree.sessions.has(s.id), 2000, 'the session on every member');
    const entry = ens.member(1).tree.sessions.get(s.id)!;
    assert.equal(entry.origin, '127.0.0.1');
  });

  it('create / getData / setData / exists / getChildren / delete, with stats and typed errors', async () => {
    assert.equal(await s.create('/r', 'root'), '/r');
    assert.equal(await s.create('/r/a', 'A'), '/r/a');
    const seq = await s.create('/r/q-', 'x', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    assert.match(seq, /^\/r\/q-\d{10}$/);
    const got = await s.getData('/r/a');
    assert.equal(text(got.data), 'A');
    assert.equal(got.stat.version, 0);
    assert.equal(typeof got.stat.czxid, 'bigint');
    const st = await s.setData('/r/a', 'B', { version: 0 });
    assert.equal(st.version, 1);
    await rejectsWith(s.setData('/r/a', 'C', { version: 0 }), 'BADVERSION', '/r/a');
    assert.equal((await s.exists('/r/a'))!.version, 1);
    assert.equal(await s.exists('/r/none'), null);
    assert.deepEqual(await s.getChildren('/r'), ['a', seq.slice(3)]);
    const cs = await s.getChildrenAndStat('/r');
    assert.equal(cs.stat.numChildren, 2);
    assert.equal(await s.getAllChildrenNumber('/r'), 2);
    await rejectsWith(s.create('/r/a'), 'NODEEXISTS', '/r/a');
    await rejectsWith(s.getData('/r/none'), 'NONODE', '/r/none');
    await rejectsWith(s.delete('/r'), 'NOTEMPTY', '/r');
    await rejectsWith(s.create('no-slash'), 'BADARGUMENTS');
    await rejectsWith(s.getData('/bad/'), 'BADARGUMENTS');
    await s.deleteAll('/r');
    assert.equal(await s.exists('/r'), null);
  });

  it('multi is atomic; a failure carries the per-op results', async () => {
    const r = await s.multi([op.create('/m1', 'a'), op.create('/m1/c'), op.setData('/m1', 'b'), op.check('/m1', 1)]);
    assert.deepEqual(r.map((x) => x.type), ['create', 'create', 'setData', 'check']);
    const e = await rejectsWith(s.multi([op.create('/m2'), op.delete('/missing')]), 'NONODE', '/missing');
    assert.deepEqual(e.results, [{ type: 'error', code: 'OK' }, { type: 'error', code: 'NONODE' }]);
    assert.equal(await s.exists('/m2'), null);
    await s.deleteAll('/m1');
  });

  it('ephemerals belong to the session: visible to others, listed by getEphemerals, gone after close', async () => {
    await s.create('/eph', 'e', { mode: CreateMode.EPHEMERAL });
    await s.create('/eph2', '', { mode: CreateMode.EPHEMERAL });
    assert.deepEqual(await s.getEphemerals('/eph'), ['/eph', '/eph2']);
    await rejectsWith(s.create('/eph/child'), 'NOCHILDRENFOREPHEMERALS');
    const local = await ens.member(2).session();
    await local.sync();
    assert.equal((await local.exists('/eph'))!.ephemeralOwner, s.id);
    await s.close();
    assert.equal(s.state, 'CLOSED');
    await local.sync();
    assert.equal(await local.exists('/eph'), null);
    await rejectsWith(s.getData('/'), 'SESSIONEXPIRED');
    await local.close();
  });

  it('watches fire over the connection, in zxid order with results, set by getData / exists / getChildren', async () => {
    await s.create('/w', 'v0');
    const data = recorder();
    const child = recorder();
    const exist = recorder();
    await s.getData('/w', { watch: data });
    await s.getChildren('/w', { watch: child });
    await s.exists('/w/new', { watch: exist });
    const other = await ens.member(ens.followers()[0]!.id).session();
    await other.setData('/w', 'v1');
    await other.create('/w/new');
    await s.sync();
    // The events arrived before the sync's answer, which follows the writes.
    assert.deepEqual(data.list(), ['NodeDataChanged /w']);
    assert.deepEqual(exist.list(), ['NodeCreated /w/new']);
    assert.deepEqual(child.list(), ['NodeChildrenChanged /w']);
    // One-time: a second change does not fire again.
    await other.setData('/w', 'v2');
    await s.sync();
    assert.equal(data.list().length, 1);
    await other.close();
    await s.deleteAll('/w');
  });

  it('a session sees the event of its own write before the write resolves', async () => {
    await s.create('/own', '0');
    const seen: string[] = [];
    await s.getData('/own', { watch: (e) => seen.push(`event ${e.type}`) });
    await s.setData('/own', '1').then(() => seen.push('setData resolved'));
    assert.deepEqual(seen, ['event NodeDataChanged', 'setData resolved']);
    await s.delete('/own');
  });

  it('persistent recursive watches and the async iterator work remotely; removal unregisters on the member', async () => {
    await s.create('/pr', '');
    const rec = recorder();
    const remove = await s.addWatch('/pr', rec, { recursive: true });
    await s.create('/pr/a', '');
    await s.setData('/pr/a', 'x');
    await s.delete('/pr/a');
    await s.sync();
    assert.deepEqual(rec.list(), ['NodeCreated /pr/a', 'NodeDataChanged /pr/a', 'NodeDeleted /pr/a']);
    await remove();
    const m = [...ens.members.values()].find((x) => x!.localSessionsReport().some((r) => r.id === s.id))!;
    assert.deepEqual(m.watches.sessionWatches(s.id), []);
    const it = s.watch('/pr')[Symbol.asyncIterator]();
    const next = it.next();
    await sleep(20);
    await s.setData('/pr', 'y');
    assert.deepEqual((await next).value, { type: 'NodeDataChanged', path: '/pr' });
    await it.return!();
    await s.delete('/pr');
  });

  it('removeWatches works remotely: one-time data and child watches are forgotten by the member', async () => {
    await s.create('/rmw', '');
    const d = recorder();
    const c = recorder();
    await s.getData('/rmw', { watch: d });
    await s.getChildren('/rmw', { watch: c });
    const m = [...ens.members.values()].find((x) => x!.localSessionsReport().some((r) => r.id === s.id))!;
    assert.deepEqual(m.watches.sessionWatches(s.id).map((w) => w.kind).sort(), ['child', 'data']);
    await s.removeWatches('/rmw', { type: 'data' });
    assert.deepEqual(m.watches.sessionWatches(s.id).map((w) => w.kind), ['child']);
    await s.removeWatches('/rmw', { type: 'child', watcher: c });
    assert.deepEqual(m.watches.sessionWatches(s.id), []);
    await s.setData('/rmw', 'x');
    await s.create('/rmw/k', '');
    await s.sync();
    assert.deepEqual([...d.list(), ...c.list()], []);
    await rejectsWith(s.removeWatches('/rmw'), 'NOWATCHER', '/rmw');
    await s.deleteAll('/rmw');
  });

  it('ACLs and digest auth: auth at connect and addAuth later; getACL hides hashes without ADMIN', async () => {
    const alice = digest('alice', 'pw');
    await s.create('/secret', 'x', { acl: [{ perms: Perms.ALL, scheme: 'digest', id: alice }] });
    await rejectsWith(s.getData('/secret'), 'NOAUTH', '/secret');
    const a = await connect(ens.all(), { sessionTimeoutMs: 3000, auth: [{ scheme: 'digest', credentials: 'alice:pw' }] });
    assert.equal(text((await a.getData('/secret')).data), 'x');
    await s.addAuth('digest', 'alice:pw');
    assert.equal(text((await s.getData('/secret')).data), 'x');
    await rejectsWith(s.addAuth('kerberos', 'x'), 'AUTHFAILED');
    await s.create('/hashes', '', { acl: [{ perms: Perms.READ, scheme: 'digest', id: alice }, { perms: Perms.READ, scheme: 'world', id: 'anyone' }] });
    assert.deepEqual((await s.getACL('/hashes')).acl.map((x) => x.id), ['alice:x', 'anyone']);
    await s.create('/ro', '', { acl: Ids.READ_ACL_UNSAFE });
    await rejectsWith(s.setData('/ro', 'x'), 'NOAUTH', '/ro');
    await a.delete('/secret');
    await a.close();
    await rejectsWith(connect(ens.all(), { auth: [{ scheme: 'digest', credentials: 'no-colon' }] }), 'AUTHFAILED');
  });

  it('the ip scheme matches the client address, with CIDR ranges (SPEC §4)', async () => {
    await s.create('/ip-ok', 'yes', { acl: [{ perms: Perms.READ | Perms.WRITE, scheme: 'ip', id: '127.0.0.0/8' }] });
    assert.equal(text((await s.getData('/ip-ok')).data), 'yes');
    await s.setData('/ip-ok', 'still');
    await rejectsWith(s.create('/ip-ok/child'), 'NOAUTH', '/ip-ok/child');
    await s.create('/ip-exact', 'e', { acl: [{ perms: Perms.READ, scheme: 'ip', id: '127.0.0.1' }] });
    assert.equal(text((await s.getData('/ip-exact')).data), 'e');
    await s.create('/ip-other', 'no', { acl: [{ perms: Perms.ALL, scheme: 'ip', id: '10.0.0.0/8' }] });
    await rejectsWith(s.getData('/ip-other'), 'NOAUTH', '/ip-other');
    await rejectsWith(s.setData('/ip-other', 'x'), 'NOAUTH', '/ip-other');
    await rejectsWith(s.create('/ip-bad', '', { acl: [{ perms: Perms.ALL, scheme: 'ip', id: '10.0.0.0/33' }] }), 'INVALIDACL');
    const acl = await s.getACL('/ip-ok');
    assert.deepEqual(acl.acl, [{ perms: Perms.READ | Perms.WRITE, scheme: 'ip', id: '127.0.0.0/8' }]);
  });

  it('bad input from the caller is refused with a typed error and the session keeps working', async () => {
    await rejectsWith(s.create('/x', 5 as unknown as string), 'BADARGUMENTS');
    await rejectsWith(s.setData('/zookeeper/config', 'x'), 'BADARGUMENTS');
    await rejectsWith(s.create('/big', new Uint8Array(1024 * 1024 + 1)), 'BADARGUMENTS', '/big');
    await rejectsWith(s.getEphemerals('nope'), 'BADARGUMENTS');
    await rejectsWith(s.create('/acl', '', { acl: [{ perms: 99, scheme: 'world', id: 'anyone' }] }), 'INVALIDACL');
    await rejectsWith(s.getData(42 as unknown as string), 'BADARGUMENTS');
    // Once stopped the leader (its prep described the entry with JSON.stringify): found by the fuzz test.
    const bigPerms = [{ perms: 31n as unknown as number, scheme: 'world', id: 'anyone' }];
    await rejectsWith(s.create('/bigperm', '', { acl: bigPerms }), 'INVALIDACL');
    const local = await ens.leader().session();
    await rejectsWith(local.create('/bigperm', '', { acl: bigPerms }), 'INVALIDACL');
    await local.close();
    for (const m of ens.members.values()) assert.ok(m!.serving);
    assert.equal(s.state, 'CONNECTED');
    assert.ok((await s.exists('/')) !== null);
  });

  it('connect() refuses bad arguments with BADARGUMENTS and an unreachable ensemble with CONNECTIONLOSS', async () => {
    await rejectsWith(connect([]), 'BADARGUMENTS');
    await rejectsWith(connect('not an address'), 'BADARGUMENTS');
    await rejectsWith(connect(ens.all(), { sessionTimeoutMs: -1 }), 'BADARGUMENTS');
    const e = await rejectsWith(connect('127.0.0.1:1', { sessionTimeoutMs: 300 }), 'CONNECTIONLOSS');
    assert.match(e.message, /127\.0\.0\.1:1/);
  });

  it('a comma-separated address list works like an array', async () => {
    const t = await connect(ens.all().join(','), { sessionTimeoutMs: 2000 });
    assert.ok(t.id > 0n);
    await t.close();
    assert.equal(t.state, 'CLOSED');
  });
});

describe('remote sessions: maxSessionsPerOrigin caps sessions per client address (SPEC §3)', function () {
  this.timeout(30_000);
  let ens: TcpEnsemble;
  before(async () => {
    ens = await tcpEnsemble({ size: 1, member: { maxSessionsPerOrigin: 3 } });
  });
  after(async () => {
    await ens.stopAll();
  });

  const open: Session[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) if (s.state !== 'CLOSED' && s.state !== 'LOST') await s.close();
  });

  it('the fourth session from 127.0.0.1 is refused; closing one makes room; local sessions count apart', async () => {
    open.push(...await Promise.all([1, 2, 3].map(() => connect(ens.all(), { sessionTimeoutMs: 2000 }))));
    const e = await rejectsWith(connect(ens.all(), { sessionTimeoutMs: 2000, connectTimeoutMs: 600 }), 'CONNECTIONLOSS');
    assert.match(e.message, /too many sessions from 127\.0\.0\.1/);
    open.push(await ens.member(1).session());
    await open[0]!.close();
    open.push(await connect(ens.all(), { sessionTimeoutMs: 2000 }));
  });

  it('concurrent connects do not overshoot the cap', async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => connect(ens.all(), { sessionTimeoutMs: 2000, connectTimeoutMs: 600 })));
    const ok = results.filter((r): r is PromiseFulfilledResult<Session> => r.status === 'fulfilled');
    open.push(...ok.map((r) => r.value));
    assert.equal(ok.length, 3);
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof KeeperError && r.reason.code === 'CONNECTIONLOSS');
  });
});

describe('remote sessions: enforceAuthSchemes requires remote sessions to authenticate (SPEC §4)', function () {
  this.timeout(30_000);
  let ens: TcpEnsemble;
  before(async () => {
    ens = await tcpEnsemble({ size: 1, member: { enforceAuthSchemes: ['digest'] } });
  });
  after(async () => {
    await ens.stopAll();
  });

  it('a connect without a digest identity is refused with AUTHFAILED; with one it works; local sessions are not affected', async () => {
    const before = ens.member(1).lastZxid;
    const e = await rejectsWith(connect(ens.all(), { sessionTimeoutMs: 2000 }), 'AUTHFAILED');
    assert.match(e.message, /requires remote sessions to authenticate/);
    await rejectsWith(connect(ens.all(), { sessionTimeoutMs: 2000, auth: [{ scheme: 'digest', credentials: 'bad' }] }), 'AUTHFAILED');
    assert.equal(ens.member(1).lastZxid, before, 'refused before anything was replicated (no createSession / closeSession)');
    const s = await connect(ens.all(), { sessionTimeoutMs: 2000, auth: [{ scheme: 'digest', credentials: 'bob:pw' }] });
    await s.create('/bobs', '', { acl: [{ perms: Perms.ALL, scheme: 'auth', id: '' }] });
    assert.deepEqual((await s.getACL('/bobs')).acl, [{ perms: Perms.ALL, scheme: 'digest', id: digest('bob', 'pw') }]);
    const local = await ens.member(1).session();
    await rejectsWith(local.getData('/bobs'), 'NOAUTH');
    await local.close();
    await s.close();
    // Refused sessions were closed, not left to expire.
    await waitFor(() => ens.member(1).tree.sessions.size === 0, 3000, 'no session left');
  });
});
