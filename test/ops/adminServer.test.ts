import assert from 'node:assert/strict';
import http from 'node:http';
import { startAdminServer, type AdminServer } from '../../src/api/adminServer.js';
import { startMember, type Member } from '../../src/api/member.js';
import { CreateMode } from '../../src/core/createMode.js';
import { digest, Perms } from '../../src/core/acl.js';
import { memoryNetwork } from '../../src/transport/memory.js';

interface Reply {
  status: number;
  type: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A raw HTTP request (so that the Host header and method can be anything). */
function request(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(url, { headers });
  assert.match(r.type, /^application\/json/);
  return { status: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the Prometheus text exposition format strictly enough to catch mistakes: every family
 * has one HELP and one TYPE before its samples, names and labels are well formed, values are numbers.
 */
function parseProm(text: string): { samples: Sample[]; types: Map<string, string>; help: Map<string, string> } {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP (\S+) (.+)$/.exec(line);
    if (m) {
      assert.ok(NAME.test(m[1]!), `bad name in ${line}`);
      assert.ok(!help.has(m[1]!), `HELP twice for ${m[1]}`);
      help.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      assert.ok(!types.has(m[1]!), `TYPE twice for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const l of m[2].match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const i = l.indexOf('=');
        labels[l.slice(0, i)] = l.slice(i + 2, -1);
      }
    }
    // Prometheus parses floats as Go's ParseFloat does: NaN and Inf case-insensitively.
    const value = /^\+?inf$/i.test(m[3]!) ? Infinity : /^-inf$/i.test(m[3]!) ? -Infinity : Number(m[3]);
    assert.ok(!Number.isNaN(value) || /^nan$/i.test(m[3]!), `bad value in ${line}`);
    const family = [...types.keys()].find((f) => m![1] === f || m![1]!.startsWith(f + '_'));
    assert.ok(family, `sample ${m[1]} before its TYPE`);
    assert.ok(help.has(family), `no HELP for ${family}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types, help };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  assert.ok(s, `no sample ${name} ${JSON.stringify(labels)}`);
  return s.value;
}

describe('ops/adminServer: the HTTP admin endpoint (SPEC §7)', function () {
  this.timeout(30_000);
  let member: Member;
  let admin: AdminServer;
  const SUPER = digest('super', 'superpw');

  before(async () => {
    member = await startMember({ id: 1, tickMs: 50, logLevel: 'error', superDigest: SUPER, adminCommands: ['srvr', 'mntr', 'stat', 'ruok', 'wchs'] });
    admin = await startAdminServer(member, { port: 0 });
  });
  after(async () => {
    await admin.close();
    await member.stop();
  });

  it('binds 127.0.0.1 on an ephemeral port and says where', () => {
    assert.equal(admin.host, '127.0.0.1');
    assert.ok(admin.port > 0);
    assert.equal(admin.url, `http://127.0.0.1:${admin.port}`);
  });

  it('GET /commands/<name> returns the admin command as JSON, with ZooKeeper\'s command/error fields', async () => {
    const s = await member.session();
    await s.create('/srvr-check', 'x');
    const { status, body } = await getJson(`${admin.url}/commands/srvr`);
    assert.equal(status, 200);
    assert.equal(body.command, 'srvr');
    assert.equal(body.error, null);
    assert.equal(body.memberId, 1);
    assert.equal(body.mode, 'standalone');
    assert.equal(body.serving, true);
    assert.equal(body.zxid, '0x' + member.lastZxid.toString(16));
    assert.deepEqual(Object.keys(body.latency as object).sort(), ['avg', 'max', 'min']);
    // ZooKeeper's AdminServer names are aliases.
    const monitor = await getJson(`${admin.url}/commands/monitor`);
    assert.equal(monitor.status, 200);
    assert.equal(monitor.body.command, 'mntr');
    assert.equal(monitor.body.zk_server_state, 'standalone');
    await s.close();
  });

  it('respects the whitelist: a command not in adminCommands is 403, an unknown one 404; /commands lists both sets', async () => {
    const conf = await getJson(`${admin.url}/commands/conf`);
    assert.equal(conf.status, 403);
    assert.deepEqual(conf.body, { command: 'conf', error: "'conf' is not in the whitelist (4lw.commands.whitelist / adminCommands)" });
    const viaAlias = await getJson(`${admin.url}/commands/configuration`);
    assert.equal(viaAlias.status, 403);
    const nope = await getJson(`${admin.url}/commands/kill`);
    assert.equal(nope.status, 404);
    assert.match(String(nope.body.error), /^unknown command 'kill' \(known: ruok, conf, /);
    const list = await getJson(`${admin.url}/commands`);
    assert.deepEqual(list.body.allowed, ['ruok', 'srvr', 'stat', 'wchs', 'mntr']);
    assert.equal((list.body.commands as string[]).length, 13);
  });

  it('refuses other methods, unknown paths, and (on loopback) a non-loopback Host header (DNS rebinding)', async () => {
    const post = await request(`${admin.url}/commands/srst`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal((await request(`${admin.url}/nothing`)).status, 404);
    const rebound = await request(`${admin.url}/commands/srvr`, { headers: { host: 'attacker.example:80' } });
    assert.equal(rebound.status, 403);
    assert.match(rebound.body, /not a loopback name/);
    assert.equal((await request(`${admin.url}/commands/srvr`, { headers: { host: `localhost:${admin.port}` } })).status, 200);
  });

  it('GET /metrics is Prometheus text: HELP and TYPE for every family, mntr\'s figures, the role as a labelled gauge, Node process metrics', async () => {
    const r = await request(`${admin.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseProm(r.body);
    const expected: Record<string, string> = {
      conclave_server_state: 'gauge', conclave_serving: 'gauge', conclave_leader_id: 'gauge', conclave_last_zxid: 'gauge', conclave_epoch: 'gauge',
      conclave_min_latency_ms: 'gauge', conclave_avg_latency_ms: 'gauge', conclave_max_latency_ms: 'gauge',
      conclave_write_latency_ms_total: 'counter', conclave_writes_total: 'counter', conclave_requests_total: 'counter',
      conclave_packets_received_total: 'counter', conclave_packets_sent_total: 'counter', conclave_num_alive_connections: 'gauge',
      conclave_outstanding_requests: 'gauge', conclave_znode_count: 'gauge', conclave_watch_count: 'gauge', conclave_ephemerals_count: 'gauge',
      conclave_approximate_data_size_bytes: 'gauge', conclave_global_sessions: 'gauge', conclave_snapshots_taken_total: 'counter',
      conclave_fsync_batches_total: 'counter', conclave_fsync_txns_total: 'counter', conclave_avg_txns_per_fsync: 'gauge',
      conclave_synced_followers: 'gauge', conclave_pending_syncs: 'gauge', conclave_outstanding_proposals: 'gauge', conclave_uptime_seconds: 'gauge',
      conclave_learner_lag_ticks: 'gauge', conclave_learner_lag_txns: 'gauge',
      process_cpu_user_seconds_total: 'counter', process_resident_memory_bytes: 'gauge', nodejs_heap_size_used_bytes: 'gauge', nodejs_eventloop_lag_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) assert.equal(types.get(name), type, `${name} is a ${type}`);
    assert.equal(value(samples, 'conclave_server_state', { state: 'standalone', member: '1' }), 1);
    assert.equal(value(samples, 'conclave_server_state', { state: 'follower' }), 0);
    assert.equal(value(samples, 'conclave_serving'), 1);
    assert.equal(value(samples, 'conclave_leader_id'), 1);
    for (const s of samples.filter((x) => x.name.startsWith('conclave_'))) assert.equal(s.labels.member, '1', `${s.name} carries the member label`);
  });

  it('metric values follow the tree: znodes, ephemerals, data size, watches, zxid, writes and sessions change after writes', async () => {
    const before = parseProm(await admin.metrics()).samples;
    const s = await member.session();
    await s.create('/m', '12345');
    await s.create('/m/a', '123');
    await s.create('/m/e', '', { mode: CreateMode.EPHEMERAL });
    await s.getData('/m', { watch: () => undefined });
    const after = parseProm((await request(`${admin.url}/metrics`)).body).samples;
    const d = (name: string): number => value(after, name) - value(before, name);
    assert.equal(d('conclave_znode_count'), 3);
    assert.equal(d('conclave_ephemerals_count'), 1);
    assert.equal(d('conclave_approximate_data_size_bytes'), 8);
    assert.equal(d('conclave_watch_count'), 1);
    assert.equal(d('conclave_writes_total'), 3, 'the 3 creates');
    assert.equal(d('conclave_requests_total'), 4, '3 creates and a getData');
    assert.ok(d('conclave_global_sessions') >= 1);
    assert.equal(value(after, 'conclave_last_zxid'), Number(member.lastZxid));
    assert.ok(value(after, 'conclave_last_zxid') > value(before, 'conclave_last_zxid'));
    assert.ok(value(after, 'conclave_max_latency_ms') >= value(after, 'conclave_min_latency_ms'));
    await s.close();
  });

  it('GET /status has what the page shows: role, leader, zxid, ensemble, sessions with their ephemerals', async () => {
    const s = await member.session();
    await s.create('/status-e', '', { mode: CreateMode.EPHEMERAL });
    const { body } = await getJson(`${admin.url}/status`);
    assert.equal(body.memberId, 1);
    assert.equal(body.mode, 'standalone');
    assert.equal(body.leaderId, 1);
    assert.equal(body.zxid, '0x' + member.lastZxid.toString(16));
    assert.deepEqual((body.ensemble as { id: number; self: boolean }[]).map((e) => [e.id, e.self]), [[1, true]]);
    const local = (body.sessions as { local: { id: string; ephemerals: number }[] }).local;
    assert.equal(local.find((x) => x.id === '0x' + s.id.toString(16))?.ephemerals, 1);
    assert.equal(body.pid, process.pid);
    await s.close();
  });

  it('GET / is one self-contained HTML page (inline script and style under a nonce CSP, no external assets)', async () => {
    const r = await request(`${admin.url}/`);
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/html/);
    const csp = String(r.headers['content-security-policy']);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    assert.ok(nonce, csp);
    assert.match(csp, /default-src 'none'/);
    assert.ok(r.body.includes(`<script nonce="${nonce}">`));
    assert.ok(!/\b(src|href)\s*=\s*["']?(https?:)?\/\//i.test(r.body), 'no external assets');
    for (const id of ['mode', 'leader', 'zxid', 'ens', 'sess', 'tree']) assert.ok(r.body.includes(`id="${id}"`), `has #${id}`);
    // Data is put into the page with textContent, never as HTML.
    assert.ok(!r.body.includes('innerHTML'));
  });

  describe('GET /tree: the browser reads as the world, or as super with Basic auth; never leaks data behind an ACL', () => {
    const basic = (user: string, pw: string): Record<string, string> => ({ authorization: 'Basic ' + Buffer.from(`${user}:${pw}`).toString('base64') });
    before(async () => {
      const s = await member.session();
      await s.create('/pub', 'public data');
      await s.create('/pub/child', 'c');
      await s.create('/pub/bin', new Uint8Array([0, 1, 2, 255]));
      await s.create('/pub/big', 'x'.repeat(5000));
      await s.addAuth('digest', 'bob:bobpw');
      const bob = { scheme: 'digest', id: digest('bob', 'bobpw'), perms: Perms.ALL };
      await s.create('/secret', 'top secret', { acl: [bob] });
      await s.create('/secret/inner', 'also secret', { acl: [bob] });
      await s.create('/readable', 'world may read', { acl: [bob, { scheme: 'world', id: 'anyone', perms: Perms.READ }] });
      await s.close();
    });

    it('a world-readable node: children, stat, data preview and ACL', async () => {
      const { status, body } = await getJson(`${admin.url}/tree?path=/pub`);
      assert.equal(status, 200);
      assert.equal(body.readable, true);
      assert.equal(body.as, 'world');
      assert.deepEqual(body.children, ['big', 'bin', 'child']);
      assert.deepEqual(body.data, { encoding: 'utf8', text: 'public data', bytes: 11, truncated: false });
      assert.deepEqual(body.acl, [{ scheme: 'world', id: 'anyone', perms: 'cdrwa' }]);
      assert.equal((body.stat as { numChildren: number }).numChildren, 3);
      const bin = await getJson(`${admin.url}/tree?path=/pub/bin`);
      assert.deepEqual(bin.body.data, { encoding: 'hex', text: '000102ff', bytes: 4, truncated: false });
      const big = await getJson(`${admin.url}/tree?path=/pub/big`);
      assert.equal((big.body.data as { text: string }).text.length, 1024);
      assert.equal((big.body.data as { truncated: boolean }).truncated, true);
      const root = await getJson(`${admin.url}/tree`);
      assert.ok((root.body.children as string[]).includes('secret'), 'the root lists its children (it is world-readable)');
    });

    it('a node the world may not read: stat only (as exists()), no data, no children, no ACL', async () => {
      const { status, body } = await getJson(`${admin.url}/tree?path=/secret`);
      assert.equal(status, 200);
      assert.equal(body.readable, false);
      assert.equal(body.data, null);
      assert.equal(body.children, null);
      assert.equal(body.acl, null);
      assert.equal((body.stat as { numChildren: number; dataLength: number }).dataLength, 10);
      assert.ok(!JSON.stringify(body).includes('top secret'));
      assert.match(String(body.reason), /authenticate as super/);
      const inner = await getJson(`${admin.url}/tree?path=/secret/inner`);
      assert.equal(inner.body.data, null);
      // World-readable but with a digest entry: the hash is masked, as getACL does without ADMIN.
      const readable = await getJson(`${admin.url}/tree?path=/readable`);
      assert.equal((readable.body.data as { text: string }).text, 'world may read');
      assert.deepEqual(readable.body.acl, [{ scheme: 'digest', id: 'bob:x', perms: 'cdrwa' }, { scheme: 'world', id: 'anyone', perms: 'r' }]);
    });

    it('super (the member\'s superDigest, via Basic auth) sees everything; wrong credentials are refused, not downgraded', async () => {
      const { body } = await getJson(`${admin.url}/tree?path=/secret`, basic('super', 'superpw'));
      assert.equal(body.as, 'super');
      assert.equal(body.readable, true);
      assert.equal((body.data as { text: string }).text, 'top secret');
      assert.deepEqual(body.children, ['inner']);
      assert.deepEqual(body.acl, [{ scheme: 'digest', id: digest('bob', 'bobpw'), perms: 'cdrwa' }]);
      const wrong = await getJson(`${admin.url}/tree?path=/secret`, basic('super', 'guess'));
      assert.equal(wrong.status, 403);
      assert.ok(!JSON.stringify(wrong.body).includes('top secret'));
      const bob = await getJson(`${admin.url}/tree?path=/secret`, basic('bob', 'bobpw'));
      assert.equal(bob.status, 403, 'only the super identity is accepted');
    });

    it('a missing node is 404, a bad path 400', async () => {
      assert.equal((await getJson(`${admin.url}/tree?path=/nope`)).status, 404);
      const bad = await getJson(`${admin.url}/tree?path=${encodeURIComponent('no/slash')}`);
      assert.equal(bad.status, 400);
    });
  });

  it('a port in use is one line that says what to do', async () => {
    await assert.rejects(startAdminServer(member, { port: admin.port }), (e: Error) => {
      assert.equal(e.message, `admin endpoint cannot listen on 127.0.0.1:${admin.port}: the address is already in use (another member or program listens there); stop it or set another admin.serverPort`);
      return true;
    });
  });
});

describe('ops/adminServer: an ensemble leader reports its learners', function () {
  this.timeout(30_000);
  it('synced followers, learner lag and roles in /metrics and /status on every member', async () => {
    const net = memoryNetwork();
    const ensemble = { 1: 'm1', 2: 'm2', 3: 'm3' };
    const members = await Promise.all([1, 2, 3].map((id) => startMember({ id, ensemble, transport: net.transport(id), tickMs: 50, logLevel: 'error' })));
    const admins: AdminServer[] = [];
    try {
      await Promise.all(members.map((m) => m.ready(10_000)));
      for (const m of members) admins.push(await startAdminServer(m, { port: 0, processMetrics: false }));
      const leader = members.find((m) => m.state === 'leading')!;
      const s = await leader.session();
      for (let i = 0; i < 5; i++) await s.create(`/n${i}`, 'v');
      await s.sync('/');
      // Followers ack asynchronously; wait (bounded) until the leader has heard from both.
      let l: Record<string, unknown> = {};
      for (let i = 0; i < 100; i++) {
        l = JSON.parse((await request(`${admins[members.indexOf(leader)]!.url}/status`)).body) as Record<string, unknown>;
        if ((l.learners as { lagTxns: number }[]).every((x) => x.lagTxns === 0)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(l.mode, 'leader');
      assert.deepEqual((l.learners as { id: number; phase: string; lagTxns: number }[]).map((x) => [x.id, x.phase, x.lagTxns]).sort(), members.filter((m) => m !== leader).map((m) => [m.id, 'synced', 0]));
      const { samples } = parseProm(await admins[members.indexOf(leader)]!.metrics());
      assert.equal(value(samples, 'conclave_server_state', { state: 'leader' }), 1);
      assert.equal(value(samples, 'conclave_synced_followers'), 2);
      assert.equal(samples.filter((x) => x.name === 'conclave_learner_lag_ticks').length, 2);
      for (const m of members.filter((x) => x !== leader)) {
        const f = parseProm(await admins[members.indexOf(m)]!.metrics()).samples;
        assert.equal(value(f, 'conclave_server_state', { state: 'follower', member: String(m.id) }), 1);
        assert.equal(value(f, 'conclave_leader_id'), leader.id);
        assert.equal(value(f, 'conclave_synced_followers'), 0);
      }
      await s.close();
    } finally {
      for (const a of admins) await a.close();
      await Promise.all(members.map((m) => m.stop()));
    }
  });
});
