import os from 'node:os';
import { KeeperError } from '../core/errors.js';
import { formatZxid } from '../core/zxid.js';
import type { Member } from './member.js';

/** The four-letter words, as typed admin commands. */
export type AdminCommand =
  | 'ruok' | 'conf' | 'envi' | 'srvr' | 'stat' | 'srst' | 'cons' | 'crst' | 'dump' | 'wchs' | 'wchc' | 'wchp' | 'mntr';

export const ADMIN_COMMANDS: readonly AdminCommand[] = ['ruok', 'conf', 'envi', 'srvr', 'stat', 'srst', 'cons', 'crst', 'dump', 'wchs', 'wchc', 'wchp', 'mntr'];

const hex = (v: bigint): string => '0x' + v.toString(16);

function mode(m: Member): string {
  switch (m.state) {
    case 'leading': return m.ensemble.size === 1 ? 'standalone' : 'leader';
    case 'following': return 'follower';
    case 'observing': return 'observer';
    default: return m.state;
  }
}

function latency(m: Member): { min: number; avg: number; max: number } {
  const s = m.stats;
  return {
    min: s.latencyCount === 0 ? 0 : s.latencyMin,
    avg: s.latencyCount === 0 ? 0 : Math.round((s.latencyTotal / s.latencyCount) * 1000) / 1000,
    max: s.latencyMax,
  };
}

/**
 * Packets as ZooKeeper counts them: client requests in and replies out (every request gets one),
 * plus the member-to-member messages of an ensemble.
 */
function packets(m: Member): { received: number; sent: number } {
  return { received: m.stats.packetsReceived + m.stats.requests, sent: m.stats.packetsSent + m.stats.requests };
}

function srvr(m: Member): Record<string, unknown> {
  return {
    version: 'conclave 0.1.0',
    memberId: m.id,
    mode: mode(m),
    serving: m.serving,
    leaderId: m.leaderId ?? null,
    zxid: formatZxid(m.lastZxid),
    epoch: m.zab.epoch,
    latency: latency(m),
    received: packets(m).received,
    sent: packets(m).sent,
    connections: m.localSessionsReport().length,
    outstanding: m.outstandingRequests,
    nodeCount: m.tree.nodeCount,
  };
}

