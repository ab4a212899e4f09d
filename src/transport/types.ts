import type { ClientConnection } from './tcp.js';
import type { EventEmitter } from 'eventemitter3';

/** Any message members exchange; transports only need it to be msgpackr-encodable. */
export type PeerMessage = { t: string };

export interface TransportEvents {
  /** A message from an authenticated member. */
  message: (from: number, msg: PeerMessage) => void;
  /** A connection to `peer` is (re)established. */
  up: (peer: number) => void;
  /** The connection to `peer` closed (crash visible to the transport). */
  down: (peer: number) => void;
  /** A problem worth logging (bad frame, refused handshake, …); never fatal. */
  warn: (message: string, detail?: Record<string, unknown>) => void;
}

/** Where each member listens, by member id. */
export type PeerAddresses = ReadonlyMap<number, string>;

/**
 * How members reach each other. FIFO per ordered pair of members while a connection lasts;
 * `send` never throws and never blocks (messages to an unreachable peer are dropped, and the
 * protocol above recovers). ZAB imports only this interface.
 */
export interface Transport extends EventEmitter<TransportEvents> {
  /** Short name for logs: 'memory', 'tcp', 'libp2p'. */
  readonly kind: string;
  /** Starts listening as member `self` and connecting to `peers` (which may include self). */
  start(self: number, peers: PeerAddresses): Promise<void>;
  /** Queues `msg` for `to`. */
  send(to: number, msg: PeerMessage): void;
  /** Peers currently connected. */
  connected(): number[];
  /** Closes every connection and the listener. */
  stop(): Promise<void>;
  /**
   * Optional: binds the listener before start() and resolves with the address peers should use for
   * this member (with port 0, the port actually bound). start() listens by itself if not yet done.
   */
  listen?(): Promise<string>;
  /** Optional: the address this member listens on, once listening. */
  address?(): string | undefined;
  /** Optional: bytes accepted by send() for `peer` and not yet handed to the network. */
  queued?(peer: number): number;
  /**
   * Optional: hands connections from clients (remote sessions, `connect()`) to `handler`. A member
   * calls it with itself when it is given the transport; a transport built with its own client
   * handler keeps that one and returns false.
   */
  serveClients?(handler: (conn: ClientConnection) => void): boolean;
}
