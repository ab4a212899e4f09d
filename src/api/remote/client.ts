import type { ACL } from '../../core/acl.js';
import { KeeperError, type ErrorCode } from '../../core/errors.js';
import { validatePath } from '../../core/path.js';
import { validateRequestOp, type RequestOp } from '../../core/request.js';
import type { Stat } from '../../core/stat.js';
import type { ApplyResult } from '../../core/tree.js';
import { connectTcpClient, parseHostPort, type TcpClientOptions } from '../../transport/tcp.js';
import type { PeerMessage } from '../../transport/types.js';
import type { WatchKind } from '../../core/watches.js';
import { Session, type SessionBackend } from '../session.js';
import type { SessionOptions } from '../types.js';
import {
  checkValue, parseMemberMessage, PROTOCOL_VERSION, ProtocolError, sanitizeWrite, type ConnectedMessage, type ConnectMessage, type MemberMessage,
  type RequestKind, type WireError,
} from './protocol.js';

/**
 * Remote sessions, client side: `connect(addresses)` gives a {@link Session} — the same class as
 * a member's local sessions — served by one member of the ensemble over a {@link ClientTransport}
 * (TCP by default) and moved to another member when that one is lost (SPEC §3):
 *
 * - the member is picked at random; on connection loss the session is SUSPENDED and the others
 *   are tried, in turn, for up to the session timeout: re-attached (session id + password + the
 *   last zxid it saw, so it never goes back in time), its watches re-registered — what changed
 *   meanwhile fires then — and every unanswered request resent with its id: a write whose answer
 *   was lost is answered from the ensemble's record of it, never applied twice. Then RECONNECTED;
 * - LOST when a member says the session expired, or the timeout passed without reaching one;
 * - operations called while SUSPENDED fail at once with CONNECTIONLOSS (the session's retry
 *   policy applies); heartbeats every timeout/3; a member silent for 2/3 of the timeout is
 *   treated as gone;
 * - with canBeReadOnly, once every member was asked for a read-write session, a member without a
 *   quorum may serve it READ_ONLY (reads from its tree; writes and sync fail with NOTREADONLY);
 *   the client then probes the other members and moves to one that serves it read-write, and the
 *   read-only member ends the connection when it has a quorum again (the client re-attaches).
 */

/** A framed, ordered message connection to one member (TCP's ClientConnection is one). */
export interface ClientLink {
  readonly closed: boolean;
  /** Queues a message; false when the connection is closed. */
  send(msg: PeerMessage): boolean;
  close(): void;
  on(event: 'message', fn: (msg: PeerMessage) => void): unknown;
  on(event: 'close', fn: (error?: Error) => void): unknown;
}

/** How a client opens a connection to a member's address. Default: {@link tcpClientTransport}. */
export interface ClientTransport {
  /** Short name for messages ('tcp'). */
  readonly kind?: string;
  /** Checks an address before any connection is tried; throws (e.g. RangeError) when it is malformed. */
  checkAddress?(address: string): void;
  connect(address: string, options: { timeoutMs: number }): Promise<ClientLink>;
}

/** Remote sessions over TCP (`host:port` addresses, the members' tcpTransport listeners). */
export function tcpClientTransport(options: Omit<TcpClientOptions, 'hello' | 'timeoutMs'> = {}): ClientTransport {
  return {
    kind: 'tcp',
    checkAddress: (address) => void parseHostPort(address),
    connect: (address, o) => connectTcpClient(address, { ...options, timeoutMs: o.timeoutMs }),
  };
}

export interface ConnectOptions extends SessionOptions {
  /** How to reach members (default TCP). */
  transport?: ClientTransport;
}

