import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { connect, startMember, type Member } from '../../src/index.js';
import { freePorts } from './harness.js';

/**
 * startMember over real TCP without an explicit transport (ensemble + secret → tcpTransport on the
 * member's own address), and the start-up problems SPEC §7 wants reported in one line that says
 * what to fix.
 */
describe('startMember: automatic TCP transport and one-line start-up errors', function () {
  this.timeout(30_000);
  const members: Member[] = [];
  const servers: net.Server[] = [];
  let root: string;
  before(() => {
    root = mkdtempSync(join(os.tmpdir(), 'conclave-startup-'));
  });
  after(async () => {
    for (const m of members) await m.stop().catch(() => undefined);
    for (const s of servers) s.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function startErr(config: Parameters<typeof startMember>[0]): Promise<string> {
    try {
      const m = await startMember({ logLevel: 'silent', ...config });
      members.push(m);
    } catch (e) {
      const msg = (e as Error).message;
      assert.ok(!msg.includes('\n'), `not one line: ${msg}`);
      return msg;
    }
    assert.fail('the member started');
  }

  it('forms a 3-member ensemble over TCP from ensemble addresses and a secret alone', async () => {
    const ports = await freePorts(3);
    const ensemble = Object.fromEntries(ports.map((p, i) => [i + 1, `127.0.0.1:${p}`]));
    const ms = await Promise.all([1, 2, 3].map((id) => startMember({ id, ensemble, secret: 'startup-secret', tickMs: 50, logLevel: 'silent' })));
    members.push(...ms);
    await Promise.all(ms.map((m) => m.ready(15_000)));
    for (const m of ms) assert.equal(m.transport?.kind, 'tcp');
    const s = await ms[0]!.session();
    await s.create('/auto', 'tcp');
    const other = await ms[2]!.session();
    await other.sync('/auto');
    assert.equal(new TextDecoder().decode((await other.getData('/auto')).data), 'tcp');
    // The same addresses take remote sessions (connect()) from processes that are not members.
    const remote = await connect(Object.values(ensemble), { sessionTimeoutMs: 5000 });
    assert.equal(new TextDecoder().decode((await remote.getData('/auto')).data), 'tcp');
    await remote.close();
    await s.close();
    await other.close();
  });

  it('says which address is in use', async () => {
    const srv = net.createServer();
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    const msg = await startErr({ id: 1, ensemble: { 1: `127.0.0.1:${port}`, 2: '127.0.0.1:9', 3: '127.0.0.1:10' }, secret: 's' });
    assert.match(msg, new RegExp(`member 1 cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
  });

  it('asks for a secret (or a transport) for an ensemble of several members', async () => {
    const msg = await startErr({ id: 1, ensemble: { 1: '127.0.0.1:0', 2: '127.0.0.1:9' } });
    assert.match(msg, /needs a transport: set `secret`/);
  });

  it('refuses an address that is not host:port for the automatic TCP transport', async () => {
    const msg = await startErr({ id: 1, ensemble: { 1: 'member-1', 2: '127.0.0.1:9' }, secret: 's' });
    assert.match(msg, /member 1's ensemble address 'member-1' is not 'host:port'/);
  });

  it('says when its own id is not in the ensemble', async () => {
    const msg = await startErr({ id: 4, ensemble: { 1: '127.0.0.1:0', 2: '127.0.0.1:9', 3: '127.0.0.1:10' }, secret: 's' });
    assert.match(msg, /member 4 is not in its own ensemble \(members: 1, 2, 3\)/);
  });

  it('says when the data directory cannot be used (not a directory / locked by another member)', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const notDir = await startErr({ id: 1, ensemble: { 1: '127.0.0.1:0', 2: '127.0.0.1:9' }, secret: 's', storage: join(file, 'data') });
    assert.match(notDir, /data directory .*a-file/);
    const dir = join(root, 'locked');
    const [p1] = await freePorts(1);
    const holder = await startMember({ id: 1, ensemble: { 1: `127.0.0.1:${p1}`, 2: '127.0.0.1:9' }, secret: 's', storage: dir, logLevel: 'silent' });
    members.push(holder);
    const locked = await startErr({ id: 1, ensemble: { 1: '127.0.0.1:0', 2: '127.0.0.1:9' }, secret: 's', storage: dir });
    assert.match(locked, /is locked by another member/);
  });
});
