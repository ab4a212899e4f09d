/** Fixtures for remote-session tests: in-process members over real TCP on 127.0.0.1, ephemeral ports. */
import { silentLogger } from '../../src/api/log.js';
import type { Logger } from '../../src/api/log.js';
import { startMember, type Member, type MemberConfig } from '../../src/api/member.js';
import type { RemoteClientLink } from '../../src/api/remote/server.js';
import { tcpTransport, type ClientConnection, type TcpTransport } from '../../src/transport/tcp.js';

export const SECRET = 'remote-sessions-test-secret';

export interface TcpEnsemble {
  members: Map<number, Member | undefined>;
  transports: Map<number, TcpTransport>;
  /** Member id → 'host:port' (members and clients share the listener). */
  addresses: Map<number, string>;
  /** Every member's address. */
  all(): string[];
  member(id: number): Member;
  leader(): Member;
  followers(): Member[];
  /** Stops member `id` gracefully (its remote clients move on). */
  stop(id: number): Promise<void>;
  /** Starts member `id` again on the same address (fresh transport, same storage). */
  restart(id: number): Promise<void>;
  stopAll(): Promise<void>;
  /** Wraps every client connection a member accepts from now on (fault injection). */
  wrapClients?: (memberId: number, conn: ClientConnection) => RemoteClientLink;
}

export interface EnsembleOptions {
  size?: number;
  member?: Partial<MemberConfig>;
  logger?: Logger;
  wrapClients?: (memberId: number, conn: ClientConnection) => RemoteClientLink;
}