interface Pending {
  xid: number;
  kind: RequestKind;
  msg: PeerMessage;
  /** Counts against the member's write window (its record of results covers that many). */
  write: boolean;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

type Attempt =
  | { ok: true; link: ClientLink; connected: ConnectedMessage; address: string }
  | { ok: false; code: ErrorCode; retry: boolean; message: string };

const DEFAULT_TIMEOUT_MS = 10_000;
/** Shortest time given to one connection attempt. */
const MIN_ATTEMPT_MS = 50;
/** Data a request may carry at most on the client side (the connection's frames are 16 MiB). */
const MAX_CLIENT_DATA_BYTES = 15 * 1024 * 1024;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

function shuffled<T>(items: T[]): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** A member's error as the caller sees it: its code, path and detail (without the repeated prefix). */
function keeperError(e: WireError): KeeperError {
  let detail = e.message;
  if (detail.startsWith(`${e.code}: `)) detail = detail.slice(e.code.length + 2);
  if (e.path !== undefined && detail.endsWith(` (${e.path})`)) detail = detail.slice(0, -(e.path.length + 3));
  const err = new KeeperError(e.code, e.path, detail || undefined);
  if (e.results) err.results = e.results;
  return err;
}

/**
 * A remote session from a process that is not a member (API.md): resolves once a member accepted
 * it. `addresses` lists members' client addresses ('host:port', or one comma-separated string).
 */
export async function connect(addresses: string | string[], options: ConnectOptions = {}): Promise<Session> {
  const list = (Array.isArray(addresses) ? addresses : typeof addresses === 'string' ? addresses.split(',') : [])
    .map((a) => (typeof a === 'string' ? a.trim() : ''));
  if (list.length === 0 || list.some((a) => a.length === 0)) {
    throw new KeeperError('BADARGUMENTS', undefined, "connect needs member addresses: 'host:port', an array of them or a comma-separated list");
  }
  if (options === null || typeof options !== 'object') throw new KeeperError('BADARGUMENTS', undefined, 'options must be an object');
  const transport = options.transport ?? tcpClientTransport();
  for (const a of list) {
    try {
      transport.checkAddress?.(a);
    } catch (e) {
      throw new KeeperError('BADARGUMENTS', undefined, (e as Error).message);
    }
  }
  const requested = options.sessionTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof requested !== 'number' || !Number.isFinite(requested) || requested <= 0) {
    throw new KeeperError('BADARGUMENTS', undefined, 'sessionTimeoutMs must be a positive number');
  }
  const auth = options.auth ?? [];
  if (!Array.isArray(auth) || auth.some((a) => a === null || typeof a !== 'object' || typeof a.scheme !== 'string' || typeof a.credentials !== 'string')) {
    throw new KeeperError('BADARGUMENTS', undefined, 'auth must be an array of { scheme, credentials } strings');
  }
  const client = new RemoteClient(shuffled(list), transport, requested, options);
  return client.open(options.connectTimeoutMs ?? requested);
}

/** The SessionBackend of a remote session: requests and answers over a connection to one member at a time. */
class RemoteClient implements SessionBackend {
  private session!: Session;
  private sid = 0n;
  private password: Uint8Array = new Uint8Array(0);
  private timeoutMs: number;
  private lastZxid = 0n;
  private phase: 'connecting' | 'connected' | 'suspended' | 'lost' | 'closed' = 'connecting';
  private link: ClientLink | undefined;
  /** Index in `addresses` of the member currently (or last) serving the session. */
  private current = -1;
  private xid = 0;
  /** Requests sent on the current (or last) connection and not answered, in id order. */
  private readonly pending = new Map<number, Pending>();
  /** Requests waiting for room in the write window, in id order. */
  private queue: Pending[] = [];
  private writesInFlight = 0;
  private window = 16;
  private maxDataBytes = MAX_CLIENT_DATA_BYTES;
  /** Identities added so far (sent again on re-attach). */
  private readonly auth: { scheme: string; credentials: string }[];
  private lastHeard = 0;
  private lastSent = 0;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private beatMs = 1000;
  private suspendedAt = 0;
  private lostReason = '';
  /** Served read-only now (canBeReadOnly; the member has no quorum): READ_ONLY. */
  private readOnly = false;
  /** The ensemble knows the session (it was served read-write once): other members can take it over. */
  private known = false;
  /** While READ_ONLY: looks for a member that serves the session read-write (ZooKeeper's pingRwServer). */
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private probing = false;

