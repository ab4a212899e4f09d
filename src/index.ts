/**
 * conclave — embeddable ZooKeeper-equivalent coordination for Node.js.
 * Everything public is exported from here; recipes also from 'conclave/recipes',
 * the simulation harness from 'conclave/testing'.
 */
export { startMember, Member } from './api/member.js';
export type { MemberConfig, MemberState, MemberEvents, MemberHooks } from './api/member.js';
export { Session, op } from './api/session.js';
export type { SessionBackend, WatchSet } from './api/session.js';
export type {
  CreateOptions, Data, Op, OpResult, RetryPolicy, SessionOptions, SessionState, Stat, WatchEvent, Watcher,
} from './api/types.js';
export type { AdminCommand } from './api/admin.js';
export { ADMIN_COMMANDS } from './api/admin.js';
export { KeeperError, isKeeperError } from './core/errors.js';
export type { ErrorCode } from './core/errors.js';
export { CreateMode } from './core/createMode.js';
export { Perms, Ids, digest } from './core/acl.js';
export type { ACL, AuthId } from './core/acl.js';
export { levelStorage, LevelStorage } from './storage/level.js';
export { memoryStorage, MemoryStorage } from './storage/memory.js';
export type { Storage, StorageState, SnapshotHeader, StoredSnapshot } from './storage/types.js';
export { StorageError, CorruptRecordError } from './storage/errors.js';
export type { Transport, TransportEvents, PeerMessage, PeerAddresses } from './transport/types.js';
export type { Clock } from './api/clock.js';
export { realClock } from './api/clock.js';
export type { Logger, LogLevel } from './api/log.js';
export { memoryNetwork, MemoryTransport } from './transport/memory.js';
export type { MemoryNetwork, MemoryNetworkOptions, MemoryNetworkStats, DropRule } from './transport/memory.js';
export { tcpTransport, TcpTransport, connectTcpClient } from './transport/tcp.js';
export type { TcpTransportOptions, ClientConnection, ClientConnectionEvents, TcpClientOptions } from './transport/tcp.js';
export { libp2pTransport, Libp2pTransport, generatePeerKey, peerIdFromKey, CONCLAVE_PROTOCOL } from './transport/libp2p.js';
export type { Libp2pTransportOptions } from './transport/libp2p.js';
export { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameError, encodeFrame, decodePayload } from './transport/frame.js';
export * from './api/recipes/index.js';
export { connect, tcpClientTransport } from './api/remote/client.js';
export type { ClientTransport, ClientLink, ConnectOptions } from './api/remote/client.js';
export type { RemoteClientLink } from './api/remote/server.js';
export type { SessionSink } from './api/member.js';
export { parseZooCfg, loadConfig, toMemberConfig, ConfigError, DEFAULT_ADMIN_PORT } from './api/config.js';
export type { ZooCfg, ServerEntry, MemberProcessConfig } from './api/config.js';
export { startAdminServer, memberStatus, browseTree, ADMIN_COMMAND_ALIASES } from './api/adminServer.js';
export type { AdminServer, AdminServerOptions } from './api/adminServer.js';
