import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KeeperError } from '../../core/errors.js';
import { SESSION_REPLIES, type ApplyResult } from '../../core/tree.js';
import type { WatchEventType } from '../../core/watches.js';
import { formatZxid } from '../../core/zxid.js';
import type { PeerMessage } from '../../transport/types.js';
import type { Logger } from '../log.js';
import type { Member, SessionSink } from '../member.js';
import type { WatchSet } from '../session.js';
import type { SessionState } from '../types.js';
import {
  LIMITS, parseClientMessage, ProtocolError, type ClientRequest, type ConnectMessage, type MemberMessage, type WireError,
} from './protocol.js';

/**
 * The member side of remote sessions (see protocol.ts). A connection carries one session; the
 * session is served by the member's own code paths — the same reads, writes, watches, ACL
 * checks and FIFO order as a local session — with a {@link RemoteConnection} as its sink.
 */

/** A framed, ordered connection from a client, as tcpTransport's onClient hands it over (ClientConnection). */
export interface RemoteClientLink {
  /** The client's address: the session's origin (maxSessionsPerOrigin) and its `ip` ACL identity. */
  readonly remoteAddress: string;
  readonly closed: boolean;
  send(msg: PeerMessage): boolean;
  close(): void;
  on(event: 'message', fn: (msg: PeerMessage) => void): unknown;
  on(event: 'close', fn: (error?: Error) => void): unknown;
}

/** Time a new connection has to send its connect message. */
const CONNECT_DEADLINE_MS = 10_000;
/** Warnings about misbehaving clients logged per second at most (the rest are counted). */
const WARNINGS_PER_SECOND = 20;

const EMPTY_WATCHES: WatchSet = { data: [], exist: [], child: [], persistent: [], recursive: [] };

/** '::ffff:10.0.0.1' → '10.0.0.1', so that a client has one origin whichever way it connected. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && /^\d{1,3}(\.\d{1,3}){3}$/.test(address.slice(7)) ? address.slice(7) : address;
}

/**
 * A session's password: HMAC(K, session id), K derived from the ensemble secret, so every member
 * can check it and nothing needs to be stored. Without a secret, K is random per member process:
 * a session can then only re-attach to the member that created it (no failover), which is logged
 * once when the first remote session is created.
 */
export function passwordKey(secret: string | Uint8Array | undefined): Buffer | undefined {
  if (secret === undefined || secret.length === 0) return undefined;
  const s = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  return createHmac('sha256', s).update('conclave remote session password v1').digest();
}

export class RemoteSessionServer {
  readonly log: Logger;
  private readonly key: Buffer;
  private readonly keyIsShared: boolean;
  private warnedNoSecret = false;
  private readonly conns = new Set<RemoteConnection>();
  private timer: unknown;
  private warnWindow = 0;
  private warnCount = 0;
  private suppressed = 0;

  constructor(readonly member: Member) {
    this.log = member.log.child({ part: 'remote' });
    const k = passwordKey(member.config.secret);
    this.keyIsShared = k !== undefined;
    this.key = k ?? randomBytes(32);
    member.on('state', (s) => {
      if (s === 'stopped') this.shutdown();
    });
  }

  accept(link: RemoteClientLink): void {
    if (this.member.stopped) {
      link.close();
      return;
    }
    const c = new RemoteConnection(this, link);
    this.conns.add(c);
    this.timer ??= this.member.clock.setInterval(() => this.sweep(), Math.max(20, Math.min(this.member.tickMs, 1000)));
  }

  /** @internal */
  forget(c: RemoteConnection): void {
    this.conns.delete(c);
  }

  /** @internal */
  password(sid: bigint): Buffer {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(sid);
    return createHmac('sha256', this.key).update(b).digest().subarray(0, 16);
  }

  /** @internal */
  checkPassword(sid: bigint, pw: Uint8Array): boolean {
    const want = this.password(sid);
    return pw.length === want.length && timingSafeEqual(want, pw);
  }