/** An ensemble of `size` members in this process over TCP; resolves once every member serves. */
export async function tcpEnsemble(options: EnsembleOptions = {}): Promise<TcpEnsemble> {
  const size = options.size ?? 3;
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const members = new Map<number, Member | undefined>();
  const transports = new Map<number, TcpTransport>();
  const addresses = new Map<number, string>();
  const storages = new Map<number, MemberConfig['storage']>();
  const ens: TcpEnsemble = {
    members, transports, addresses,
    all: () => ids.map((id) => addresses.get(id)!),
    member: (id) => {
      const m = members.get(id);
      if (!m) throw new Error(`member ${id} is not running`);
      return m;
    },
    leader: () => {
      for (const m of members.values()) if (m && m.state === 'leading' && m.serving) return m;
      throw new Error('no leader');
    },
    followers: () => [...members.values()].filter((m): m is Member => !!m && m.state === 'following'),
    stop: async (id) => {
      const m = members.get(id);
      members.set(id, undefined);
      await m?.stop();
    },
    restart: async (id) => {
      await start(id);
      await ens.member(id).ready(20_000);
    },
    stopAll: async () => {
      await Promise.all(ids.map((id) => ens.stop(id)));
    },
    wrapClients: options.wrapClients,
  };
  const makeTransport = (id: number, listen: string): TcpTransport => {
    const t = tcpTransport({
      listen, secret: SECRET,
      reconnectMinMs: 20, reconnectMaxMs: 200,
      onClient: (c) => {
        const m = members.get(id);
        if (!m) return c.close();
        m.acceptClient(ens.wrapClients ? ens.wrapClients(id, c) : c);
      },
    });
    transports.set(id, t);
    return t;
  };
  for (const id of ids) addresses.set(id, await makeTransport(id, '127.0.0.1:0').listen());
  const ensemble = Object.fromEntries(ids.map((id) => [id, addresses.get(id)!]));
  const { memoryStorage } = await import('../../src/storage/memory.js');
  for (const id of ids) storages.set(id, memoryStorage());
  const launch = async (id: number, t: TcpTransport): Promise<void> => {
    const m = await startMember({
      id, ensemble, transport: t, secret: SECRET, storage: storages.get(id), tickMs: 50, initLimit: 20, syncLimit: 5,
      logger: options.logger ?? silentLogger, ...options.member,
    });
    members.set(id, m);
  };
  const start = (id: number): Promise<void> => launch(id, makeTransport(id, addresses.get(id)!));
  // The first transports were made to learn the ports: the members start with them.
  await Promise.all(ids.map((id) => launch(id, transports.get(id)!)));
  await Promise.all(ids.map((id) => ens.member(id).ready(20_000)));
  return ens;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until true (or fails after `timeoutMs`). */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A logger that records warnings and errors (and stays quiet). */
export function recordingLogger(): Logger & { warnings: string[]; errors: string[] } {
  const warnings: string[] = [];
  const errors: string[] = [];
  const l: Logger & { warnings: string[]; errors: string[] } = {
    warnings, errors,
    debug() {}, info() {},
    warn(o, msg) { warnings.push(o.session === undefined ? msg : `${msg} [session]`); },
    error(o, msg) { errors.push(`${msg} ${JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`); },
    child() { return l; },
  };
  return l;
}

// ------------------------------------------------------------------ fault injection

import { tcpClientTransport, type ClientLink, type ClientTransport } from '../../src/api/remote/client.js';
import type { PeerMessage } from '../../src/transport/types.js';

/** A client transport that can be cut off (connects fail at once) or restricted to some addresses. */
export interface GatedTransport extends ClientTransport {
  /** No connection succeeds until unblock() (an unreachable ensemble). */
  block(): void;
  unblock(): void;
  /** Only these addresses can be reached (undefined: all). */
  only(addresses: string[] | undefined): void;
  /** Closes every open link (the client sees its connection drop). */
  dropAll(): void;
  /** Addresses connected to, in order. */
  readonly dialed: string[];
}

export function gatedTransport(): GatedTransport {
  const inner = tcpClientTransport();
  let blocked = false;
  let allowed: Set<string> | undefined;
  const open = new Set<ClientLink>();
  const dialed: string[] = [];
  return {
    kind: 'gated-tcp',
    checkAddress: inner.checkAddress,
    dialed,
    block: () => {
      blocked = true;
    },
    unblock: () => {
      blocked = false;
    },
    only: (a) => {
      allowed = a ? new Set(a) : undefined;
    },
    dropAll: () => {
      for (const l of open) l.close();
    },
    async connect(address, o) {
      if (blocked || (allowed && !allowed.has(address))) throw new Error(`connect ECONNREFUSED ${address} (gated)`);
      const link = await inner.connect(address, o);
      dialed.push(address);
      open.add(link);
      link.on('close', () => open.delete(link));
      return link;
    },
  };
}

/** What a member-side fault hook may do with one message. */
export type FaultVerdict = 'pass' | 'drop-and-close';

export interface MemberSideFaults {
  /** Member → client. */
  onSend?: (memberId: number, msg: PeerMessage) => FaultVerdict;
  /** Client → member, seen after the member handled it. */
  afterReceive?: (memberId: number, msg: PeerMessage) => FaultVerdict;
}

/**
 * Wraps members' client connections: a hook can swallow a message the member sends and end the
 * connection right there (a reply lost with its connection), or end it right after the member
 * took a request (the request reached it, the client never hears back).
 */
export function faultyClients(faults: MemberSideFaults): (memberId: number, conn: ClientConnection) => RemoteClientLink {
  return (memberId, conn) => {
    let dead = false;
    const kill = (): void => {
      dead = true;
      conn.close();
    };
    const link: RemoteClientLink = {
      get remoteAddress() {
        return conn.remoteAddress;
      },
      get closed() {
        return dead || conn.closed;
      },
      send(msg) {
        if (dead) return false;
        if (faults.onSend?.(memberId, msg) === 'drop-and-close') {
          kill();
          return true;
        }
        return conn.send(msg);
      },
      close: () => kill(),
      on(event: 'message' | 'close', fn: (x: never) => void) {
        if (event === 'close') {
          conn.on('close', fn as (e?: Error) => void);
        } else {
          conn.on('message', (m) => {
            if (dead) return;
            (fn as (m: PeerMessage) => void)(m);
            if (faults.afterReceive?.(memberId, m) === 'drop-and-close') kill();
          });
        }
        return link;
      },
    } as RemoteClientLink;
    return link;
  };
}

/** The member whose process serves remote session `sid` now, if any. */
export function servingMember(ens: TcpEnsemble, sid: bigint): Member | undefined {
  for (const m of ens.members.values()) if (m && m.localSessionsReport().some((r) => r.id === sid)) return m;
  return undefined;
}
