import assert from 'node:assert/strict';
import net from 'node:net';
import { decodePayload, encodeFrame, FrameDecoder } from '../../src/transport/frame.js';
import { connectTcpClient, tcpTransport, type ClientConnection, type TcpTransport } from '../../src/transport/tcp.js';
import type { PeerMessage } from '../../src/transport/types.js';
import { record, runCompliance, startAll, waitFor, type Recorder } from './compliance.js';
import { echoPeer, lifecycleExitMs } from './processes.js';

const SECRET = 'compliance-secret-0123456789';

runCompliance({
  kind: 'tcp',
  async cluster(n) {
    const all: TcpTransport[] = [];
    const make = (listen = '127.0.0.1:0'): TcpTransport => {
      const t = tcpTransport({ listen, secret: SECRET });
      all.push(t);
      return t;
    };
    const transports = Array.from({ length: n }, () => make());
    const peers = new Map<number, string>();
    for (const [i, t] of transports.entries()) peers.set(i + 1, await t.listen());
    return {
      transports,
      peers,
      renew: async (id) => make(peers.get(id)),
      close: async () => {
        await Promise.all(all.map((t) => t.stop()));
      },
    };
  },
  async frozenPair(maxQueueBytes) {
    const local = tcpTransport({ listen: '127.0.0.1:0', secret: SECRET, maxQueueBytes, maxFrameBytes: 4 * 1024 * 1024, handshakeTimeoutMs: 1000, reconnectMaxMs: 300 });
    const remote = await echoPeer({ kind: 'tcp', id: 2, listen: '127.0.0.1:0', secret: SECRET, handshakeTimeoutMs: 1000 });
    const peers = new Map([[1, await local.listen()], [2, remote.address]]);
    remote.start(peers);
    return {
      local,
      peers,
      freeze: async () => remote.freeze(),
      thaw: async () => remote.thaw(),
      close: async () => {
        await local.stop();
        await remote.close();
      },
    };
  },
  lifecycleExitMs: () => lifecycleExitMs({ kind: 'tcp', secret: SECRET }),
});

/** A raw socket speaking frames, for playing a hostile or recorded party. */
class RawPeer {
  readonly socket: net.Socket;
  private readonly decoder = new FrameDecoder(1 << 20);
  readonly frames: Record<string, unknown>[] = [];
  closed = false;
  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c) => {
      this.decoder.push(c);
      for (let p = this.decoder.next(); p; p = this.decoder.next()) this.frames.push(decodePayload(p) as Record<string, unknown>);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }
  static connect(address: string): Promise<RawPeer> {
    const [host, port] = address.split(':');
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port: Number(port) }, () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }
  send(v: unknown): void {
    this.socket.write(encodeFrame(v));
  }
  async next(timeoutMs = 3000): Promise<Record<string, unknown>> {
    const n = this.frames.length;
    await waitFor(() => this.frames.length > n || this.closed, timeoutMs, 'a frame');
    if (this.frames.length === n) throw new Error('closed without a frame');
    return this.frames[n]!;
  }
  destroy(): void {
    this.socket.destroy();
  }
}