  /** @internal */
  noteCreated(): void {
    if (this.keyIsShared || this.warnedNoSecret) return;
    this.warnedNoSecret = true;
    this.log.warn({}, 'remote sessions without an ensemble secret: session passwords are known to this member only, so a session cannot fail over to another member (set `secret` on every member)');
  }

  /** @internal rate-limited warning about a client. */
  warn(detail: Record<string, unknown>, message: string): void {
    const now = this.member.clock.now();
    if (now - this.warnWindow >= 1000) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, 'more client warnings were not logged');
      this.warnWindow = now;
      this.warnCount = 0;
      this.suppressed = 0;
    }
    if (++this.warnCount > WARNINGS_PER_SECOND) {
      this.suppressed++;
      return;
    }
    this.log.warn(detail, message);
  }

  private sweep(): void {
    const now = this.member.clock.now();
    for (const c of [...this.conns]) c.sweep(now);
  }

  private shutdown(): void {
    if (this.timer !== undefined) this.member.clock.clearInterval(this.timer);
    this.timer = undefined;
    for (const c of [...this.conns]) c.end({ t: 'bye', reason: 'the member stopped' });
  }

  /** Open client connections (admin, tests). */
  get connections(): number {
    return this.conns.size;
  }
}

/** One client connection, the sink of the session it carries. */
class RemoteConnection implements SessionSink {
  readonly remote = true;
  private phase: 'hello' | 'connecting' | 'attached' | 'closed' = 'hello';
  private sid: bigint | undefined;
  private timeoutMs = 0;
  private lastXid = 0;
  private outstanding = 0;
  private lastHeard: number;
  private readonly openedAt: number;
  private readonly origin: string;
  private readonly member: Member;

  constructor(private readonly server: RemoteSessionServer, private readonly link: RemoteClientLink) {
    this.member = server.member;
    this.origin = normalizeAddress(link.remoteAddress || 'unknown');
    this.openedAt = this.lastHeard = this.member.clock.now();
    link.on('message', (m) => this.onMessage(m));
    link.on('close', () => this.onClose());
    if (link.closed) this.onClose();
  }

  // ------------------------------------------------------------------ SessionSink

  get state(): SessionState {
    return this.phase === 'closed' ? 'CLOSED' : 'CONNECTED';
  }

  _notify(type: WatchEventType, path: string, zxid?: bigint): void {
    if (this.phase !== 'attached') return;
    this.send(zxid === undefined ? { t: 'ev', type, path } : { t: 'ev', type, path, zxid });
  }

  _setState(state: SessionState, code?: 'SESSIONEXPIRED' | 'CONNECTIONLOSS'): void {
    if (this.phase === 'closed') return;
    if (state === 'LOST' && code === 'SESSIONEXPIRED') this.end({ t: 'expired' });
    else if (state === 'CLOSED') this.end(undefined);
    else if (state === 'CONNECTED' || state === 'RECONNECTED') {
      // A read-only session whose member has a quorum again: the client re-attaches as a full
      // session (its watches re-registered), here or elsewhere, not before this zxid.
      this.end({ t: 'bye', reason: `member ${this.member.id} has a quorum again; re-attach read-write`, zxid: this.member.lastZxid });
    } else this.end({ t: 'bye', reason: `member ${this.member.id} cannot serve the session now (${this.member.state}); try another member` });
  }

  _watchSet(): WatchSet {
    return EMPTY_WATCHES;
  }

  _memberStopping(): Promise<void> {
    // The session lives on: the client re-attaches to another member.
    this.end({ t: 'bye', reason: `member ${this.member.id} is stopping` });
    return Promise.resolve();
  }

  // ------------------------------------------------------------------ connection

  /** Ends the connection (after `last`, if given); the member no longer serves the session here. */
  end(last: MemberMessage | undefined): void {
    if (this.phase === 'closed') return;
    const sid = this.phase === 'attached' ? this.sid : undefined;
    this.phase = 'closed';
    if (last) this.send(last, true);
    this.link.close();
    this.server.forget(this);
    if (sid !== undefined) this.member.detachRemoteSession(sid, this);
  }