  constructor(
    private readonly addresses: string[],
    private readonly transport: ClientTransport,
    private readonly requestedTimeoutMs: number,
    private readonly options: ConnectOptions,
  ) {
    this.timeoutMs = requestedTimeoutMs;
    this.auth = (options.auth ?? []).map((a) => ({ scheme: a.scheme, credentials: a.credentials }));
  }

  // ------------------------------------------------------------------ connecting

  async open(connectTimeoutMs: number): Promise<Session> {
    const deadline = Date.now() + connectTimeoutMs;
    // Per member, what it last said: a member's own refusal (e.g. too many sessions from this
    // address) says more than a later attempt that merely ran out of time.
    const said = new Map<string, { refusal: boolean; message: string }>();
    for (let round = 0; ; round++) {
      for (let i = 0; i < this.addresses.length; i++) {
        const left = deadline - Date.now();
        if (left < MIN_ATTEMPT_MS && round > 0) break;
        const address = this.addresses[i]!;
        // A read-write member first: every member is asked once before one without a quorum may
        // serve the session read-only (canBeReadOnly).
        const a = await this.attempt(address, Math.min(Math.max(left, MIN_ATTEMPT_MS), 5000), undefined, round > 0 && this.canBeReadOnly);
        if (a.ok) return this.session;
        if (!a.retry) throw new KeeperError(a.code, undefined, `${address}: ${a.message}`);
        const refusal = a.code !== 'CONNECTIONLOSS' || !/^no answer within|closed the connection/.test(a.message);
        if (refusal || !said.get(address)?.refusal) said.set(address, { refusal, message: a.message });
      }
      const left = deadline - Date.now();
      if (left < MIN_ATTEMPT_MS) break;
      await sleep(Math.min(left - MIN_ATTEMPT_MS, Math.min(1000, 50 * 2 ** round) * (0.5 + Math.random() / 2)));
    }
    const why = [...said].map(([a, r]) => `${a}: ${r.message}`).join('; ');
    throw new KeeperError('CONNECTIONLOSS', undefined, `no member accepted the session within ${connectTimeoutMs} ms (${why || 'no attempt finished'})`);
  }

  private get canBeReadOnly(): boolean {
    return this.options.canBeReadOnly === true;
  }