/** Runs one admin command against a member. */
export function runAdmin(m: Member, command: AdminCommand): Record<string, unknown> {
  switch (command) {
    case 'ruok':
      // ZooKeeper answers 'imok' when the process is running, even without a quorum.
      return { ok: !m.stopped, answer: m.stopped ? '' : 'imok', serving: m.serving };
    case 'conf':
      return {
        memberId: m.id,
        tickMs: m.tickMs,
        initLimit: m.config.initLimit ?? 20,
        syncLimit: m.config.syncLimit ?? 10,
        snapCount: m.snapCount,
        maxDataBytes: m.maxDataBytes,
        minSessionTimeoutMs: m.minSessionTimeoutMs,
        maxSessionTimeoutMs: m.maxSessionTimeoutMs,
        maxSessionsPerOrigin: m.maxSessionsPerOrigin,
        forceSync: m.config.forceSync ?? true,
        storage: m.storage.description,
        transport: m.transport?.kind ?? 'none',
        ensemble: Object.fromEntries([...m.ensemble].map(([id, e]) => [id, { address: e.address, role: e.role }])),
        autopurge: m.config.autopurge ?? { snapRetainCount: 3, purgeIntervalMs: 0 },
      };
    case 'envi':
      return {
        'conclave.version': '0.1.0',
        'node.version': process.version,
        'os.name': os.type(),
        'os.arch': os.arch(),
        'os.release': os.release(),
        'host.name': os.hostname(),
        'process.pid': process.pid,
        'process.cwd': process.cwd(),
        'process.memory.rss': process.memoryUsage().rss,
        'cpu.count': os.cpus().length,
      };
    case 'srvr':
      return srvr(m);
    case 'stat':
      return {
        ...srvr(m),
        clients: m.localSessionsReport().map((s) => ({ session: hex(s.id), origin: s.origin, state: s.state, outstanding: s.pending })),
      };
    case 'srst':
      m.resetStats();
      return { reset: true };
    case 'cons':
      return {
        connections: m.localSessionsReport().map((s) => ({
          session: hex(s.id), origin: s.origin, timeoutMs: s.timeoutMs, outstanding: s.pending, lastZxid: formatZxid(s.lastZxid), state: s.state,
        })),
      };
    case 'crst':
      m.resetStats();
      return { reset: true };
    case 'dump': {
      const sessions: Record<string, { timeoutMs: number; origin: string; ephemerals: string[] }> = {};
      for (const [id, e] of m.tree.sessions) {
        sessions[hex(id)] = { timeoutMs: e.timeoutMs, origin: e.origin, ephemerals: [...(m.tree.ephemerals.get(id) ?? [])].sort() };
      }
      return { sessionCount: m.tree.sessions.size, sessions, trackedByLeader: m.trackedSessions };
    }
    case 'wchs':
      return { connections: m.watches.sessionCount, watchedPaths: m.watches.pathCount, totalWatches: m.watches.size };
    case 'wchc': {
      const out: Record<string, string[]> = {};
      for (const [sid, paths] of m.watches.bySessionReport()) out[hex(sid)] = paths;
      return { sessions: out };
    }
    case 'wchp': {
      const out: Record<string, string[]> = {};
      for (const [path, sids] of m.watches.byPathReport()) out[path] = sids.map(hex);
      return { paths: out };
    }
    case 'mntr': {
      const lat = latency(m);
      const learners = m.zab.learnerReport();
      const mem = process.memoryUsage();
      const out: Record<string, unknown> = {
        zk_version: 'conclave 0.1.0',
        zk_server_state: mode(m),
        zk_avg_latency: lat.avg,
        zk_max_latency: lat.max,
        zk_min_latency: lat.min,
        zk_packets_received: packets(m).received,
        zk_packets_sent: packets(m).sent,
        zk_num_alive_connections: m.localSessionsReport().length,
        zk_outstanding_requests: m.outstandingRequests,
        zk_znode_count: m.tree.nodeCount,
        zk_watch_count: m.watches.size,
        zk_ephemerals_count: m.tree.ephemeralCount,
        zk_approximate_data_size: m.tree.dataBytes,
        zk_global_sessions: m.tree.sessions.size,
        zk_last_zxid: formatZxid(m.lastZxid),
        zk_epoch: m.zab.epoch,
        zk_snapshots_taken: m.stats.snapshotsTaken,
        zk_last_snapshot_ms: m.stats.lastSnapshotMs,
        zk_fsync_batches: m.stats.fsyncBatches,
        zk_fsync_txns: m.stats.fsyncTxns,
        zk_avg_txns_per_fsync: m.stats.fsyncBatches === 0 ? 0 : Math.round((m.stats.fsyncTxns / m.stats.fsyncBatches) * 100) / 100,
        zk_open_file_descriptor_count: null,
        zk_heap_used_bytes: mem.heapUsed,
        zk_rss_bytes: mem.rss,
        zk_uptime_ms: m.clock.now() - m.stats.startedAt,
      };
      if (m.state === 'leading') {
        out.zk_learners = learners.length;
        out.zk_synced_followers = learners.filter((l) => !l.observer && l.phase === 'synced').length;
        out.zk_synced_observers = learners.filter((l) => l.observer && l.phase === 'synced').length;
        out.zk_pending_syncs = learners.filter((l) => l.phase !== 'synced').length;
        out.zk_outstanding_proposals = m.zab.outstandingProposals;
        out.zk_learner_lag_ticks = Object.fromEntries(learners.map((l) => [l.id, l.lagTicks]));
      }
      return out;
    }
    default:
      throw new KeeperError('BADARGUMENTS', undefined, `unknown admin command '${String(command)}' (known: ${ADMIN_COMMANDS.join(', ')})`);
  }
}