  private onClose(): void {
    if (this.phase === 'closed') return;
    if (this.sid !== undefined) this.server.log.debug({ session: hex(this.sid), client: this.link.remoteAddress }, 'client connection closed');
    this.end(undefined);
  }

  sweep(now: number): void {
    if (this.phase === 'hello' && now - this.openedAt > CONNECT_DEADLINE_MS) {
      this.refuse('BADARGUMENTS', false, `no connect message within ${CONNECT_DEADLINE_MS} ms`);
    } else if (this.phase === 'attached' && now - this.lastHeard > this.timeoutMs) {
      // Silent for a whole session timeout (a frozen or vanished client): stop serving it here.
      this.server.log.info({ session: hex(this.sid!), client: this.link.remoteAddress, silentMs: now - this.lastHeard }, 'client silent for its session timeout; connection closed');
      this.end({ t: 'bye', reason: 'no heartbeat within the session timeout' });
    }
  }

  private send(m: MemberMessage, force = false): void {
    if (this.phase === 'closed' && !force) return;
    this.link.send(m as unknown as PeerMessage);
  }

  private protocolError(message: string): void {
    this.server.warn({ client: this.link.remoteAddress, session: this.sid === undefined ? undefined : hex(this.sid) }, `client protocol error: ${message}; connection closed`);
    this.end({ t: 'refused', code: 'BADARGUMENTS', retry: false, message });
  }

  private refuse(code: KeeperError['code'], retry: boolean, message: string): void {
    this.end({ t: 'refused', code, retry, message });
  }

  private onMessage(raw: PeerMessage): void {
    if (this.phase === 'closed') return;
    this.lastHeard = this.member.clock.now();
    try {
      let m;
      try {
        m = parseClientMessage(raw);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        // A request with a usable id is answered (BADARGUMENTS); anything else ends the connection.
        const xid = (raw as { t?: unknown; xid?: unknown }).t === 'req' ? (raw as { xid?: unknown }).xid : undefined;
        if (this.phase === 'attached' && typeof xid === 'number' && Number.isSafeInteger(xid) && xid > this.lastXid) {
          this.lastXid = xid;
          this.send({ t: 'res', xid, zxid: this.member.lastZxid, e: { code: 'BADARGUMENTS', message: e.message } });
          return;
        }
        this.protocolError(e.message);
        return;
      }
      switch (m.t) {
        case 'ping':
          if (this.phase === 'attached') this.member.touchRemote(this.sid!);
          this.send({ t: 'pong' });
          return;
        case 'connect':
          if (this.phase !== 'hello') return this.protocolError('connect sent twice');
          this.phase = 'connecting';
          void this.connect(m);
          return;
        case 'req':
          if (this.phase !== 'attached') return this.protocolError('request before the session was connected');
          this.request(m);
          return;
      }
    } catch (e) {
      // A bug, not the client's fault; the member must not go down for it.
      this.server.log.error({ err: (e as Error).message, stack: (e as Error).stack, client: this.link.remoteAddress }, 'remote session: unexpected error; connection closed');
      this.end({ t: 'bye', reason: 'internal error' });
    }
  }

  // ------------------------------------------------------------------ connect

  private async connect(m: ConnectMessage): Promise<void> {
    const member = this.member;
    try {
      if (!member.serving && !m.readOnly) {
        return this.refuse('CONNECTIONLOSS', true, `member ${member.id} is not serving (state ${member.state}); try another member`);
      }
      if (m.sessionId === undefined) return await this.create(m);
      if (!member.serving && m.readOnly) {
        // An election takes a few ms: wait a little for it before settling for read-only.
        await member.ready(Math.min(member.readOnlyGraceMs, m.timeoutMs / 4)).catch(() => undefined);
        if (this.phase === 'closed') return;
      }
      this.reattach(m, m.sessionId);
    } catch (e) {
      if (this.phase === 'closed') return;
      if (e instanceof KeeperError) {
        return this.refuse(e.code, e.code === 'CONNECTIONLOSS', e.message);
      }
      this.server.log.error({ err: (e as Error).message, stack: (e as Error).stack, client: this.link.remoteAddress }, 'remote session: connect failed unexpectedly');
      this.refuse('SYSTEMERROR', true, 'internal error');
    }
  }

