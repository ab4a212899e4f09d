import type { noise as NoiseFn } from '@chainsafe/libp2p-noise';
import type { yamux as YamuxFn } from '@chainsafe/libp2p-yamux';
import type * as CryptoKeys from '@libp2p/crypto/keys';
import type { peerIdFromPrivateKey as PeerIdFromPrivateKey } from '@libp2p/peer-id';
import type { tcp as TcpFn } from '@libp2p/tcp';
import type { messageStreamToDuplex as MessageStreamToDuplex } from '@libp2p/utils';
import type { multiaddr as MultiaddrFn, Multiaddr } from '@multiformats/multiaddr';
import type { pipe as PipeFn } from 'it-pipe';
import type { createLibp2p as CreateLibp2p, Libp2p } from 'libp2p';
import { checkMaxFrameBytes, decodePayload, DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, FrameError, isPeerMessage } from './frame.js';
import { LinkTransport, parseLinkInfo, tagOf, type Channel, type ChannelTag, type DialOutcome, type LinkOptions } from './links.js';
import type { PeerAddresses, PeerMessage } from './types.js';

/**
 * libp2p transport: a libp2p 3.x node (TCP, Noise encryption, yamux multiplexing) per member, one
 * stream per member pair on protocol `/conclave/zab/1.0.0`, carrying the same length-prefixed
 * msgpackr frames as the TCP transport, piped with it-pipe through messageStreamToDuplex.
 * (lpStream is not used: it reads varint lengths byte by byte through a 4 MiB-capped buffer, which
 * is slow for small messages and too small for snapshot chunks.)
 *
 * Membership: Noise proves each side holds the private key of its peer id; the allow-list maps
 * peer ids to member ids. The connection gater refuses any other peer right after the Noise
 * handshake (before a stream can be opened), and the stream handler checks again. The first frame
 * on a stream is { t:'hello', v:2, from, to, inc, ch, lost } (the last three as in links.ts):
 * `from` must be the member id the allow-list gives the authenticated peer id and `to` this
 * member, otherwise it is refused and reported via 'warn'.
 * Messages are then attributed to that member whatever they contain. As with TCP, the lower id
 * opens the data stream and the higher id only pokes (see links.ts).
 *
 * libp2p 3 calls Promise.withResolvers, which Node 20 lacks: the first use of this transport installs
 * the standard polyfill when it is missing. libp2p itself is imported on first use (see loadModules).
 */