describe('tcpTransport: membership security', function () {
  this.timeout(20_000);
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (stops.length) await stops.pop()!();
  });

  async function member(id: number, peers: Map<number, string>, t: TcpTransport): Promise<Recorder> {
    stops.push(() => t.stop());
    const r = record(t);
    await t.start(id, peers);
    return r;
  }

  async function listening(secret = SECRET, extra: Partial<Parameters<typeof tcpTransport>[0]> = {}): Promise<{ t: TcpTransport; address: string }> {
    const t = tcpTransport({ listen: '127.0.0.1:0', secret, ...extra });
    return { t, address: await t.listen() };
  }

  it('refuses a member with the wrong secret in both directions, before any message is delivered', async () => {
    const a = await listening(SECRET);
    const b = await listening('not-the-secret');
    const c = await listening(SECRET);
    const peers = new Map([[1, a.address], [2, b.address], [3, c.address]]);
    const ra = await member(1, peers, a.t);
    const rb = await member(2, peers, b.t);
    const rc = await member(3, peers, c.t);
    await waitFor(() => a.t.connected().includes(3) && c.t.connected().includes(1), 5000, '1 and 3 to connect');
    b.t.send(1, { t: 'inject' });
    b.t.send(3, { t: 'inject' });
    await waitFor(() => ra.warns.some((w) => /failed authentication|failed to prove/.test(w)) && rc.warns.some((w) => /failed authentication|failed to prove/.test(w)) && rb.warns.length > 0, 5000, 'refusals to be reported');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(b.t.connected(), []);
    assert.ok(!ra.ups.includes(2) && !rc.ups.includes(2) && rb.ups.length === 0, 'no up with the impostor');
    assert.ok(ra.messages.every(([f]) => f !== 2) && rc.messages.every(([f]) => f !== 2), 'nothing from the impostor');
    assert.ok(rb.warns.some((w) => /refused our connection: .*failed authentication|failed to prove/.test(w)), rb.warns.join('\n'));
  });

  it('refuses an unknown member id, a hello for another member, and anything but hello first', async () => {
    const a = await listening();
    const ra = await member(1, new Map([[1, a.address], [2, '127.0.0.1:1']]), a.t);
    const cases: [unknown, RegExp][] = [
      [{ t: 'hello', v: 2, role: 'member', from: 7, to: 1, nonce: new Uint8Array(32) }, /unknown member id 7/],
      [{ t: 'hello', v: 2, role: 'member', from: 2, to: 5, nonce: new Uint8Array(32) }, /addressed to member 5/],
      [{ t: 'hello', v: 2, role: 'member', from: 1, to: 1, nonce: new Uint8Array(32) }, /unknown member id 1/],
      [{ t: 'vote', leader: 2, zxid: 5n }, /expected hello/],
      // Version 1 members cannot read PROPOSALs in the binary form: refused, saying why.
      [{ t: 'hello', v: 1, role: 'member', from: 2, to: 1, nonce: new Uint8Array(32) }, /unsupported member protocol version 1 \(this member speaks 2/],
      [{ t: 'hello', v: 3, role: 'member', from: 2, to: 1, nonce: new Uint8Array(32) }, /protocol version/],
      [{ t: 'hello', v: 2, role: 'member', from: 2, to: 1, nonce: new Uint8Array(3) }, /nonce/],
      [{ t: 'hello', v: 1, role: 'client' }, /does not accept client/],
      [[1, 2, 3], /expected a handshake frame/],
    ];
    for (const [hello, reason] of cases) {
      const raw = await RawPeer.connect(a.address);
      raw.send(hello);
      const reply = await raw.next();
      assert.equal(reply.t, 'refused');
      assert.match(String(reply.reason), reason);
      await waitFor(() => raw.closed, 3000, 'the refused socket to close');
      assert.ok(ra.warns.some((w) => reason.test(w)), `warned about ${reason}`);
    }
    assert.deepEqual(ra.ups, []);
    assert.deepEqual(ra.messages, []);
  });

  it('refuses a replayed handshake (recorded through a proxy) in both directions', async () => {
    // Member 1 dials member 2 through a recording proxy.
    const b = await listening();
    const bAddr = b.address;
    const recorded: { toB: Buffer[]; toA: Buffer[] } = { toB: [], toA: [] };
    const proxy = net.createServer((inbound) => {
      const [host, port] = bAddr.split(':');
      const outbound = net.connect({ host, port: Number(port) });
      inbound.on('data', (d) => {
        recorded.toB.push(d);
        outbound.write(d);
      });
      outbound.on('data', (d) => {
        recorded.toA.push(d);
        inbound.write(d);
      });
      inbound.on('error', () => undefined);
      outbound.on('error', () => undefined);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => proxy.close(() => r())));
    const proxyAddr = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    const a = await listening();
    const ra = await member(1, new Map([[1, a.address], [2, proxyAddr]]), a.t);
    const rb = await member(2, new Map([[1, a.address], [2, bAddr]]), b.t);
    await waitFor(() => ra.ups.includes(2) && rb.ups.includes(1), 5000, 'the proxied connection');
    a.t.send(2, { t: 'recorded', n: 1 } as PeerMessage);
    await waitFor(() => rb.messages.length === 1, 3000, 'a recorded message');
    const dialerBytes = Buffer.concat(recorded.toB);
    const acceptorBytes = Buffer.concat(recorded.toA);

    // Replay the dialer's side (hello, auth, then the message) at member 2.
    const upsBefore = rb.ups.length;
    const raw = await RawPeer.connect(bAddr);
    raw.socket.write(dialerBytes);
    await waitFor(() => raw.closed, 5000, 'the replay to be cut off');
    assert.equal(raw.frames[0]!.t, 'challenge');
    assert.equal(raw.frames.at(-1)!.t, 'refused');
    assert.match(String(raw.frames.at(-1)!.reason), /failed authentication/);
    assert.equal(rb.ups.length, upsBefore, 'no new connection from a replay');
    assert.equal(rb.messages.length, 1, 'the replayed message was not delivered');

    // Replay the acceptor's side to a dialer: a fake "member 3" answering with the recorded frames.
    const fake = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.write(acceptorBytes));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => fake.close(() => r())));
    const c = await listening();
    const rc = await member(1, new Map([[1, c.address], [3, `127.0.0.1:${(fake.address() as net.AddressInfo).port}`]]), c.t);
    await waitFor(() => rc.warns.some((w) => /failed to prove the ensemble secret|instead of welcome/.test(w)), 5000, 'the dialer to reject the replayed acceptor');
    assert.deepEqual(rc.ups, []);
    assert.deepEqual(rc.messages, []);
  });

  it('binds a connection to the authenticated id: a message claiming to be from another member is attributed to its sender', async () => {
    const ts = await Promise.all([listening(), listening(), listening()]);
    const peers = new Map(ts.map((x, i) => [i + 1, x.address]));
    const recs = await Promise.all(ts.map((x, i) => member(i + 1, peers, x.t)));
    await waitFor(() => ts.every((x, i) => x.t.connected().length === 2 && recs[i]!.ups.length === 2), 5000, 'full mesh');
    ts[2]!.t.send(1, { t: 'vote', from: 2, leader: 2, sid: 2 } as PeerMessage);
    await waitFor(() => recs[0]!.messages.length === 1, 3000, 'the message');
    assert.equal(recs[0]!.messages[0]![0], 3, 'from the connection, not from the payload');
  });

  it('limits handshakes in progress and times out silent connections', async () => {
    const a = await listening(SECRET, { maxPendingHandshakes: 4, handshakeTimeoutMs: 300 });
    const ra = await member(1, new Map([[1, a.address], [2, '127.0.0.1:1']]), a.t);
    const silent = await Promise.all(Array.from({ length: 6 }, () => RawPeer.connect(a.address)));
    await waitFor(() => silent.filter((s) => s.closed).length >= 2, 2000, 'the excess to be refused');
    await waitFor(() => silent.every((s) => s.closed), 3000, 'silent connections to time out');
    assert.ok(ra.warns.some((w) => /handshakes already in progress/.test(w)));
    assert.ok(ra.warns.some((w) => /not completed within 300 ms/.test(w)));
    const late = await RawPeer.connect(a.address);
    late.send({ t: 'hello', v: 2, role: 'member', from: 2, to: 1, nonce: new Uint8Array(32) });
    assert.equal((await late.next()).t, 'challenge', 'the listener still works');
    late.destroy();
  });

  it('rejects oversize frames: a member connection is closed and reconnects; the sender side refuses to send them', async () => {
    const a = await listening(SECRET, { maxFrameBytes: 64 * 1024 });
    const b = await listening(SECRET, { maxFrameBytes: 64 * 1024 });
    const peers = new Map([[1, a.address], [2, b.address]]);
    const ra = await member(1, peers, a.t);
    const rb = await member(2, peers, b.t);
    await waitFor(() => ra.ups.includes(2) && rb.ups.includes(1), 5000, 'connected');
    a.t.send(2, { t: 'huge', data: new Uint8Array(100 * 1024) } as PeerMessage);
    await waitFor(() => ra.downs.includes(2), 3000, 'the connection to be closed rather than leave a gap');
    assert.ok(ra.warns.some((w) => /exceeds the maximum frame size/.test(w)));
    await waitFor(() => ra.ups.filter((p) => p === 2).length === 2, 5000, 'reconnection');
    a.t.send(2, { t: 'small' });
    await waitFor(() => rb.messages.some(([, m]) => m.t === 'small'), 3000, 'delivery after reconnecting');
    assert.ok(!rb.messages.some(([, m]) => m.t === 'huge'));
  });

  it('refuses to start with a bad configuration', async () => {
    assert.throws(() => tcpTransport({ listen: 'nohost', secret: SECRET }), /host:port/);
    assert.throws(() => tcpTransport({ listen: '127.0.0.1:0', secret: '' }), /secret/);
    assert.throws(() => tcpTransport({ listen: '127.0.0.1:0', secret: SECRET, maxFrameBytes: 10 }), /maxFrameBytes/);
    const t = tcpTransport({ listen: '127.0.0.1:0', secret: SECRET });
    stops.push(() => t.stop());
    await assert.rejects(t.start(1, new Map([[2, 'not an address']])), /host:port/);
    const busy = await listening();
    stops.push(() => busy.t.stop());
    const clash = tcpTransport({ listen: busy.address, secret: SECRET });
    await assert.rejects(clash.listen(), /cannot listen/);
  });
});