  private async create(m: ConnectMessage): Promise<void> {
    const member = this.member;
    // Before anything is replicated: a refused client costs the ensemble no createSession/closeSession.
    this.checkEnforcedAuth(m);
    const { id, timeoutMs, readOnly } = await member.createRemoteSession(m.timeoutMs, this.origin, this, m.readOnly === true);
    this.server.noteCreated();
    if (this.phase === 'closed') {
      // The client left before it learnt the session id; nobody can use it: close it now.
      this.abandon(id);
      return;
    }
    this.sid = id;
    this.timeoutMs = timeoutMs;
    try {
      for (const a of m.auth) member.addAuthFor(id, a.scheme, a.credentials);
    } catch (e) {
      this.abandon(id);
      throw e instanceof KeeperError && e.code !== 'CONNECTIONLOSS' ? new KeeperError('AUTHFAILED', undefined, e.message) : e;
    }
    this.phase = 'attached';
    this.lastHeard = member.clock.now();
    this.send({ t: 'connected', sessionId: id, timeoutMs, password: this.server.password(id), zxid: member.lastZxid, member: member.id, window: SESSION_REPLIES, maxDataBytes: member.maxDataBytes, ...(readOnly ? { readOnly } : {}) });
    this.server.log.debug({ session: hex(id), client: this.link.remoteAddress, timeoutMs, readOnly }, readOnly ? 'remote session opened read-only (no quorum)' : 'remote session created');
  }

  /**
   * enforceAuthSchemes: the connect must carry a well-formed identity of a required scheme
   * ('user:password' for digest, the only scheme a remote session can add). Checked before the
   * session is created or attached, so a refused client costs the ensemble nothing.
   */
  private checkEnforcedAuth(m: ConnectMessage): void {
    const required = this.member.config.enforceAuthSchemes;
    if (!required || required.length === 0) return;
    if (!m.auth.some((a) => required.includes(a.scheme) && a.credentials.indexOf(':') > 0)) {
      throw new KeeperError('AUTHFAILED', undefined, `this ensemble requires remote sessions to authenticate (${required.join(', ')}); pass auth to connect()`);
    }
  }

  private abandon(id: bigint): void {
    try {
      this.member.remoteCloseFor(id, Number.MAX_SAFE_INTEGER, { resolve: () => undefined, reject: () => undefined });
    } catch {
      // not serving: it expires after its timeout
      this.member.detachRemoteSession(id, this);
    }
  }

  private reattach(m: ConnectMessage, sid: bigint): void {
    const member = this.member;
    if (!this.server.checkPassword(sid, m.password!)) {
      this.server.warn({ client: this.link.remoteAddress, session: hex(sid) }, 'remote session: wrong password (or a session of another ensemble); refused as expired');
      return this.refuse('SESSIONEXPIRED', false, 'the session has expired or the password does not match');
    }
    this.checkEnforcedAuth(m);
    const { timeoutMs, readOnly } = member.attachRemoteSession(sid, this.origin, m.lastZxid, this, m.readOnly === true);
    this.sid = sid;
    this.timeoutMs = timeoutMs;
    this.phase = 'attached';
    this.lastHeard = member.clock.now();
    for (const a of m.auth) {
      try {
        member.addAuthFor(sid, a.scheme, a.credentials);
      } catch (e) {
        // Accepted when the client added it; a member that refuses it now leaves the identity out.
        this.server.warn({ client: this.link.remoteAddress, session: hex(sid), err: (e as Error).message }, 'remote session: an identity was refused on re-attach');
      }
    }
    this.send({ t: 'connected', sessionId: sid, timeoutMs, password: m.password!, zxid: member.lastZxid, member: member.id, window: SESSION_REPLIES, maxDataBytes: member.maxDataBytes, ...(readOnly ? { readOnly } : {}) });
    // Events the client missed while disconnected follow, then the answers to what it resends.
    member.setWatchesFor(sid, m.watches ?? EMPTY_WATCHES);
    this.server.log.debug({ session: hex(sid), client: this.link.remoteAddress, lastZxid: formatZxid(m.lastZxid), readOnly }, readOnly ? 'remote session re-attached read-only (no quorum)' : 'remote session re-attached');
  }

