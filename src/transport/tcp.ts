import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { encode } from '../core/codec.js';
import { FramedSocket, type FramedSocketHandlers } from './framedSocket.js';
import { checkMaxFrameBytes, decodePayload, DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameError, isPeerMessage } from './frame.js';
import { LinkTransport, parseLinkInfo, tagOf, type Channel, type DialOutcome, type LinkInfo, type LinkOptions } from './links.js';
import type { PeerAddresses, PeerMessage } from './types.js';

/**
 * TCP transport (node:net): length-prefixed msgpackr frames, one connection per member pair, and a
 * mutually authenticated handshake before any protocol message is read.
 *
 * Handshake (every frame ≤ 4 KiB; 5 s to complete; at most 64 in progress):
 *   dialer   → acceptor  { t:'hello', v:2, role:'member', from, to, nonce: Nd (32 random bytes), inc, ch, lost }
 *   acceptor → dialer    { t:'challenge', nonce: Na (32 random bytes) }
 *   dialer   → acceptor  { t:'auth', proof: HMAC(K, ['conclave/tcp/1','dialer',  from,to,Nd,Na]) }
 *   acceptor → dialer    { t:'welcome', accept, proof: HMAC(K, ['conclave/tcp/1','acceptor',from,to,Nd,Na]), inc }
 * (`inc`, `ch` and `lost` tell a stale poke from a real one: see links.ts.)
 * K = HMAC-SHA256(secret, 'conclave ensemble key v1'). The dialer proves the secret first, so an
 * unauthenticated party never obtains a proof; each proof covers both member ids and both sides'
 * fresh nonces, so a recorded handshake replayed in either direction fails, and a proof for one
 * pair of members is useless for another. `from` must be a configured member and `to` this member,
 * otherwise the acceptor answers { t:'refused', reason } and closes; every refusal is reported
 * through 'warn'. After the handshake the connection is bound to the authenticated id: messages
 * are attributed to it whatever they contain.
 *
 * This authenticates membership; it does not encrypt or integrity-protect the stream afterwards.
 * Run it on a trusted network, or use the libp2p transport (Noise) where that matters.
 *
 * A connection whose hello says role:'client' is not a member: it is handed, unauthenticated, to
 * `onClient` as a ClientConnection (sessions authenticate at their own level, e.g. digest).
 */

export interface TcpTransportOptions extends LinkOptions {
  /** 'host:port' to listen on ('[::1]:2888' for IPv6); port 0 picks a free port, kept across restarts. */
  listen: string;
  /** Ensemble membership secret, the same on every member (use ≥ 16 random bytes). */
  secret: string | Uint8Array;
  /** Largest frame payload sent or accepted from members (default 64 MiB). */
  maxFrameBytes?: number;
  /**
   * Bound on bytes queued for one peer and not yet taken by the kernel (default max(256 MiB, 2 ×
   * maxFrameBytes)). Exceeding it closes the connection (policy "disconnect": nothing is dropped
   * silently; the peer sees 'down', ZAB resynchronizes when it reconnects).
   */
  maxQueueBytes?: number;
  /** Time allowed for connect + handshake (default 5000 ms). */
  handshakeTimeoutMs?: number;
  /** Unauthenticated connections in handshake at once; more are refused (default 64). */
  maxPendingHandshakes?: number;
  /**
   * Receives connections that identify as clients. A member given this transport serves them as
   * remote sessions by itself (see Transport.serveClients); set this only to handle them yourself.
   * Without either, client connections are refused.
   */
  onClient?: (conn: ClientConnection) => void;
  /** Largest frame accepted from a client (default 16 MiB, at most maxFrameBytes). */
  clientMaxFrameBytes?: number;
  /** Outbound queue bound per client (default 64 MiB); exceeding it closes the client connection. */
  clientMaxQueueBytes?: number;
  /** Client connections open at once; more are refused (default 4096). */
  maxClients?: number;
}