describe('tcpTransport: client connections (for remote sessions)', function () {
  this.timeout(20_000);
  let t: TcpTransport | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('hands a client hello to onClient; both ends exchange messages; close is seen on both sides', async () => {
    const accepted: ClientConnection[] = [];
    const serverGot: PeerMessage[] = [];
    t = tcpTransport({
      listen: '127.0.0.1:0',
      secret: SECRET,
      onClient: (conn) => {
        accepted.push(conn);
        conn.on('message', (msg) => {
          serverGot.push(msg);
          conn.send({ t: 'reply', n: (msg as unknown as { n: number }).n + 1, sid: 2n ** 60n } as PeerMessage);
        });
      },
    });
    const address = await t.listen();
    await t.start(1, new Map([[1, address]]));
    const client = await connectTcpClient(address, { hello: { session: 5n } });
    assert.equal(client.hello.member, 1);
    const replies: PeerMessage[] = [];
    client.on('message', (m) => replies.push(m));
    client.send({ t: 'req', n: 1 } as PeerMessage);
    await waitFor(() => replies.length === 1, 3000, 'a reply');
    assert.deepEqual(replies[0], { t: 'reply', n: 2, sid: 2n ** 60n });
    assert.equal(accepted.length, 1);
    assert.equal(accepted[0]!.hello.session, 5n);
    assert.equal(accepted[0]!.remoteAddress, '127.0.0.1');
    assert.equal(t.clientCount(), 1);
    let serverClosed = false;
    accepted[0]!.on('close', () => (serverClosed = true));
    client.close();
    await waitFor(() => serverClosed && t!.clientCount() === 0, 3000, 'the server side to see the close');
    assert.ok(client.closed || (await waitFor(() => client.closed, 3000, 'client closed').then(() => true)));
    assert.equal(client.send({ t: 'late' }), false);
  });

  it('a client cannot become a member: member messages on a client connection reach onClient only', async () => {
    const r = record((t = tcpTransport({ listen: '127.0.0.1:0', secret: SECRET, onClient: (c) => c.on('message', () => undefined) })));
    const address = await t.listen();
    await t.start(1, new Map([[1, address], [2, '127.0.0.1:1']]));
    const client = await connectTcpClient(address);
    client.send({ t: 'proposal', epoch: 9, from: 2 } as PeerMessage);
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(r.messages, []);
    assert.deepEqual(r.ups, []);
    client.close();
  });

  it('rejects a client when the member takes none, with the reason', async () => {
    t = tcpTransport({ listen: '127.0.0.1:0', secret: SECRET });
    const address = await t.listen();
    await t.start(1, new Map([[1, address]]));
    await assert.rejects(connectTcpClient(address), /does not accept client connections/);
  });

  it('stop() closes client connections too', async () => {
    t = tcpTransport({ listen: '127.0.0.1:0', secret: SECRET, onClient: () => undefined });
    const address = await t.listen();
    await t.start(1, new Map([[1, address]]));
    const client = await connectTcpClient(address);
    let closed = false;
    client.on('close', () => (closed = true));
    await t.stop();
    t = undefined;
    await waitFor(() => closed, 3000, 'the client to see the close');
  });
});

describe('tcpTransport: three members, pokes and restarts', function () {
  this.timeout(20_000);
  it('the higher id restarting reconnects at once through a poke (no waiting for the lower id\'s backoff)', async () => {
    const ts = [1, 2].map(() => tcpTransport({ listen: '127.0.0.1:0', secret: SECRET, reconnectMinMs: 2000, reconnectMaxMs: 4000 }));
    const peers = new Map<number, string>();
    for (const [i, t] of ts.entries()) peers.set(i + 1, await t.listen());
    try {
      const recs = await startAll({ transports: ts, peers, renew: async () => ts[0]!, close: async () => undefined }, 5000);
      await ts[1]!.stop();
      await waitFor(() => recs[0]!.downs.includes(2), 3000, 'down');
      const t0 = Date.now();
      await ts[1]!.start(2, peers);
      await waitFor(() => recs[0]!.ups.filter((p) => p === 2).length === 2, 1500, 'member 1 to dial back at once');
      assert.ok(Date.now() - t0 < 1000, `reconnected in ${Date.now() - t0} ms despite a 2 s backoff`);
    } finally {
      await Promise.all(ts.map((t) => t.stop()));
    }
  });
});
