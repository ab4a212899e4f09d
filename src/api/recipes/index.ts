/**
 * conclave/recipes — Curator's recipes over conclave sessions: retry policies, protected
 * creation, leader election, locks, caches, barriers, queues, counters, service discovery,
 * configuration and persistent nodes. Every recipe takes a Session first.
 */
export { ExponentialBackoffRetry, RetryNTimes, RetryOneTime, RetryUntilElapsed, RetryForever } from './retry.js';
export { addConnectionStateListener, connectionGeneration } from './connection.js';
export type { ConnectionState, ConnectionStateListener } from './connection.js';
export { isConnected, Deadline } from './util.js';
export type { WaitOptions } from './util.js';
export {
  createProtected, findProtected, deleteProtectedEventually, isProtectedName, protectedGuid, unprotectedName, protectedPrefix, PROTECTED_PREFIX,
} from './protected.js';
export type { ProtectedCreateOptions, ProtectedNode } from './protected.js';
export { Mutex, ReentrantNodeLock } from './mutex.js';
export type { InterProcessLock, LockEvents, MutexOptions } from './mutex.js';
export type { LockNode } from './lockInternals.js';
export { ReadWriteLock, READ_LOCK_NAME, WRITE_LOCK_NAME } from './readWriteLock.js';
export { Semaphore, SemaphoreMutex, Lease } from './semaphore.js';
export type { SemaphoreOptions } from './semaphore.js';
export { MultiLock } from './multiLock.js';
export { LeaderLatch, LeaderSelector } from './leader.js';
export type {
  LeaderLatchEvents, LeaderLatchOptions, LeaderLatchState, LeaderSelectorEvents, LeaderSelectorListener, LeaderSelectorOptions, Participant,
} from './leader.js';
export { TreeCache, PathChildrenCache, NodeCache } from './cache.js';
export type {
  ChildData, CacheEvents, TreeCacheEvent, TreeCacheEventType, TreeCacheOptions, PathChildrenCacheEvent, PathChildrenCacheEventType,
  PathChildrenCacheOptions, StartMode, NodeCacheEvents,
} from './cache.js';
export { jsonCodec, msgpackCodec, stringCodec, bytesCodec } from './codec.js';
export type { Codec } from './codec.js';
export { Barrier, DoubleBarrier } from './barrier.js';
export { Queue, PriorityQueue, DelayQueue } from './queue.js';
export type { QueueOptions, TakenItem } from './queue.js';
export { SharedCount, AtomicLong } from './counters.js';
export type { AtomicValue, AtomicLongOptions, SharedCountEvents, VersionedValue } from './counters.js';
export { PersistentNode } from './persistentNode.js';
export type { PersistentNodeEvents, PersistentNodeOptions } from './persistentNode.js';
export {
  ServiceDiscovery, ServiceCache, ServiceProvider, RandomStrategy, RoundRobinStrategy, LeastActiveStrategy, ConsistentHashStrategy,
} from './discovery.js';
export type {
  ProviderStrategy, ServiceCacheEvents, ServiceDiscoveryOptions, ServiceInstance, ServiceInstanceInput, ServiceProviderOptions, StrategyName,
} from './discovery.js';
export { ConfigStore } from './config.js';
export type { ConfigStoreEvents, ConfigStoreOptions } from './config.js';
export { typed } from './typed.js';
export type { TypedSession } from './typed.js';