export interface ClientConnectionEvents {
  /** One message (an object with a string `t`) from the other end. */
  message: (msg: PeerMessage) => void;
  /** The connection closed (exactly once). */
  close: (error?: Error) => void;
  /** A rejected frame or similar; the connection may have been closed because of it. */
  warn: (message: string, detail?: Record<string, unknown>) => void;
}

/**
 * A framed, ordered message connection between a client (a process that is not a member) and a
 * member: the member side is handed to TcpTransportOptions.onClient, the client side comes from
 * connectTcpClient(). Messages are objects with a string `t`, msgpackr-encoded (bigint and
 * Uint8Array preserved). Nothing here authenticates the client; `remoteAddress` is what the `ip`
 * ACL scheme looks at.
 */
export interface ClientConnection extends EventEmitter<ClientConnectionEvents> {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The other side's opening frame: the client's hello (member side) or the member's welcome (client side). */
  readonly hello: Readonly<Record<string, unknown>>;
  readonly closed: boolean;
  /** Queues `msg`; false if the connection is closed, or if it could not be encoded / overflowed (then it is closed). */
  send(msg: PeerMessage): boolean;
  /** Bytes waiting to be sent. */
  queued(): number;
  close(): void;
}

const PROTOCOL = 'conclave/tcp/1';
/** Client connections' hello/welcome version. */
const PROTOCOL_VERSION = 1;
/**
 * Members' hello version: 2 since PROPOSAL and DIFF frames may be in the binary form (core/codec),
 * which version 1 cannot read; members of different versions refuse each other at the handshake.
 */
export const MEMBER_PROTOCOL_VERSION = 2;
const NONCE_BYTES = 32;
const HANDSHAKE_MAX_FRAME = 4096;
const HANDSHAKE_MAX_QUEUE = 64 * 1024;

