import assert from 'node:assert/strict';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { tcp } from '@libp2p/tcp';
import { messageStreamToDuplex } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { decodePayload, encodeFrame, FrameDecoder } from '../../src/transport/frame.js';
import { CONCLAVE_PROTOCOL, generatePeerKey, libp2pTransport, peerIdFromKey, type Libp2pTransport } from '../../src/transport/libp2p.js';
import { record, runCompliance, waitFor, type Recorder } from './compliance.js';
import { echoPeer, lifecycleExitMs } from './processes.js';

runCompliance({
  kind: 'libp2p',
  slow: 1.5,
  async cluster(n) {
    const all: Libp2pTransport[] = [];
    const keys = await Promise.all(Array.from({ length: n }, () => generatePeerKey()));
    const make = (i: number, listen = '/ip4/127.0.0.1/tcp/0'): Libp2pTransport => {
      const t = libp2pTransport({ listen, peerKey: keys[i]! });
      all.push(t);
      return t;
    };
    const transports = keys.map((_, i) => make(i));
    const peers = new Map<number, string>();
    for (const [i, t] of transports.entries()) peers.set(i + 1, await t.listen());
    return {
      transports,
      peers,
      renew: async (id) => make(id - 1, multiaddr(peers.get(id)!).decapsulateCode(421).toString()),
      close: async () => {
        await Promise.all(all.map((t) => t.stop()));
      },
    };
  },
  async frozenPair(maxQueueBytes) {
    const [k1, k2] = await Promise.all([generatePeerKey(), generatePeerKey()]);
    const local = libp2pTransport({ listen: '/ip4/127.0.0.1/tcp/0', peerKey: k1, maxQueueBytes, maxFrameBytes: 4 * 1024 * 1024, handshakeTimeoutMs: 1000, reconnectMaxMs: 300 });
    const remote = await echoPeer({ kind: 'libp2p', id: 2, listen: '/ip4/127.0.0.1/tcp/0', peerKey: k2, handshakeTimeoutMs: 1000 });
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
  lifecycleExitMs: async () => lifecycleExitMs({ kind: 'libp2p', peerKeys: await Promise.all([generatePeerKey(), generatePeerKey()]) }),
});

/** A bare libp2p node (not a conclave transport): the outsider or a misbehaving insider. */
async function rawNode(key?: string): Promise<Libp2p> {
  return createLibp2p({
    ...(key ? { privateKey: privateKeyFromProtobuf(Buffer.from(key, 'base64')) } : {}),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
}

/** Opens our protocol on `address` from `node`, sends `hello`, returns the first frame answered (or null on close). */
async function helloFrom(node: Libp2p, address: string, hello: unknown): Promise<Record<string, unknown> | null> {
  const stream = await node.dialProtocol(multiaddr(address), CONCLAVE_PROTOCOL);
  const duplex = messageStreamToDuplex(stream);
  void duplex.sink([encodeFrame(hello)]).catch(() => undefined);
  const decoder = new FrameDecoder();
  for await (const chunk of duplex.source) {
    decoder.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
    const p = decoder.next();
    if (p) return decodePayload(p) as Record<string, unknown>;
  }
  return null;
}

describe('libp2pTransport: allow-list and member binding', function () {
  this.timeout(30_000);
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  async function pair(): Promise<{ keys: string[]; ts: Libp2pTransport[]; recs: Recorder[]; peers: Map<number, string> }> {
    const keys = await Promise.all([generatePeerKey(), generatePeerKey(), generatePeerKey()]);
    const ts = keys.slice(0, 2).map((k) => libp2pTransport({ listen: '/ip4/127.0.0.1/tcp/0', peerKey: k }));
    cleanups.push(async () => void (await Promise.all(ts.map((t) => t.stop()))));
    const peers = new Map<number, string>();
    for (const [i, t] of ts.entries()) peers.set(i + 1, await t.listen());
    // Member 3 is configured (allow-listed) but not running here.
    peers.set(3, `/ip4/127.0.0.1/tcp/1/p2p/${await peerIdFromKey(keys[2]!)}`);
    const recs = ts.map(record);
    await Promise.all(ts.map((t, i) => t.start(i + 1, peers)));
    await waitFor(() => ts[0]!.connected().includes(2) && ts[1]!.connected().includes(1), 10_000, 'members 1 and 2');
    return { keys, ts, recs, peers };
  }

  it('refuses a peer that is not allow-listed right after the Noise handshake, and reports it', async () => {
    const { ts, recs, peers } = await pair();
    const outsider = await rawNode();
    cleanups.push(async () => outsider.stop());
    await assert.rejects(helloFrom(outsider, peers.get(1)!, { t: 'hello', v: 2, from: 2, to: 1 }));
    await waitFor(() => recs[0]!.warns.some((w) => /not an allow-listed member/.test(w)), 5000, 'the refusal to be reported');
    assert.ok(recs[0]!.warns.some((w) => w.includes(outsider.peerId.toString())));
    assert.deepEqual(recs[0]!.ups, [2]);
    assert.ok(recs[0]!.messages.length === 0);
    assert.deepEqual(ts[0]!.connected(), [2]);
  });

  it('refuses an allow-listed peer that claims another member id in its hello', async () => {
    const { keys, recs, peers } = await pair();
    const member3 = await rawNode(keys[2]);
    cleanups.push(async () => member3.stop());
    const reply = await helloFrom(member3, peers.get(1)!, { t: 'hello', v: 2, from: 2, to: 1 });
    assert.equal(reply?.t, 'refused');
    assert.match(String(reply?.reason), /claims to be member 2, but its peer id is allow-listed as member 3/);
    await waitFor(() => recs[0]!.warns.some((w) => /claims to be member 2/.test(w)), 3000, 'the warning');
    assert.ok(!recs[0]!.ups.includes(3));
    const wrongTarget = await helloFrom(member3, peers.get(1)!, { t: 'hello', v: 2, from: 3, to: 2 });
    assert.equal(wrongTarget?.t, 'refused');
    assert.match(String(wrongTarget?.reason), /addressed to member 2/);
  });

  it('attributes messages to the authenticated member and ignores any id inside them', async () => {
    const { ts, recs } = await pair();
    ts[1]!.send(1, { t: 'vote', from: 3 } as unknown as { t: string });
    await waitFor(() => recs[0]!.messages.length === 1, 5000, 'the message');
    assert.equal(recs[0]!.messages[0]![0], 2);
  });

  it('checks its configuration: addresses need a peer id, the allow-list must agree, its own key must match', async () => {
    const [k1, k2] = await Promise.all([generatePeerKey(), generatePeerKey()]);
    const [p1, p2] = [await peerIdFromKey(k1), await peerIdFromKey(k2)];
    assert.equal(p1, await peerIdFromKey(Buffer.from(k1, 'base64')));
    assert.match(p1, /^12D3Koo/);
    await assert.rejects(libp2pTransport({ listen: '/ip4/127.0.0.1/tcp/0', peerKey: 'bm90IGEga2V5' }).listen(), /not a libp2p private key/);
    assert.throws(() => libp2pTransport({ listen: '127.0.0.1:4000', peerKey: k1 }), /multiaddr/);
    const t = libp2pTransport({ listen: '/ip4/127.0.0.1/tcp/0', peerKey: k1, allowedPeers: { 2: p1 } });
    cleanups.push(() => t.stop());
    await assert.rejects(t.start(1, new Map([[1, ''], [2, '/ip4/127.0.0.1/tcp/1']])), /own peer id/);
    const u = libp2pTransport({ listen: '/ip4/127.0.0.1/tcp/0', peerKey: k1 });
    cleanups.push(() => u.stop());
    await assert.rejects(u.start(1, new Map([[2, '/ip4/127.0.0.1/tcp/1']])), /must end in \/p2p/);
    await assert.rejects(u.start(1, new Map([[1, `/ip4/127.0.0.1/tcp/1/p2p/${p2}`]])), /this transport's key is/);
    const v = libp2pTransport({ listen: '/ip4/127.0.0.1/tcp/0', peerKey: k1, allowedPeers: new Map([[2, p2]]) });
    cleanups.push(() => v.stop());
    await v.start(1, new Map([[1, ''], [2, '/ip4/127.0.0.1/tcp/1']]));
    assert.deepEqual(v.connected(), []);
    assert.equal(v.peerId, p1);
  });
});