  /** One connection attempt: a new session (sessionId undefined) or a re-attach; `readOnly`: a member without a quorum may serve it read-only. */
  private async attempt(address: string, timeoutMs: number, sessionId: bigint | undefined, readOnly = false): Promise<Attempt> {
    let link: ClientLink;
    try {
      link = await this.transport.connect(address, { timeoutMs });
    } catch (e) {
      return { ok: false, code: 'CONNECTIONLOSS', retry: true, message: (e as Error).message };
    }
    const hello: ConnectMessage = { t: 'connect', v: PROTOCOL_VERSION, timeoutMs: this.requestedTimeoutMs, lastZxid: this.lastZxid, auth: this.auth };
    if (sessionId !== undefined) {
      hello.sessionId = sessionId;
      hello.password = this.password;
      hello.watches = this.session._watchSet();
    }
    if (readOnly) hello.readOnly = true;
    return new Promise<Attempt>((resolve) => {
      let done = false;
      const finish = (a: Attempt): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!a.ok) link.close();
        resolve(a);
      };
      const timer = setTimeout(() => finish({ ok: false, code: 'CONNECTIONLOSS', retry: true, message: `no answer within ${timeoutMs} ms` }), timeoutMs);
      link.on('close', (e) => finish({ ok: false, code: 'CONNECTIONLOSS', retry: true, message: e?.message ?? 'the member closed the connection' }));
      link.on('message', (raw) => {
        if (done) {
          // Everything after 'connected' belongs to the session (events right behind it, answers).
          if (this.link === link) this.onMessage(link, raw);
          return;
        }
        let m: MemberMessage;
        try {
          m = parseMemberMessage(raw);
        } catch (e) {
          return finish({ ok: false, code: 'CONNECTIONLOSS', retry: true, message: `protocol error: ${(e as Error).message}` });
        }
        if (m.t === 'connected') {
          if (sessionId !== undefined && m.sessionId !== sessionId) {
            return finish({ ok: false, code: 'CONNECTIONLOSS', retry: true, message: 'the member attached another session' });
          }
          // Made current right here: events and answers may follow in this same turn.
          done = true;
          clearTimeout(timer);
          if (sessionId === undefined) this.created(link, m, address);
          else this.reattached(link, m, address);
          resolve({ ok: true, link, connected: m, address });
          return;
        }
        if (m.t === 'refused') return finish({ ok: false, code: m.code, retry: m.retry, message: m.message });
        if (m.t === 'expired') return finish({ ok: false, code: 'SESSIONEXPIRED', retry: false, message: 'the session expired' });
        if (m.t === 'bye') return finish({ ok: false, code: 'CONNECTIONLOSS', retry: true, message: m.reason });
        return finish({ ok: false, code: 'CONNECTIONLOSS', retry: true, message: `unexpected '${m.t}' before connected` });
      });
      if (!link.send(hello as unknown as PeerMessage)) finish({ ok: false, code: 'CONNECTIONLOSS', retry: true, message: 'the connection closed' });
    });
  }

  /** A new session was created. */
  private created(link: ClientLink, m: ConnectedMessage, address: string): void {
    this.sid = m.sessionId;
    this.password = m.password;
    this.timeoutMs = m.timeoutMs;
    this.session = new Session(this.sid, this.timeoutMs, this, this.options.retry);
    this.current = this.addresses.indexOf(address);
    this.adopt(link, m);
    if (this.readOnly) this.session._setState('READ_ONLY');
  }

  /** Makes `link` the session's connection. */
  private adopt(link: ClientLink, m: ConnectedMessage): void {
    this.link = link;
    this.readOnly = m.readOnly === true;
    if (!this.readOnly) this.known = true;
    this.window = m.window;
    if (m.maxDataBytes !== undefined) this.maxDataBytes = Math.min(m.maxDataBytes, MAX_CLIENT_DATA_BYTES);
    if (m.zxid > this.lastZxid) this.lastZxid = m.zxid;
    this.phase = 'connected';
    this.lastHeard = this.lastSent = Date.now();
    link.on('close', (e) => {
      if (this.link === link) this.connectionLost(e?.message ?? 'the member closed the connection');
    });
    this.startHeartbeat();
  }

  /**
   * A re-attach succeeded: resend what is unanswered, then RECONNECTED (READ_ONLY when the member
   * serves it read-only). Also the end of a probe from READ_ONLY: the read-only connection is
   * replaced. Runs before any later message on `link`.
   */
  private reattached(link: ClientLink, m: ConnectedMessage, address: string): void {
    const fromReadOnly = this.phase === 'connected' && this.readOnly && this.probing && m.readOnly !== true;
    if (this.phase !== 'suspended' && !fromReadOnly) {
      link.close();
      return;
    }
    const old = this.link;
    this.current = this.addresses.indexOf(address);
    this.adopt(link, m);
    old?.close();
    this.writesInFlight = 0;
    for (const p of this.pending.values()) {
      if (p.write) this.writesInFlight++;
      link.send(p.msg);
    }
    this.drainQueue();
    if (this.readOnly) {
      this.session._setState('READ_ONLY');
      this.scheduleProbe();
    } else {
      this.stopProbe();
      this.session._setState('RECONNECTED');
    }
  }

  /**
   * READ_ONLY on a session the ensemble knows: asks the other members, one at a time, whether one
   * serves it read-write, and moves there when one does. A session opened read-only (never
   * served read-write) is known to its member only: it stays there until that member has a quorum.
   */
  private scheduleProbe(): void {
    if (this.probeTimer || !this.known || this.addresses.length < 2) return;
    const every = Math.min(1000, Math.max(100, Math.floor(this.timeoutMs / 6)));
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      void this.probe().finally(() => {
        if (this.phase === 'connected' && this.readOnly) this.scheduleProbe();
      });
    }, every);
    this.probeTimer.unref?.();
  }

  private stopProbe(): void {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }

  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const n = this.addresses.length;
      for (let i = 1; i < n && this.phase === 'connected' && this.readOnly; i++) {
        const address = this.addresses[(Math.max(0, this.current) + i) % n]!;
        const a = await this.attempt(address, Math.min(1000, Math.max(MIN_ATTEMPT_MS, this.timeoutMs / 3)), this.sid);
        // A refusal is not acted on: the read-only member says it when the session expired (once
        // it has a quorum again), and without an ensemble secret other members cannot check the
        // session's password at all.
        if (a.ok) return;
      }
    } finally {
      this.probing = false;
    }
  }

  private startHeartbeat(): void {
    if (this.heartbeat) return;
    this.beatMs = Math.max(10, Math.floor(this.timeoutMs / 12));
    this.heartbeat = setInterval(() => this.beat(), this.beatMs);
    this.heartbeat.unref?.();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private beat(): void {
    if (this.phase !== 'connected' || !this.link) return;
    const now = Date.now();
    if (now - this.lastHeard >= (this.timeoutMs * 2) / 3) {
      this.connectionLost(`no answer from the member for ${now - this.lastHeard} ms`);
      return;
    }
    // Sent once idle for a beat or more, so that heartbeats are never more than timeout/3 apart.
    if (now - this.lastSent + this.beatMs > this.timeoutMs / 3) this.sendNow({ t: 'ping' });
  }

  private sendNow(msg: PeerMessage): void {
    this.lastSent = Date.now();
    if (!this.link?.send(msg)) this.connectionLost('the connection closed');
  }

  // ------------------------------------------------------------------ losing and regaining the member

  private connectionLost(reason: string): void {
    if (this.phase !== 'connected') return;
    const link = this.link;
    this.link = undefined;
    link?.close();
    this.stopProbe();
    this.readOnly = false;
    this.phase = 'suspended';
    this.suspendedAt = Date.now();
    this.lostReason = reason;
    this.session._setState('SUSPENDED');
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    const deadline = this.suspendedAt + this.timeoutMs;
    const n = this.addresses.length;
    for (let round = 0; this.phase === 'suspended'; round++) {
      // The next member first (the one that was lost last), as ZooKeeper's client does.
      for (let i = 1; i <= n && this.phase === 'suspended'; i++) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        const address = this.addresses[(Math.max(0, this.current) + i) % n]!;
        // Read-write first: every member is asked once before one may serve it read-only.
        const a = await this.attempt(address, Math.min(left, Math.max(200, this.timeoutMs / 3)), this.sid, round > 0 && this.canBeReadOnly);
        if (a.ok) return;
        if (this.phase !== 'suspended') return;
        if (a.code === 'SESSIONEXPIRED') return this.toLost('the ensemble says the session expired', true);
        if (!a.retry) return this.toLost(`${address} refused the session: ${a.message}`, false);
        this.lostReason = `${address}: ${a.message}`;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(left, Math.min(500, 25 * 2 ** round) * (0.5 + Math.random() / 2)));
    }
    if (this.phase === 'suspended') this.toLost(`no member reached within the session timeout (${this.timeoutMs} ms; last: ${this.lostReason})`, false);
  }

  private toLost(reason: string, expired: boolean): void {
    if (this.phase === 'lost' || this.phase === 'closed') return;
    const closing = [...this.pending.values(), ...this.queue].some((p) => p.kind === 'close');
    this.phase = closing ? 'closed' : 'lost';
    this.shutdown((p) => {
      // A close whose answer was lost: the session is gone, which is what it asked for.
      if (p.kind === 'close' && expired) p.resolve({ ok: true, op: 'closeSession' });
      else p.reject(new KeeperError('SESSIONEXPIRED', undefined, `${reason}; the request was not answered and may or may not have been applied`));
    });
    if (!closing) this.session._setState('LOST', 'SESSIONEXPIRED');
  }

  /** Closes the connection and settles every outstanding request. */
  private shutdown(settle: (p: Pending) => void): void {
    this.stopHeartbeat();
    this.stopProbe();
    const link = this.link;
    this.link = undefined;
    link?.close();
    const all = [...this.pending.values(), ...this.queue];
    this.pending.clear();
    this.queue = [];
    this.writesInFlight = 0;
    for (const p of all) settle(p);
  }

  // ------------------------------------------------------------------ messages from the member

  private onMessage(link: ClientLink, raw: PeerMessage): void {
    if (this.link !== link || this.phase !== 'connected') return;
    this.lastHeard = Date.now();
    let m: MemberMessage;
    try {
      m = parseMemberMessage(raw);
      switch (m.t) {
        case 'res':
          this.onAnswer(m);
          return;
        case 'ev':
          if (m.zxid !== undefined && m.zxid > this.lastZxid) this.lastZxid = m.zxid;
          this.session._notify(m.type, m.path, m.zxid);
          return;
        case 'pong':
          return;
        case 'expired':
          this.toLost('the ensemble says the session expired', true);
          return;
        case 'bye':
          if (m.zxid !== undefined && m.zxid > this.lastZxid) this.lastZxid = m.zxid;
          this.connectionLost(m.reason);
          return;
        default:
          throw new ProtocolError(`unexpected '${m.t}'`);
      }
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.connectionLost(`protocol error from the member: ${e.message}`);
    }
  }

  private onAnswer(m: { xid: number; zxid: bigint; v?: unknown; e?: WireError }): void {
    const p = this.pending.get(m.xid);
    if (!p) throw new ProtocolError(`an answer to request ${m.xid}, which is not outstanding`);
    const value = m.e === undefined ? checkValue(p.kind, m.v) : undefined;
    this.pending.delete(m.xid);
    if (m.zxid > this.lastZxid) this.lastZxid = m.zxid;
    if (p.kind === 'close' && m.e === undefined) {
      // Closed: the member ends the connection next; nothing after the close is answered.
      this.phase = 'closed';
      this.shutdown((q) => q.reject(new KeeperError('SESSIONEXPIRED', undefined, 'the session is closed')));
      p.resolve(value);
      return;
    }
    if (p.write) {
      this.writesInFlight--;
      this.drainQueue();
    }
    if (m.e !== undefined) p.reject(keeperError(m.e));
    else p.resolve(value);
  }

  // ------------------------------------------------------------------ requests

  private call<T>(kind: RequestKind, fields: Record<string, unknown>): Promise<T> {
    if (this.phase === 'lost' || this.phase === 'closed') return Promise.reject(new KeeperError('SESSIONEXPIRED'));
    if (this.phase !== 'connected') {
      return Promise.reject(new KeeperError('CONNECTIONLOSS', undefined, `not connected to a member (SUSPENDED: ${this.lostReason}); retry when RECONNECTED`));
    }
    try {
      // Checked here as the member would: a message that cannot be sent would end the connection.
      this.check(kind, fields);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<T>((resolve, reject) => {
      const xid = ++this.xid;
      const p: Pending = {
        xid, kind, msg: { t: 'req', xid, op: kind, ...fields } as PeerMessage, write: kind === 'write' || kind === 'close',
        resolve: resolve as (v: unknown) => void, reject,
      };
      if (this.queue.length > 0 || (p.write && this.writesInFlight >= this.window)) this.queue.push(p);
      else this.transmit(p);
    });
  }

  private check(kind: RequestKind, fields: Record<string, unknown>): void {
    switch (kind) {
      case 'write': {
        let req: RequestOp;
        try {
          req = sanitizeWrite(fields.req);
        } catch (e) {
          throw new KeeperError('BADARGUMENTS', undefined, (e as Error).message);
        }
        validateRequestOp(req, this.maxDataBytes);
        fields.req = req;
        return;
      }
      case 'getEphemerals':
        if (typeof fields.prefix !== 'string' || !fields.prefix.startsWith('/')) throw new KeeperError('BADARGUMENTS', undefined, 'prefix must start with /');
        return;
      case 'addAuth':
        if (typeof fields.scheme !== 'string' || typeof fields.credentials !== 'string') throw new KeeperError('BADARGUMENTS', undefined, 'scheme and credentials must be strings');
        return;
      case 'close':
        return;
      default:
        validatePath(fields.path);
        for (const k of ['watch', 'recursive'] as const) if (k in fields && typeof fields[k] !== 'boolean') fields[k] = Boolean(fields[k]);
    }
  }

  private transmit(p: Pending): void {
    this.pending.set(p.xid, p);
    if (p.write) this.writesInFlight++;
    this.sendNow(p.msg);
  }

  private drainQueue(): void {
    while (this.queue.length > 0 && this.phase === 'connected') {
      const p = this.queue[0]!;
      if (p.write && this.writesInFlight >= this.window) return;
      this.queue.shift();
      this.transmit(p);
    }
  }

  write(_sid: bigint, op: RequestOp): Promise<ApplyResult> {
    return this.call('write', { req: op });
  }

  getData(_sid: bigint, path: string, watch: boolean): Promise<{ data: Uint8Array; stat: Stat }> {
    return this.call('getData', { path, watch });
  }

  exists(_sid: bigint, path: string, watch: boolean): Promise<Stat | null> {
    return this.call('exists', { path, watch });
  }

  getChildren(_sid: bigint, path: string, watch: boolean): Promise<{ children: string[]; stat: Stat }> {
    return this.call('getChildren', { path, watch });
  }

  getACL(_sid: bigint, path: string): Promise<{ acl: ACL[]; stat: Stat }> {
    return this.call('getACL', { path });
  }

  getAllChildrenNumber(_sid: bigint, path: string): Promise<number> {
    return this.call('getAllChildrenNumber', { path });
  }

  getEphemerals(_sid: bigint, prefix: string): Promise<string[]> {
    return this.call('getEphemerals', { prefix });
  }

  sync(_sid: bigint, path: string): Promise<void> {
    return this.call('sync', { path });
  }

  async addAuth(_sid: bigint, scheme: string, credentials: string): Promise<void> {
    await this.call('addAuth', { scheme, credentials });
    if (!this.auth.some((a) => a.scheme === scheme && a.credentials === credentials)) this.auth.push({ scheme, credentials });
  }

  addWatch(_sid: bigint, path: string, recursive: boolean): Promise<void> {
    return this.call('addWatch', { path, recursive });
  }

  removeWatch(_sid: bigint, kind: WatchKind, path: string): Promise<void> {
    return this.call('removeWatch', { kind, path });
  }

  async close(_sid: bigint): Promise<void> {
    if (this.phase === 'connected') {
      try {
        await this.call('close', {});
      } catch (e) {
        if (!(e instanceof KeeperError) || e.code !== 'SESSIONEXPIRED') throw e;
      }
    }
    // Suspended: nobody to tell; the ensemble expires the session after its timeout.
    if (this.phase === 'closed' || this.phase === 'lost') return;
    this.phase = 'closed';
    this.shutdown((p) => p.reject(new KeeperError('SESSIONEXPIRED', undefined, 'the session is closed')));
  }
}