export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new RangeError(`'${address}' is not a 'host:port' address (IPv6: '[::1]:2888')`);
  return { host: m[1]!, port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function describe(v: unknown): string {
  if (isObject(v)) return typeof v.t === 'string' ? `'${v.t.slice(0, 32)}'` : 'an object without t';
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function isNonce(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length === NONCE_BYTES;
}

function sameBytes(a: Uint8Array, b: unknown): boolean {
  return b instanceof Uint8Array && a.length === b.length && timingSafeEqual(a, b);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

class TcpChannel implements Channel {
  constructor(readonly peer: number, readonly fs: FramedSocket, private readonly t: TcpTransport) {}

  send(msg: PeerMessage): void {
    if (this.fs.closed) return;
    let frame: Buffer;
    try {
      frame = encodeFrame(msg, this.t.maxFrameBytes);
    } catch (e) {
      // Dropping one message silently would leave a gap in a FIFO stream; closing makes it visible.
      this.t.warnFromChannel(`cannot send '${String(msg?.t)}' to member ${this.peer}: ${errorText(e)}; closing the connection`, { peer: this.peer });
      this.fs.destroy();
      return;
    }
    this.fs.write(frame);
  }

  queued(): number {
    return this.fs.queued();
  }

  close(): void {
    this.fs.destroy();
  }
}

class TcpClientConnection extends EventEmitter<ClientConnectionEvents> implements ClientConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;

  constructor(
    private readonly fs: FramedSocket,
    readonly hello: Readonly<Record<string, unknown>>,
    private readonly maxFrameBytes: number,
    maxQueueBytes: number,
    private readonly report: (message: string, detail?: Record<string, unknown>) => void,
  ) {
    super();
    this.remoteAddress = fs.remoteAddress;
    this.remotePort = fs.remotePort;
    fs.decoder.maxFrameBytes = maxFrameBytes;
    fs.maxQueueBytes = maxQueueBytes;
    const where = formatHostPort(this.remoteAddress, this.remotePort);
    fs.setHandlers({
      frame: (payload) => {
        let msg: unknown;
        try {
          msg = decodePayload(payload);
        } catch (e) {
          this.report(`dropped a frame from ${where}: ${errorText(e)}`, { remote: where });
          return;
        }
        if (!isPeerMessage(msg)) {
          this.report(`dropped a frame from ${where}: ${describe(msg)} is not a message`, { remote: where });
          return;
        }
        this.emit('message', msg);
      },
      badFraming: (e) => this.report(`closed the connection with ${where}: ${e.message}`, { remote: where }),
      overflow: (q) => this.report(`closed the connection with ${where}: ${q} bytes queued for it exceed the bound (it does not read)`, { remote: where }),
      handlerError: (e) => this.report(`closed the connection with ${where}: a message listener threw: ${errorText(e)}`, { remote: where }),
      close: (error) => this.emit('close', error),
    });
  }

  get closed(): boolean {
    return this.fs.closed;
  }

  send(msg: PeerMessage): boolean {
    if (this.fs.closed) return false;
    let frame: Buffer;
    try {
      frame = encodeFrame(msg, this.maxFrameBytes);
    } catch (e) {
      this.report(`cannot send '${String(msg?.t)}': ${errorText(e)}; closing the connection`);
      this.fs.destroy();
      return false;
    }
    return this.fs.write(frame);
  }

  queued(): number {
    return this.fs.queued();
  }

  close(): void {
    this.fs.end();
  }
}

/** See the module comment. Create with tcpTransport(options). */
export class TcpTransport extends LinkTransport {
  readonly kind = 'tcp';
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  private readonly key: Buffer;
  private readonly listenHost: string;
  private listenPort: number;
  private readonly handshakeTimeoutMs: number;
  private readonly maxPendingHandshakes: number;
  private readonly maxClients: number;
  private readonly clientMaxFrameBytes: number;
  private readonly clientMaxQueueBytes: number;
  private onClient: ((conn: ClientConnection) => void) | undefined;
  private server: net.Server | undefined;
  private listening: Promise<string> | undefined;
  private bound: string | undefined;
  private addresses = new Map<number, { host: string; port: number; text: string }>();
  /** Inbound sockets in handshake (bounded by maxPendingHandshakes). */
  private readonly pending = new Set<net.Socket>();
  /** Every socket this transport opened or accepted and that is not closed yet (stop destroys them). */
  private readonly sockets = new Set<net.Socket>();
  private readonly clients = new Set<TcpClientConnection>();

  constructor(options: TcpTransportOptions) {
    super(options);
    const { host, port } = parseHostPort(options.listen);
    this.listenHost = host;
    this.listenPort = port;
    const secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : options.secret instanceof Uint8Array ? Buffer.from(options.secret) : undefined;
    if (!secret || secret.length === 0) throw new RangeError('tcpTransport needs a non-empty ensemble secret (string or Uint8Array), the same on every member');
    this.key = createHmac('sha256', secret).update('conclave ensemble key v1').digest();
    this.maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.maxQueueBytes = options.maxQueueBytes ?? Math.max(256 * 1024 * 1024, 2 * this.maxFrameBytes);
    if (!(this.maxQueueBytes > this.maxFrameBytes)) throw new RangeError(`maxQueueBytes (${this.maxQueueBytes}) must exceed maxFrameBytes (${this.maxFrameBytes})`);
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000;
    this.maxPendingHandshakes = options.maxPendingHandshakes ?? 64;
    this.maxClients = options.maxClients ?? 4096;
    this.clientMaxFrameBytes = Math.min(this.maxFrameBytes, checkMaxFrameBytes(options.clientMaxFrameBytes ?? 16 * 1024 * 1024, 'clientMaxFrameBytes'));
    this.clientMaxQueueBytes = options.clientMaxQueueBytes ?? 64 * 1024 * 1024;
    this.onClient = options.onClient;
  }

  /** Client connections go to `handler` (a member's acceptClient), unless onClient was given. */
  serveClients(handler: (conn: ClientConnection) => void): boolean {
    if (this.onClient) return false;
    this.onClient = handler;
    return true;
  }

  /** The address this transport listens on ('host:port'), once listening. */
  address(): string | undefined {
    return this.bound;
  }

  /** Client connections currently open. */
  clientCount(): number {
    return this.clients.size;
  }

  listen(): Promise<string> {
    if (this.listening) return this.listening;
    const p = new Promise<string>((resolve, reject) => {
      const server = net.createServer({ noDelay: true }, (socket) => this.onConnection(socket));
      const onError = (e: Error): void => {
        server.close();
        reject(new Error(`tcp transport cannot listen on ${formatHostPort(this.listenHost, this.listenPort)}: ${e.message}`));
      };
      server.once('error', onError);
      server.listen({ host: this.listenHost, port: this.listenPort }, () => {
        server.off('error', onError);
        server.on('error', (e) => this.warn(`listener error: ${e.message}`));
        const a = server.address() as net.AddressInfo;
        this.listenPort = a.port; // a restart re-binds the same port, so peers' address maps stay valid
        this.bound = formatHostPort(this.listenHost, a.port);
        this.server = server;
        resolve(this.bound);
      });
    });
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

  protected configure(self: number, peers: PeerAddresses): void {
    const addresses = new Map<number, { host: string; port: number; text: string }>();
    for (const [id, address] of peers) {
      if (id === self) continue;
      const hp = parseHostPort(address);
      addresses.set(id, { ...hp, text: address });
    }
    this.addresses = addresses;
  }

  protected async shutdown(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.pending.clear();
    const server = this.server;
    this.server = undefined;
    this.listening = undefined;
    this.bound = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private proof(role: 'dialer' | 'acceptor', dialer: number, acceptor: number, nd: Uint8Array, na: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update(encode([PROTOCOL, role, dialer, acceptor, nd, na])).digest();
  }

  private adopt(fs: FramedSocket, peer: number): TcpChannel {
    fs.decoder.maxFrameBytes = this.maxFrameBytes;
    fs.maxQueueBytes = this.maxQueueBytes;
    const channel = new TcpChannel(peer, fs, this);
    fs.setHandlers({
      frame: (payload) => {
        let msg: unknown;
        try {
          msg = decodePayload(payload);
        } catch (e) {
          this.warn(`dropped a frame from member ${peer}: ${errorText(e)}`, { peer });
          return;
        }
        if (!isPeerMessage(msg)) {
          this.warn(`dropped a frame from member ${peer}: ${describe(msg)} is not a message`, { peer });
          return;
        }
        this.safeEmit('message', peer, msg);
      },
      badFraming: (e) => this.warn(`closed the connection with member ${peer}: ${e.message}`, { peer }),
      overflow: (q) => this.warn(`closed the connection with member ${peer}: ${q} bytes queued for it would exceed maxQueueBytes (${this.maxQueueBytes}); it is not reading fast enough`, { peer }),
      handlerError: (e) => this.warn(`closed the connection with member ${peer}: ${errorText(e)}`, { peer }),
      close: () => this.channelClosed(channel),
    });
    return channel;
  }

  // ------------------------------------------------------------------ acceptor side

  private onConnection(socket: net.Socket): void {
    const remote = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    if (!this.running) {
      socket.destroy();
      return;
    }
    if (this.pending.size >= this.maxPendingHandshakes) {
      socket.destroy();
      this.warn(`refused a connection from ${remote}: ${this.pending.size} handshakes already in progress`, { remote });
      return;
    }
    this.track(socket);
    this.pending.add(socket);
    let state: 'hello' | 'auth' | 'done' = 'hello';
    let from = 0;
    let info: LinkInfo = {};
    let nd: Uint8Array = new Uint8Array(0);
    let na: Uint8Array = new Uint8Array(0);
    const finish = (): void => {
      state = 'done';
      clearTimeout(timer);
      this.pending.delete(socket);
    };
    const refuse = (reason: string, detail?: Record<string, unknown>): void => {
      if (state === 'done') return;
      finish();
      this.warn(`refused a connection from ${remote}: ${reason}`, { remote, ...detail });
      try {
        fs.write(encodeFrame({ t: 'refused', reason }));
      } catch {
        // the reason is ours and always encodable
      }
      fs.end();
    };
    const timer = setTimeout(() => refuse(`handshake not completed within ${this.handshakeTimeoutMs} ms`), this.handshakeTimeoutMs);
    timer.unref();
    const handlers: FramedSocketHandlers = {
      frame: (payload) => {
        if (state === 'done') return;
        let msg: unknown;
        try {
          msg = decodePayload(payload);
        } catch (e) {
          refuse(`malformed handshake frame: ${errorText(e)}`);
          return;
        }
        if (!isObject(msg)) {
          refuse(`expected a handshake frame, got ${describe(msg)}`);
          return;
        }
        if (state === 'hello') {
          if (msg.t !== 'hello') return refuse(`expected hello, got ${describe(msg)} before the handshake`);
          if (msg.role === 'client') {
            if (msg.v !== PROTOCOL_VERSION) return refuse(`unsupported protocol version ${String(msg.v).slice(0, 16)}`);
            return this.acceptClient(fs, msg, finish, refuse);
          }
          if (msg.role !== 'member') return refuse(`unknown role ${String(msg.role).slice(0, 16)}`);
          if (msg.v !== MEMBER_PROTOCOL_VERSION) {
            return refuse(`unsupported member protocol version ${String(msg.v).slice(0, 16)} (this member speaks ${MEMBER_PROTOCOL_VERSION}; every member must run the same conclave version)`);
          }
          if (msg.to !== this.self) return refuse(`hello addressed to member ${String(msg.to).slice(0, 16)}, this is member ${this.self}`);
          if (!this.isMember(msg.from)) return refuse(`unknown member id ${String(msg.from).slice(0, 16)}`, { claimedId: typeof msg.from === 'number' ? msg.from : undefined });
          if (!isNonce(msg.nonce)) return refuse('hello without a valid nonce');
          const parsed = parseLinkInfo(msg);
          if (typeof parsed === 'string') return refuse(`hello with a ${parsed}`);
          info = parsed;
          from = msg.from;
          nd = msg.nonce;
          na = randomBytes(NONCE_BYTES);
          state = 'auth';
          fs.write(encodeFrame({ t: 'challenge', nonce: na }));
          return;
        }
        // state === 'auth'
        if (msg.t !== 'auth') return refuse(`expected auth, got ${describe(msg)}`, { claimedId: from });
        if (!sameBytes(this.proof('dialer', from, this.self, nd, na), msg.proof)) {
          return refuse(`member ${from} failed authentication (wrong ensemble secret?)`, { claimedId: from });
        }
        finish();
        const accept = this.accepts(from);
        fs.write(encodeFrame({ t: 'welcome', accept, proof: this.proof('acceptor', from, this.self, nd, na), ...this.welcomeInfo() }));
        if (accept) {
          this.established(this.adopt(fs, from), tagOf(info), info.inc);
        } else {
          fs.end();
          this.poked(from, info);
        }
      },
      badFraming: (e) => {
        if (state === 'done') return;
        finish();
        this.warn(`refused a connection from ${remote}: ${e.message} during the handshake`, { remote });
      },
      overflow: () => finish(),
      handlerError: (e) => {
        finish();
        this.warn(`refused a connection from ${remote}: ${errorText(e)}`, { remote });
      },
      close: () => {
        if (state !== 'done') finish();
      },
    };
    const fs = new FramedSocket(socket, HANDSHAKE_MAX_FRAME, HANDSHAKE_MAX_QUEUE, handlers);
  }

  private acceptClient(fs: FramedSocket, hello: Record<string, unknown>, finish: () => void, refuse: (reason: string) => void): void {
    if (!this.onClient) return refuse('this member does not accept client connections');
    if (this.clients.size >= this.maxClients) return refuse(`too many client connections (${this.clients.size})`);
    finish();
    fs.write(encodeFrame({ t: 'welcome', v: PROTOCOL_VERSION, role: 'client', member: this.self }));
    const remote = formatHostPort(fs.remoteAddress, fs.remotePort);
    const conn = new TcpClientConnection(fs, hello, this.clientMaxFrameBytes, this.clientMaxQueueBytes, (m, d) => this.warn(`client ${remote}: ${m}`, { client: remote, ...d }));
    this.clients.add(conn);
    conn.once('close', () => this.clients.delete(conn));
    try {
      this.onClient(conn);
    } catch (e) {
      this.warn(`onClient threw: ${errorText(e)}; closing the client connection`, { client: remote });
      conn.close();
    }
  }

  // ------------------------------------------------------------------ dialer side

  protected dial(peer: number): Promise<DialOutcome> {
    const addr = this.addresses.get(peer);
    if (!addr) return Promise.reject(new Error(`no address for member ${peer}`));
    return new Promise<DialOutcome>((resolve, reject) => {
      const socket = net.connect({ host: addr.host, port: addr.port });
      this.track(socket);
      let state: 'connect' | 'challenge' | 'welcome' | 'done' = 'connect';
      const nd = randomBytes(NONCE_BYTES);
      let na: Uint8Array = new Uint8Array(0);
      let ch = 0;
      const done = (): void => {
        state = 'done';
        clearTimeout(timer);
      };
      const fail = (error: Error, warning?: string): void => {
        if (state === 'done') return;
        done();
        if (warning) this.warn(warning, { peer, address: addr.text });
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => fail(new Error('handshake timeout'), `no handshake with member ${peer} at ${addr.text} within ${this.handshakeTimeoutMs} ms`), this.handshakeTimeoutMs);
      timer.unref();
      socket.on('error', (e) => fail(e));
      socket.on('close', () => fail(new Error('connection closed during the handshake')));
      const handlers: FramedSocketHandlers = {
        frame: (payload) => {
          if (state === 'done') return;
          let msg: unknown;
          try {
            msg = decodePayload(payload);
          } catch (e) {
            return fail(e as Error, `member ${peer} at ${addr.text} sent a malformed handshake frame: ${errorText(e)}`);
          }
          if (!isObject(msg)) return fail(new Error('bad handshake'), `member ${peer} at ${addr.text} sent ${describe(msg)} during the handshake`);
          if (msg.t === 'refused') {
            return fail(new Error('refused'), `member ${peer} at ${addr.text} refused our connection: ${String(msg.reason).slice(0, 200)}`);
          }
          if (state === 'challenge') {
            if (msg.t !== 'challenge' || !isNonce(msg.nonce)) return fail(new Error('bad handshake'), `member ${peer} at ${addr.text} sent ${describe(msg)} instead of a challenge`);
            na = msg.nonce;
            state = 'welcome';
            fs.write(encodeFrame({ t: 'auth', proof: this.proof('dialer', this.self, peer, nd, na) }));
            return;
          }
          if (state !== 'welcome') return;
          if (msg.t !== 'welcome') return fail(new Error('bad handshake'), `member ${peer} at ${addr.text} sent ${describe(msg)} instead of welcome`);
          if (!sameBytes(this.proof('acceptor', this.self, peer, nd, na), msg.proof)) {
            return fail(new Error('peer failed authentication'), `the listener at ${addr.text} failed to prove the ensemble secret as member ${peer}; not connecting to it`);
          }
          const expected = this.self < peer;
          if (msg.accept !== expected) return fail(new Error('bad handshake'), `member ${peer} at ${addr.text} answered accept=${String(msg.accept)}; expected ${expected}`);
          const welcome = parseLinkInfo(msg);
          if (typeof welcome === 'string') return fail(new Error('bad handshake'), `member ${peer} at ${addr.text} sent a welcome with a ${welcome}`);
          done();
          if (expected) {
            this.established(this.adopt(fs, peer), { inc: this.incarnation, ch }, welcome.inc);
            resolve('up');
          } else {
            fs.end();
            resolve('dialback');
          }
        },
        badFraming: (e) => fail(e, `member ${peer} at ${addr.text}: ${e.message} during the handshake`),
        overflow: () => fail(new Error('overflow')),
        handlerError: (e) => fail(e as Error),
        close: () => fail(new Error('connection closed during the handshake')),
      };
      const fs = new FramedSocket(socket, HANDSHAKE_MAX_FRAME, HANDSHAKE_MAX_QUEUE, handlers);
      socket.once('connect', () => {
        if (!this.running) return fail(new Error('stopped'));
        const info = this.helloInfo(peer);
        if (!info) return fail(new Error('connected meanwhile')); // a poke, and the peer's channel came up
        ch = info.ch;
        state = 'challenge';
        fs.write(encodeFrame({ t: 'hello', v: MEMBER_PROTOCOL_VERSION, role: 'member', from: this.self, to: peer, nonce: nd, ...info }));
      });
    });
  }
}

/** A TCP transport for one member (see TcpTransport). */
export function tcpTransport(options: TcpTransportOptions): TcpTransport {
  return new TcpTransport(options);
}

export interface TcpClientOptions {
  /** Extra fields for the hello (e.g. a session id to resume); `t`, `v` and `role` are set here. */
  hello?: Record<string, unknown>;
  /** Connect + welcome deadline (default 5000 ms). */
  timeoutMs?: number;
  maxFrameBytes?: number;
  maxQueueBytes?: number;
}

/**
 * Opens a client connection to a member's TCP listener (one configured with onClient). Resolves
 * once the member welcomed it; rejects with the member's reason if refused.
 */
export function connectTcpClient(address: string, options: TcpClientOptions = {}): Promise<ClientConnection> {
  const { host, port } = parseHostPort(address);
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes ?? 16 * 1024 * 1024);
  const maxQueueBytes = options.maxQueueBytes ?? 64 * 1024 * 1024;
  return new Promise<ClientConnection>((resolve, reject) => {
    const socket = net.connect({ host, port });
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`no welcome from ${address} within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    socket.on('error', (e) => fail(e));
    const fs = new FramedSocket(socket, HANDSHAKE_MAX_FRAME, HANDSHAKE_MAX_QUEUE, {
      frame: (payload) => {
        if (settled) return;
        let msg: unknown;
        try {
          msg = decodePayload(payload);
        } catch (e) {
          return fail(e as FrameError);
        }
        if (isObject(msg) && msg.t === 'refused') return fail(new Error(`${address} refused the connection: ${String(msg.reason).slice(0, 200)}`));
        if (!isObject(msg) || msg.t !== 'welcome' || msg.role !== 'client') return fail(new Error(`${address} answered ${describe(msg)} instead of welcome`));
        settled = true;
        clearTimeout(timer);
        const conn = new TcpClientConnection(fs, msg, maxFrameBytes, maxQueueBytes, (m, d) => conn.emit('warn', m, d));
        resolve(conn);
      },
      badFraming: (e) => fail(e),
      overflow: () => fail(new Error('overflow')),
      handlerError: (e) => fail(e as Error),
      close: (e) => fail(e ?? new Error(`${address} closed the connection`)),
    });
    socket.once('connect', () => {
      fs.write(encodeFrame({ ...options.hello, t: 'hello', v: PROTOCOL_VERSION, role: 'client' }));
    });
  });
}