  // ------------------------------------------------------------------ requests

  private request(m: ClientRequest): void {
    if (m.xid <= this.lastXid) return this.protocolError(`request id ${m.xid} does not increase (last ${this.lastXid})`);
    this.lastXid = m.xid;
    if (this.outstanding >= LIMITS.outstanding) return this.protocolError(`more than ${LIMITS.outstanding} requests outstanding`);
    const member = this.member;
    const sid = this.sid!;
    const xid = m.xid;
    member.touchRemote(sid);
    this.outstanding++;
    try {
      switch (m.op) {
        case 'write':
          member.remoteWriteFor(sid, xid, m.req, this.replyTo(xid));
          return;
        case 'close':
          member.remoteCloseFor(sid, xid, this.replyTo(xid));
          return;
        case 'sync':
          member.syncFor(sid).then(() => this.answer(xid, member.lastZxid, undefined), (e: unknown) => this.fail(xid, e));
          return;
        case 'getData':
          return this.answer(xid, member.lastZxid, member.readGetData(sid, m.path, m.watch));
        case 'exists':
          return this.answer(xid, member.lastZxid, member.readExists(sid, m.path, m.watch));
        case 'getChildren':
          return this.answer(xid, member.lastZxid, member.readGetChildren(sid, m.path, m.watch));
        case 'getACL':
          return this.answer(xid, member.lastZxid, member.readGetACL(sid, m.path));
        case 'getAllChildrenNumber':
          return this.answer(xid, member.lastZxid, member.readAllChildrenNumber(sid, m.path));
        case 'getEphemerals':
          if (!m.prefix.startsWith('/')) throw new KeeperError('BADARGUMENTS', m.prefix.slice(0, 64), 'prefix must start with /');
          return this.answer(xid, member.lastZxid, member.readEphemerals(sid, m.prefix));
        case 'addAuth':
          member.addAuthFor(sid, m.scheme, m.credentials);
          return this.answer(xid, member.lastZxid, undefined);
        case 'addWatch':
          member.addWatchFor(sid, m.path, m.recursive);
          return this.answer(xid, member.lastZxid, undefined);
        case 'removeWatch':
          member.removeWatchFor(sid, m.kind, m.path);
          return this.answer(xid, member.lastZxid, undefined);
      }
    } catch (e) {
      this.fail(xid, e);
    }
  }

  private replyTo(xid: number): { resolve(r: ApplyResult): void; reject(e: unknown): void } {
    return {
      resolve: (r) => this.answer(xid, r.zxid ?? this.member.lastZxid, r),
      reject: (e) => this.fail(xid, e),
    };
  }

  private answer(xid: number, zxid: bigint, v: unknown): void {
    if (this.phase === 'closed') return;
    this.outstanding--;
    this.send({ t: 'res', xid, zxid, v });
  }

  private fail(xid: number, e: unknown): void {
    if (this.phase === 'closed') return;
    if (e instanceof KeeperError && e.code === 'CONNECTIONLOSS') {
      // Never answered with CONNECTIONLOSS: the client resends it where the session re-attaches.
      this.end({ t: 'bye', reason: e.message });
      return;
    }
    this.outstanding--;
    let w: WireError;
    if (e instanceof KeeperError) {
      w = { code: e.code, message: e.message };
      if (e.path !== undefined) w.path = e.path;
      if (e.results !== undefined) w.results = e.results;
    } else {
      this.server.log.error({ err: (e as Error)?.message, stack: (e as Error)?.stack, client: this.link.remoteAddress }, 'remote session: unexpected error in a request');
      w = { code: 'SYSTEMERROR', message: 'internal error' };
    }
    this.send({ t: 'res', xid, zxid: this.member.lastZxid, e: w });
  }
}

function hex(sid: bigint): string {
  return '0x' + sid.toString(16);
}
