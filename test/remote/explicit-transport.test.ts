import assert from 'node:assert/strict';
import { connect, connectTcpClient, startMember, tcpTransport, type Member } from '../../src/index.js';
import { freePorts } from '../cluster/harness.js';

const SECRET = 'explicit-transport-secret-0123456789';

describe('remote sessions on a member given tcpTransport({ listen, secret }) as API.md shows it', function () {
  this.timeout(30_000);
  let members: Member[] = [];
  afterEach(async () => {
    await Promise.all(members.map((m) => m.stop()));
    members = [];
  });

  it('the member serves connect() sessions on its transport without any onClient wiring (3 members)', async () => {
    const ports = await freePorts(3);
    const ensemble = Object.fromEntries(ports.map((p, i) => [i + 1, `127.0.0.1:${p}`]));
    members = await Promise.all([1, 2, 3].map((id) => startMember({
      id, ensemble, secret: SECRET, tickMs: 50, transport: tcpTransport({ listen: ensemble[id]!, secret: SECRET }),
    })));
    await Promise.all(members.map((m) => m.ready(20_000)));
    const s = await connect(Object.values(ensemble), { sessionTimeoutMs: 4000 });
    try {
      assert.equal(s.state, 'CONNECTED');
      assert.equal(await s.create('/explicit', 'v'), '/explicit');
      const local = await members[0]!.session();
      await local.sync('/explicit');
      assert.equal(new TextDecoder().decode((await local.getData('/explicit')).data), 'v');
      await local.close();
    } finally {
      await s.close();
    }
  });

  it('a transport built with its own onClient keeps it: the member does not take the connections over', async () => {
    const [port] = await freePorts(1);
    const listen = `127.0.0.1:${port}`;
    let handed = 0;
    const transport = tcpTransport({
      listen, secret: SECRET,
      onClient: (c) => {
        handed++;
        c.close();
      },
    });
    assert.equal(transport.serveClients(() => undefined), false, 'an explicit onClient stays');
    members = [await startMember({ id: 1, ensemble: { 1: listen }, secret: SECRET, transport })];
    await members[0]!.ready(10_000);
    const conn = await connectTcpClient(listen);
    await new Promise<void>((resolve) => {
      if (conn.closed) resolve();
      else conn.on('close', () => resolve());
    });
    assert.equal(handed, 1, 'the application\'s handler got the connection');
    assert.equal(members[0]!.trackedSessions, 0, 'and the member opened no session for it');
  });
});