/** libp2p 3 calls Promise.withResolvers (Node ≥ 22); Node 20 needs the standard polyfill. */
function installWithResolvers(): void {
  if (typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers === 'function') return;
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (v: T | PromiseLike<T>) => void;
      let reject!: (e?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

interface Modules {
  createLibp2p: typeof CreateLibp2p;
  tcp: typeof TcpFn;
  noise: typeof NoiseFn;
  yamux: typeof YamuxFn;
  messageStreamToDuplex: typeof MessageStreamToDuplex;
  pipe: typeof PipeFn;
  multiaddr: typeof MultiaddrFn;
  keys: typeof CryptoKeys;
  peerIdFromPrivateKey: typeof PeerIdFromPrivateKey;
}

let modules: Promise<Modules> | undefined;
let loaded: Modules | undefined;

/**
 * libp2p and its stack take ~300 ms to import; they are loaded on first use so that applications
 * importing conclave for another transport do not pay for them.
 */
function loadModules(): Promise<Modules> {
  modules ??= (async () => {
    installWithResolvers();
    const [libp2p, tcpMod, noiseMod, yamuxMod, utils, itPipe, ma, keys, peerId] = await Promise.all([
      import('libp2p'), import('@libp2p/tcp'), import('@chainsafe/libp2p-noise'), import('@chainsafe/libp2p-yamux'),
      import('@libp2p/utils'), import('it-pipe'), import('@multiformats/multiaddr'), import('@libp2p/crypto/keys'), import('@libp2p/peer-id'),
    ]);
    loaded = {
      createLibp2p: libp2p.createLibp2p, tcp: tcpMod.tcp, noise: noiseMod.noise, yamux: yamuxMod.yamux,
      messageStreamToDuplex: utils.messageStreamToDuplex, pipe: itPipe.pipe, multiaddr: ma.multiaddr, keys, peerIdFromPrivateKey: peerId.peerIdFromPrivateKey,
    };
    return loaded;
  })();
  return modules;
}

function mods(): Modules {
  if (!loaded) throw new Error('libp2p modules not loaded yet');
  return loaded;
}

type PrivateKey = Parameters<typeof CryptoKeys.privateKeyToProtobuf>[0];
type Connection = Awaited<ReturnType<Libp2p['dial']>>;
type Stream = Awaited<ReturnType<Connection['newStream']>>;

export const CONCLAVE_PROTOCOL = '/conclave/zab/1.0.0';
/** Hello version: 2 since PROPOSAL and DIFF frames may be in the binary form (core/codec), which 1 cannot read. */
export const PROTOCOL_VERSION = 2;
const HANDSHAKE_MAX_FRAME = 4096;
const WRITE_BATCH_BYTES = 256 * 1024;
const PER_FRAME_OVERHEAD = 64;

export interface Libp2pTransportOptions extends LinkOptions {
  /** Multiaddr(s) to listen on, e.g. '/ip4/127.0.0.1/tcp/0' (port 0 picks one, kept across restarts). */
  listen: string | string[];
  /** This member's key: text from generatePeerKey(), its protobuf bytes, or a libp2p PrivateKey. */
  peerKey: string | Uint8Array | PrivateKey;
  /**
   * Member id → peer id of every member allowed to connect. Optional when every address in the
   * ensemble ends in /p2p/<peerId>; when both are given they must agree.
   */
  allowedPeers?: Record<number, string> | ReadonlyMap<number, string>;
  /** Protocol id (default '/conclave/zab/1.0.0'). */
  protocol?: string;
  /** Largest frame payload sent or accepted (default 64 MiB). */
  maxFrameBytes?: number;
  /** Per-peer outbound bound; exceeding it closes the stream (default max(256 MiB, 2 × maxFrameBytes)). */
  maxQueueBytes?: number;
  /** Dial + hello deadline (default 5000 ms). */
  handshakeTimeoutMs?: number;
}

/** A new Ed25519 libp2p key for a member, as base64 text (keep it secret, like a password). */
export async function generatePeerKey(): Promise<string> {
  const { keys } = await loadModules();
  const key = await keys.generateKeyPair('Ed25519');
  return Buffer.from(keys.privateKeyToProtobuf(key)).toString('base64');
}

function toPrivateKey(key: string | Uint8Array | PrivateKey): PrivateKey {
  const { keys } = mods();
  try {
    if (typeof key === 'string') return keys.privateKeyFromProtobuf(Buffer.from(key.trim(), 'base64'));
    if (key instanceof Uint8Array) return keys.privateKeyFromProtobuf(key);
  } catch (e) {
    throw new RangeError(`not a libp2p private key (expected generatePeerKey() text): ${(e as Error).message}`);
  }
  if (key && typeof key === 'object' && 'publicKey' in key) return key;
  throw new RangeError('peerKey must be generatePeerKey() text, protobuf bytes or a libp2p PrivateKey');
}

/** The peer id ('12D3Koo…') that a key from generatePeerKey() authenticates as. */
export async function peerIdFromKey(key: string | Uint8Array | PrivateKey): Promise<string> {
  await loadModules();
  return mods().peerIdFromPrivateKey(toPrivateKey(key)).toString();
}

/** The /p2p/<peerId> part of a multiaddr, if any. */
function peerIdOf(ma: Multiaddr): string | undefined {
  const p2p = ma.getComponents().filter((c) => c.name === 'p2p');
  return p2p.length > 0 ? p2p[p2p.length - 1]!.value : undefined;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

type Bytes = Uint8Array | { subarray(): Uint8Array };

/**
 * A yamux stream carrying frames. Outbound: a bounded queue drained by an async generator into
 * messageStreamToDuplex's sink (which waits for 'drain' when the stream's send() says so).
 * Inbound: the duplex source through the frame decoder.
 */
class StreamChannel implements Channel {
  peer = 0;
  readonly decoder = new FrameDecoder(HANDSHAKE_MAX_FRAME);
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private wake: (() => void) | undefined;
  private ended = false;
  private closedFlag = false;
  /** Frames go here; replaced when the handshake hands the stream over. */
  onFrame: (payload: Uint8Array) => void = () => undefined;
  onClose: () => void = () => undefined;

  constructor(readonly stream: Stream, private readonly t: Libp2pTransport, private maxQueueBytes: number) {
    const { messageStreamToDuplex, pipe } = mods();
    const duplex = messageStreamToDuplex(stream);
    stream.addEventListener('close', () => this.closed(), { once: true });
    pipe(this.outbound(), duplex.sink).catch(() => this.close());
    pipe(duplex.source, async (source: AsyncIterable<Bytes>) => {
      for await (const chunk of source) {
        if (this.closedFlag) return;
        this.decoder.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
        for (;;) {
          if (this.closedFlag) return;
          let payload: Uint8Array | null;
          try {
            payload = this.decoder.next();
          } catch (e) {
            this.t.warnFromChannel(`closed the stream with ${this.who()}: ${(e as FrameError).message}`);
            this.close();
            return;
          }
          if (payload === null) break;
          this.onFrame(payload);
        }
      }
    }).then(
      () => this.end(), // the other side closed its write end: finish ours gracefully (a refusal must get through)
      () => this.close(),
    );
  }

  who(): string {
    return this.peer > 0 ? `member ${this.peer}` : 'a peer';
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  setLimits(maxFrameBytes: number, maxQueueBytes: number): void {
    this.decoder.maxFrameBytes = maxFrameBytes;
    this.maxQueueBytes = maxQueueBytes;
  }

  send(msg: PeerMessage): void {
    if (this.closedFlag) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(msg, this.t.maxFrameBytes);
    } catch (e) {
      this.t.warnFromChannel(`cannot send '${String(msg?.t)}' to ${this.who()}: ${errorText(e)}; closing the stream`);
      this.close();
      return;
    }
    this.sendFrame(frame);
  }

  sendFrame(frame: Uint8Array): boolean {
    if (this.closedFlag) return false;
    const charge = frame.length + PER_FRAME_OVERHEAD;
    if (this.queued() + charge > this.maxQueueBytes) {
      this.t.warnFromChannel(`closed the stream with ${this.who()}: ${this.queued()} bytes queued for it would exceed maxQueueBytes (${this.maxQueueBytes}); it is not reading fast enough`);
      this.close();
      return false;
    }
    this.queue.push(frame);
    this.queuedBytes += charge;
    const w = this.wake;
    this.wake = undefined;
    w?.();
    return true;
  }

  queued(): number {
    return this.queuedBytes + (this.closedFlag ? 0 : this.stream.writeBufferLength ?? 0);
  }

  /** Sends what is queued, then closes the writable end (after a refusal or dial-back). */
  end(): void {
    this.ended = true;
    const w = this.wake;
    this.wake = undefined;
    w?.();
    const timer = setTimeout(() => this.close(), 1000);
    timer.unref();
  }

  close(): void {
    if (this.closedFlag) return;
    this.ended = true;
    const w = this.wake;
    this.wake = undefined;
    w?.();
    try {
      this.stream.abort(new Error('closed by conclave'));
    } catch {
      // already closed
    }
    this.closed();
  }

  private closed(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.decoder.clear();
    this.onClose();
  }

  private async *outbound(): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.queue.length === 0) {
        if (this.ended || this.closedFlag) return;
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      const q = this.queue;
      let batch: Uint8Array;
      let n = 1;
      if (q[0]!.length >= WRITE_BATCH_BYTES || q.length === 1) {
        batch = q[0]!;
      } else {
        let size = q[0]!.length;
        while (n < q.length && size + q[n]!.length <= WRITE_BATCH_BYTES) size += q[n++]!.length;
        batch = Buffer.concat(q.slice(0, n), size);
      }
      this.queue = n === q.length ? [] : q.slice(n);
      this.queuedBytes -= batch.length + n * PER_FRAME_OVERHEAD;
      yield batch;
    }
  }
}

/** See the module comment. Create with libp2pTransport(options). */
export class Libp2pTransport extends LinkTransport {
  readonly kind = 'libp2p';
  readonly protocol: string;
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  private readonly keyInput: string | Uint8Array | PrivateKey;
  private key: PrivateKey | undefined;
  private _peerId: string | undefined;
  private listenAddrs: string[];
  private readonly configuredAllowed: ReadonlyMap<number, string> | undefined;
  private readonly handshakeTimeoutMs: number;
  private node: Libp2p | undefined;
  private listening: Promise<string> | undefined;
  private bound: string | undefined;
  /** Authenticated peer id → member id (empty until start: nobody gets in before). */
  private allowed = new Map<string, number>();
  private dialTargets = new Map<number, Multiaddr>();
  private readonly streams = new Set<StreamChannel>();

  constructor(options: Libp2pTransportOptions) {
    super(options);
    // The key and addresses are parsed once libp2p is loaded (listen/start), which then reject on bad input.
    this.keyInput = options.peerKey;
    if (typeof options.peerKey !== 'string' && !(options.peerKey instanceof Uint8Array) && (options.peerKey === null || typeof options.peerKey !== 'object')) {
      throw new RangeError('peerKey must be generatePeerKey() text, protobuf bytes or a libp2p PrivateKey');
    }
    this.listenAddrs = Array.isArray(options.listen) ? [...options.listen] : [options.listen];
    if (this.listenAddrs.length === 0 || !this.listenAddrs.every((a) => typeof a === 'string' && a.startsWith('/'))) {
      throw new RangeError(`libp2pTransport needs listen multiaddr(s) like '/ip4/127.0.0.1/tcp/0' (got ${JSON.stringify(options.listen)})`);
    }
    this.protocol = options.protocol ?? CONCLAVE_PROTOCOL;
    this.maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.maxQueueBytes = options.maxQueueBytes ?? Math.max(256 * 1024 * 1024, 2 * this.maxFrameBytes);
    if (!(this.maxQueueBytes > this.maxFrameBytes)) throw new RangeError(`maxQueueBytes (${this.maxQueueBytes}) must exceed maxFrameBytes (${this.maxFrameBytes})`);
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000;
    const a = options.allowedPeers;
    this.configuredAllowed = a === undefined ? undefined : a instanceof Map ? a : new Map(Object.entries(a).map(([k, v]) => [Number(k), v] as [number, string]));
  }

  /** This member's address for the ensemble map: the first listen multiaddr with /p2p/<peerId>. */
  address(): string | undefined {
    return this.bound;
  }

  /** This member's peer id, once listen() or start() began (peerIdFromKey(key) gives it earlier). */
  get peerId(): string | undefined {
    return this._peerId;
  }

  /** Loads libp2p and parses the key and listen addresses (once). */
  private async prepare(): Promise<void> {
    const m = await loadModules();
    if (!this.key) {
      const key = toPrivateKey(this.keyInput);
      this._peerId = m.peerIdFromPrivateKey(key).toString();
      this.key = key;
    }
    this.listenAddrs = this.listenAddrs.map((a) => {
      try {
        return m.multiaddr(a).toString();
      } catch (e) {
        throw new RangeError(`listen address ${a} is not a multiaddr: ${errorText(e)}`);
      }
    });
  }

  protected override beforeStart(): Promise<void> {
    return this.prepare();
  }

  listen(): Promise<string> {
    if (this.listening) return this.listening;
    const p = this.createNode();
    this.listening = p;
    p.catch(() => {
      if (this.listening === p) this.listening = undefined;
    });
    return p;
  }

  /** @internal */
  warnFromChannel(message: string, detail?: Record<string, unknown>): void {
    this.warn(message, detail);
  }

  private async createNode(): Promise<string> {
    await this.prepare();
    const { createLibp2p, tcp, noise, yamux } = mods();
    const node = await createLibp2p({
      privateKey: this.key,
      addresses: { listen: this.listenAddrs },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: {
        denyInboundEncryptedConnection: (peer) => this.deny(peer.toString(), 'inbound'),
        denyOutboundEncryptedConnection: (peer) => this.deny(peer.toString(), 'outbound'),
        denyDialPeer: (peer) => !this.allowed.has(peer.toString()),
      },
    });
    try {
      await node.handle(this.protocol, (stream, connection) => this.onStream(stream, connection), { maxInboundStreams: 16, maxOutboundStreams: 16 });
    } catch (e) {
      await node.stop();
      throw e;
    }
    this.node = node;
    const addrs = node.getMultiaddrs();
    if (addrs.length === 0) {
      await node.stop();
      throw new Error(`libp2p transport could not listen on ${this.listenAddrs.join(', ')}`);
    }
    // Keep the ports we got, so that a restart of this transport is reachable at the same address.
    this.listenAddrs = addrs.map((a) => a.decapsulateCode(421).toString());
    this.bound = addrs[0]!.toString();
    return this.bound;
  }

  private deny(peer: string, direction: string): boolean {
    if (this.allowed.has(peer)) return false;
    this.warn(`refused ${direction} libp2p connection with peer ${peer}: not an allow-listed member`, { peerId: peer });
    return true;
  }

  protected configure(self: number, peers: PeerAddresses): void {
    const allowed = new Map<string, number>();
    const targets = new Map<number, Multiaddr>();
    const given = this.configuredAllowed;
    const { multiaddr } = mods();
    if (given?.has(self) && given.get(self) !== this.peerId) {
      throw new RangeError(`allowedPeers says member ${self} is ${given.get(self)}, but this transport's key is ${this.peerId}`);
    }
    for (const [id, address] of peers) {
      let ma: Multiaddr;
      try {
        ma = multiaddr(address);
      } catch (e) {
        throw new RangeError(`address of member ${id} is not a multiaddr: ${address} (${errorText(e)})`);
      }
      const inAddress = peerIdOf(ma);
      const inList = given?.get(id);
      if (inAddress && inList && inAddress !== inList) throw new RangeError(`member ${id}: address says peer ${inAddress}, allowedPeers says ${inList}`);
      const peerId = inAddress ?? inList;
      if (id === self) {
        if (peerId && peerId !== this.peerId) throw new RangeError(`member ${self}'s address names peer ${peerId}, but this transport's key is ${this.peerId}`);
        continue;
      }
      if (!peerId) throw new RangeError(`member ${id}: its address must end in /p2p/<peerId>, or allowedPeers must list it`);
      if (allowed.has(peerId)) throw new RangeError(`peer ${peerId} is listed for members ${allowed.get(peerId)} and ${id}`);
      if (peerId === this.peerId) throw new RangeError(`member ${id} has this member's own peer id ${peerId}`);
      allowed.set(peerId, id);
      targets.set(id, inAddress ? ma : ma.encapsulate(`/p2p/${peerId}`));
    }
    this.allowed = allowed;
    this.dialTargets = targets;
  }

  protected async shutdown(): Promise<void> {
    for (const s of this.streams) s.close();
    this.streams.clear();
    this.allowed = new Map();
    const node = this.node;
    this.node = undefined;
    this.listening = undefined;
    this.bound = undefined;
    if (node) {
      await Promise.allSettled(node.getConnections().map((c) => c.abort(new Error('conclave transport stopped'))));
      await node.stop();
      // libp2p's address manager reacts to its listeners closing with a debounced (1 s, ref'd) peer
      // store update, which would keep a stopping process alive for a second. Cancel it; best effort,
      // as this reaches into libp2p internals (harmless if they change: then the timer just runs).
      try {
        const am = (node as unknown as { components?: { addressManager?: { _updatePeerStoreAddresses?: { stop?: () => void } } } }).components?.addressManager;
        am?._updatePeerStoreAddresses?.stop?.();
      } catch {
        // not there in this libp2p version
      }
    }
  }

  /** Every stream is tracked until it closes (each onClose below removes it), so stop() can close them. */
  private track(s: StreamChannel): void {
    this.streams.add(s);
  }

  private adopt(s: StreamChannel, peer: number, tag: ChannelTag | undefined, remoteInc: string | undefined): void {
    s.setLimits(this.maxFrameBytes, this.maxQueueBytes);
    s.onFrame = (payload) => {
      let msg: unknown;
      try {
        msg = decodePayload(payload);
      } catch (e) {
        this.warn(`dropped a frame from member ${peer}: ${errorText(e)}`, { peer });
        return;
      }
      if (!isPeerMessage(msg)) {
        this.warn(`dropped a frame from member ${peer}: not a message`, { peer });
        return;
      }
      this.safeEmit('message', peer, msg);
    };
    s.onClose = () => {
      this.streams.delete(s);
      this.channelClosed(s);
    };
    this.established(s, tag, remoteInc);
  }

  private onStream(stream: Stream, connection: Connection): void {
    const remote = connection.remotePeer.toString();
    const from = this.allowed.get(remote);
    if (!this.running || from === undefined) {
      if (this.running) this.warn(`refused a stream from libp2p peer ${remote}: not an allow-listed member`, { peerId: remote });
      stream.abort(new Error('not allowed'));
      return;
    }
    const s = new StreamChannel(stream, this, HANDSHAKE_MAX_FRAME * 4);
    this.track(s);
    let done = false;
    const timer = setTimeout(() => refuse(`no hello within ${this.handshakeTimeoutMs} ms`), this.handshakeTimeoutMs);
    timer.unref();
    const refuse = (reason: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.warn(`refused a stream from member ${from} (peer ${remote}): ${reason}`, { peerId: remote, peer: from });
      s.sendFrame(encodeFrame({ t: 'refused', reason }));
      s.end();
    };
    s.onFrame = (payload) => {
      if (done) return;
      let msg: unknown;
      try {
        msg = decodePayload(payload);
      } catch (e) {
        return refuse(`malformed hello: ${errorText(e)}`);
      }
      if (!isObject(msg) || msg.t !== 'hello') return refuse('expected hello');
      if (msg.v !== PROTOCOL_VERSION) return refuse(`unsupported protocol version ${String(msg.v).slice(0, 16)} (this member speaks ${PROTOCOL_VERSION}; every member must run the same conclave version)`);
      if (msg.from !== from) return refuse(`claims to be member ${String(msg.from).slice(0, 16)}, but its peer id is allow-listed as member ${from}`);
      if (msg.to !== this.self) return refuse(`hello addressed to member ${String(msg.to).slice(0, 16)}, this is member ${this.self}`);
      const info = parseLinkInfo(msg);
      if (typeof info === 'string') return refuse(`hello with a ${info}`);
      done = true;
      clearTimeout(timer);
      s.peer = from;
      const accept = this.accepts(from);
      s.sendFrame(encodeFrame({ t: 'welcome', v: PROTOCOL_VERSION, accept, ...this.welcomeInfo() }));
      if (accept) {
        this.adopt(s, from, tagOf(info), info.inc);
      } else {
        s.end();
        this.poked(from, info);
      }
    };
    s.onClose = () => {
      this.streams.delete(s);
      if (!done) {
        done = true;
        clearTimeout(timer);
      }
    };
  }

  protected async dial(peer: number): Promise<DialOutcome> {
    const node = this.node;
    const target = this.dialTargets.get(peer);
    if (!node || !target) throw new Error(`cannot dial member ${peer}`);
    const signal = AbortSignal.timeout(this.handshakeTimeoutMs);
    const connection = await node.dial(target, { signal });
    const expectedPeer = peerIdOf(target);
    if (connection.remotePeer.toString() !== expectedPeer) {
      // Noise already checked this when dialing a /p2p/ address; never trust a mismatch.
      this.warn(`dialed member ${peer} but reached peer ${connection.remotePeer.toString()}`, { peer });
      throw new Error('wrong peer');
    }
    const stream = await connection.newStream(this.protocol, { signal });
    if (!this.running) {
      stream.abort(new Error('stopped'));
      throw new Error('stopped');
    }
    const info = this.helloInfo(peer);
    if (!info) {
      stream.abort(new Error('connected meanwhile'));
      throw new Error('connected meanwhile'); // a poke, and the peer's channel came up
    }
    const s = new StreamChannel(stream, this, HANDSHAKE_MAX_FRAME * 4);
    s.peer = peer;
    this.track(s);
    return new Promise<DialOutcome>((resolve, reject) => {
      let done = false;
      const fail = (e: Error, warning?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (warning) this.warn(warning, { peer });
        s.close();
        reject(e);
      };
      const timer = setTimeout(() => fail(new Error('hello timeout'), `no welcome from member ${peer} within ${this.handshakeTimeoutMs} ms`), this.handshakeTimeoutMs);
      timer.unref();
      s.onFrame = (payload) => {
        if (done) return;
        let msg: unknown;
        try {
          msg = decodePayload(payload);
        } catch (e) {
          return fail(e as Error, `member ${peer} sent a malformed welcome: ${errorText(e)}`);
        }
        if (isObject(msg) && msg.t === 'refused') return fail(new Error('refused'), `member ${peer} refused our stream: ${String(msg.reason).slice(0, 200)}`);
        if (!isObject(msg) || msg.t !== 'welcome') return fail(new Error('bad welcome'), `member ${peer} answered something other than welcome`);
        const expected = this.self < peer;
        if (msg.accept !== expected) return fail(new Error('bad welcome'), `member ${peer} answered accept=${String(msg.accept)}; expected ${expected}`);
        const welcome = parseLinkInfo(msg);
        if (typeof welcome === 'string') return fail(new Error('bad welcome'), `member ${peer} sent a welcome with a ${welcome}`);
        done = true;
        clearTimeout(timer);
        if (expected) {
          this.adopt(s, peer, { inc: this.incarnation, ch: info.ch }, welcome.inc);
          resolve('up');
        } else {
          s.end();
          resolve('dialback');
        }
      };
      s.onClose = () => {
        this.streams.delete(s);
        fail(new Error('stream closed during the hello'));
      };
      s.sendFrame(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, from: this.self, to: peer, ...info }));
    });
  }
}

/** A libp2p transport for one member (see Libp2pTransport). */
export function libp2pTransport(options: Libp2pTransportOptions): Libp2pTransport {
  return new Libp2pTransport(options);
}
