import assert from 'node:assert/strict';
import { ADMIN_COMMANDS, CreateMode, type Session } from '../../src/index.js';
import { recorder, rejectsWith, singleMember } from './helpers.js';

const hex = (v: bigint): string => '0x' + v.toString(16);

describe('api/admin: four-letter-word commands return real figures (SPEC §7, issue 2)', () => {
  const ctx = singleMember({ minSessionTimeoutMs: 500, maxSessionTimeoutMs: 30_000, maxDataBytes: 4096 });
  let s: Session;
  beforeEach(async () => {
    s = await ctx.member.session({ sessionTimeoutMs: 5000 });
  });

  it('ruok answers imok', async () => {
    const r = await ctx.member.admin('ruok');
    assert.equal(r.answer, 'imok');
    assert.equal(r.ok, true);
  });

  it('mntr: znode, ephemeral, watch counts and data size follow the tree', async () => {
    const before = await ctx.member.admin('mntr');
    assert.equal(before.zk_server_state, 'standalone');
    await s.create('/a', '12345');
    await s.create('/a/b', '123');
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    await s.getData('/a', { watch: () => undefined });
    await s.getChildren('/a', { watch: () => undefined });
    const after = await ctx.member.admin('mntr');
    assert.equal(after.zk_znode_count, (before.zk_znode_count as number) + 3);
    assert.equal(after.zk_ephemerals_count, (before.zk_ephemerals_count as number) + 1);
    assert.equal(after.zk_watch_count, (before.zk_watch_count as number) + 2);
    assert.equal(after.zk_approximate_data_size, (before.zk_approximate_data_size as number) + 8);
    assert.equal(after.zk_last_zxid, '0x' + ctx.member.lastZxid.toString(16));
    assert.ok((after.zk_num_alive_connections as number) >= 1);
    await s.delete('/a/b');
    assert.equal((await ctx.member.admin('mntr')).zk_znode_count, (before.zk_znode_count as number) + 2);
  });

  it('mntr counts requests as packets; srst resets the counters', async () => {
    const m0 = await ctx.member.admin('mntr');
    await s.create('/x');
    await s.getData('/x');
    await s.exists('/x');
    const m1 = await ctx.member.admin('mntr');
    assert.ok((m1.zk_packets_received as number) >= (m0.zk_packets_received as number) + 3, 'requests are counted');
    assert.ok((m1.zk_packets_sent as number) >= (m0.zk_packets_sent as number) + 3, 'responses are counted');
    assert.deepEqual(await ctx.member.admin('srst'), { reset: true });
    const m2 = await ctx.member.admin('mntr');
    assert.equal(m2.zk_packets_received, 0);
    assert.equal(m2.zk_packets_sent, 0);
    assert.equal(m2.zk_max_latency, 0);
    assert.equal(m2.zk_avg_latency, 0);
    assert.equal(m2.zk_znode_count, m1.zk_znode_count, 'srst does not touch the tree');
  });

  it('srvr and stat: mode, zxid, node count; stat lists the clients', async () => {
    await s.create('/n');
    const srvr = await ctx.member.admin('srvr');
    assert.equal(srvr.mode, 'standalone');
    assert.equal(srvr.memberId, 1);
    assert.equal(srvr.zxid, '0x' + ctx.member.lastZxid.toString(16));
    assert.equal(srvr.nodeCount, ctx.member.tree.nodeCount);
    const stat = await ctx.member.admin('stat');
    const clients = stat.clients as { session: string }[];
    assert.ok(clients.some((c) => c.session === hex(s.id)));
  });

  it('cons lists the sessions with their negotiated timeout; closed ones disappear', async () => {
    const other = await ctx.member.session({ sessionTimeoutMs: 100 });
    const cons = (await ctx.member.admin('cons')).connections as { session: string; timeoutMs: number }[];
    assert.equal(cons.find((c) => c.session === hex(s.id))?.timeoutMs, 5000);
    assert.equal(cons.find((c) => c.session === hex(other.id))?.timeoutMs, 500, 'clamped to minSessionTimeoutMs');
    await other.close();
    const after = (await ctx.member.admin('cons')).connections as { session: string }[];
    assert.equal(after.some((c) => c.session === hex(other.id)), false);
    assert.deepEqual(await ctx.member.admin('crst'), { reset: true });
  });

  it('dump lists sessions with their ephemerals', async () => {
    await s.create('/e1', '', { mode: CreateMode.EPHEMERAL });
    await s.create('/e2', '', { mode: CreateMode.EPHEMERAL });
    const dump = await ctx.member.admin('dump');
    const sessions = dump.sessions as Record<string, { ephemerals: string[]; timeoutMs: number }>;
    assert.deepEqual(sessions[hex(s.id)]?.ephemerals, ['/e1', '/e2']);
    assert.equal(sessions[hex(s.id)]?.timeoutMs, 5000);
  });

  it('wchs, wchc and wchp describe the watches', async () => {
    await s.create('/w');
    const other = await ctx.member.session();
    await s.getData('/w', { watch: recorder() });
    await s.getChildren('/', { watch: recorder() });
    await other.exists('/w', { watch: recorder() });
    const wchs = await ctx.member.admin('wchs');
    assert.deepEqual(wchs, { connections: 2, watchedPaths: 2, totalWatches: 3 });
    const wchc = (await ctx.member.admin('wchc')).sessions as Record<string, string[]>;
    assert.deepEqual(wchc, { [hex(s.id)]: ['/', '/w'], [hex(other.id)]: ['/w'] });
    const wchp = (await ctx.member.admin('wchp')).paths as Record<string, string[]>;
    assert.deepEqual(wchp['/'], [hex(s.id)]);
    assert.deepEqual([...wchp['/w']!].sort(), [hex(s.id), hex(other.id)].sort());
    // A fired watch is gone from the reports.
    await other.setData('/w', 'x');
    assert.deepEqual(await ctx.member.admin('wchs'), { connections: 1, watchedPaths: 1, totalWatches: 1 });
  });

  it('conf reflects the configuration', async () => {
    const conf = await ctx.member.admin('conf');
    assert.equal(conf.memberId, 1);
    assert.equal(conf.maxDataBytes, 4096);
    assert.equal(conf.minSessionTimeoutMs, 500);
    assert.equal(conf.maxSessionTimeoutMs, 30_000);
  });

  it('envi describes the process', async () => {
    const envi = await ctx.member.admin('envi');
    assert.equal(envi['node.version'], process.version);
    assert.equal(envi['process.pid'], process.pid);
  });

  it('every listed command answers with plain JSON (no bigint, so it can go over an admin endpoint)', async () => {
    assert.deepEqual([...ADMIN_COMMANDS].sort(), ['conf', 'cons', 'crst', 'dump', 'envi', 'mntr', 'ruok', 'srst', 'srvr', 'stat', 'wchc', 'wchp', 'wchs']);
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    await s.getData('/e', { watch: () => undefined });
    for (const c of ADMIN_COMMANDS) {
      const r = await ctx.member.admin(c);
      assert.equal(typeof r, 'object', c);
      assert.deepEqual(JSON.parse(JSON.stringify(r)), r, c);
    }
  });

  it('an unknown command is refused', async () => {
    await rejectsWith(ctx.member.admin('kill' as never), 'BADARGUMENTS');
  });
});

describe('api/admin: whitelist (adminCommands, like 4lw.commands.whitelist)', () => {
  const ctx = singleMember({ adminCommands: ['ruok', 'srvr'] });
  it('only whitelisted commands run', async () => {
    assert.equal((await ctx.member.admin('ruok')).answer, 'imok');
    assert.equal((await ctx.member.admin('srvr')).mode, 'standalone');
    const e = await rejectsWith(ctx.member.admin('mntr'), 'NOAUTH');
    assert.match(e.message, /mntr/);
    await rejectsWith(ctx.member.admin('dump'), 'NOAUTH');
  });
});
