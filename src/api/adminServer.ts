import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { checkACL, digest, Perms, permsToString, type ACL } from '../core/acl.js';
import { KeeperError } from '../core/errors.js';
import { validatePath } from '../core/path.js';
import type { Stat } from '../core/stat.js';
import { counterOf, epochOf, formatZxid } from '../core/zxid.js';
import { ADMIN_COMMANDS, runAdmin, type AdminCommand } from './admin.js';
import type { Member } from './member.js';

/**
 * The admin endpoint (SPEC §7, like ZooKeeper's AdminServer): HTTP/JSON for the admin commands,
 * Prometheus metrics, a small self-contained status page with a tree browser.
 *
 *   GET /commands             the command names, and which the whitelist allows
 *   GET /commands/<name>      one admin command as JSON (ZooKeeper's long names work too: monitor, …)
 *   GET /metrics              Prometheus text format (prom-client), mntr's figures + Node process metrics
 *   GET /status               what the page shows: role, leader, zxid, learners and their lag, sessions
 *   GET /tree?path=/x         children + stat + data preview, as the world (or super, with Basic auth) sees it
 *   GET /                     the page (HTML, inline script and style, no external assets)
 *
 * Bound to 127.0.0.1 by default. On a loopback address, requests must name a loopback Host, so a
 * web page cannot reach the endpoint through DNS rebinding.
 */

export interface AdminServerOptions {
  /** Port to listen on; 0 picks a free one (default 8080, as ZooKeeper). */
  port?: number;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Serve /metrics (default true). */
  metrics?: boolean;
  /** Node process metrics (heap, GC, event loop lag, fds…) in /metrics (default true). */
  processMetrics?: boolean;
  /** Largest data preview in /tree, in bytes (default 1024). */
  previewBytes?: number;
  /** Most children listed by /tree (default 1000). */
  maxChildren?: number;
}

export interface AdminServer {
  /** 'http://host:port' */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The Prometheus registry behind /metrics (add your own metrics to it if you like). */
  readonly registry: Registry;
  /** The Prometheus text, as /metrics serves it. */
  metrics(): Promise<string>;
  close(): Promise<void>;
}

/** ZooKeeper AdminServer's command names, as aliases of the four-letter words. */
export const ADMIN_COMMAND_ALIASES: Readonly<Record<string, AdminCommand>> = {
  configuration: 'conf', config: 'conf', environment: 'envi', env: 'envi', server_stats: 'srvr', srvr: 'srvr',
  stats: 'stat', stat_reset: 'srst', connections: 'cons', connection_stat_reset: 'crst', watch_summary: 'wchs',
  watches: 'wchc', watches_by_path: 'wchp', monitor: 'mntr', are_you_ok: 'ruok',
};

const VERSION = '0.1.0';

/** JSON with bigints as hex strings (zxids, session ids) and non-finite numbers as null. */
function json(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return '0x' + v.toString(16);
    if (typeof v === 'number' && !Number.isFinite(v)) return null;
    return v;
  }, 2);
}

function modeOf(m: Member): string {
  switch (m.state) {
    case 'leading': return m.ensemble.size === 1 ? 'standalone' : 'leader';
    case 'following': return 'follower';
    case 'observing': return 'observer';
    default: return m.state;
  }
}

const MODES = ['standalone', 'leader', 'follower', 'observer', 'looking', 'stopped'] as const;

function statJson(s: Stat): Record<string, unknown> {
  return {
    czxid: formatZxid(s.czxid), mzxid: formatZxid(s.mzxid), pzxid: formatZxid(s.pzxid),
    ctime: s.ctime, mtime: s.mtime, version: s.version, cversion: s.cversion, aversion: s.aversion,
    ephemeralOwner: '0x' + s.ephemeralOwner.toString(16), dataLength: s.dataLength, numChildren: s.numChildren,
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function preview(data: Uint8Array, max: number): { encoding: 'utf8' | 'hex'; text: string; bytes: number; truncated: boolean } {
  const cut = data.subarray(0, max);
  let text: string | undefined;
  try {
    text = utf8.decode(cut);
  } catch {
    // A multi-byte character split at the cut is still text.
    try {
      text = cut.length < data.length ? utf8.decode(cut.subarray(0, Math.max(0, cut.length - 3))) : undefined;
    } catch {
      text = undefined;
    }
  }
  // eslint-disable-next-line no-control-regex
  if (text !== undefined && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
    return { encoding: 'utf8', text, bytes: data.length, truncated: cut.length < data.length };
  }
  return { encoding: 'hex', text: Buffer.from(cut).toString('hex'), bytes: data.length, truncated: cut.length < data.length };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function hostOfHeader(h: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (v6) return v6[1]!;
  return h.replace(/:\d+$/, '');
}

/** Builds the Prometheus registry for a member: everything mntr has, with HELP and types. */
function buildRegistry(member: Member, processMetrics: boolean): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ member: String(member.id) });
  if (processMetrics) collectDefaultMetrics({ register: registry });
  // One mntr per scrape, shared by every metric's collect(): prom-client calls the collect()s of a
  // scrape synchronously in registration order, and conclave_info (registered first) refreshes it.
  let snap: Record<string, unknown> | undefined;
  const refresh = (): void => {
    snap = runAdmin(member, 'mntr');
  };
  const mntr = (): Record<string, unknown> => {
    if (!snap) refresh();
    return snap!;
  };
  const num = (k: string): number => {
    const v = mntr()[k];
    return typeof v === 'number' && Number.isFinite(v) ? v : 0;
  };
  const gauge = (name: string, help: string, value: () => number): void => {
    new Gauge({ name, help, registers: [registry], collect() { this.set(value()); } });
  };
  const counter = (name: string, help: string, value: () => number): void => {
    new Counter({
      name, help, registers: [registry],
      // The member keeps the running totals (srst/crst reset them, which Prometheus reads as a counter reset).
      collect() { this.reset(); this.inc(Math.max(0, value())); },
    });
  };

  new Gauge({
    name: 'conclave_info', help: 'Constant 1, labelled with the conclave version.', labelNames: ['version'], registers: [registry],
    collect() {
      refresh();
      this.set({ version: VERSION }, 1);
    },
  });
  new Gauge({
    name: 'conclave_server_state', help: 'The member\'s role: 1 for the current state (standalone, leader, follower, observer, looking, stopped), 0 for the others.',
    labelNames: ['state'], registers: [registry],
    collect() {
      const mode = modeOf(member);
      for (const s of MODES) this.set({ state: s }, s === mode ? 1 : 0);
    },
  });
  gauge('conclave_serving', 'Whether the member serves sessions (1) or waits for a quorum (0).', () => (member.serving ? 1 : 0));
  gauge('conclave_leader_id', 'Id of the established leader this member follows or is; 0 when there is none.', () => member.leaderId ?? 0);
  gauge('conclave_last_zxid', 'The last zxid applied to this member\'s tree (epoch << 32 | counter).', () => Number(member.lastZxid));
  gauge('conclave_epoch', 'The current epoch.', () => num('zk_epoch'));
  gauge('conclave_min_latency_ms', 'Fastest write since the last srst, in milliseconds (request to reply).', () => num('zk_min_latency'));
  gauge('conclave_avg_latency_ms', 'Mean write latency since the last srst, in milliseconds.', () => num('zk_avg_latency'));
  gauge('conclave_max_latency_ms', 'Slowest write since the last srst, in milliseconds.', () => num('zk_max_latency'));
  counter('conclave_write_latency_ms_total', 'Sum of write latencies in milliseconds (rate over conclave_writes_total gives the mean).', () => member.stats.latencyTotal);
  counter('conclave_writes_total', 'Writes answered by this member (the latency figures count these).', () => member.stats.latencyCount);
  counter('conclave_requests_total', 'Requests (reads and writes) of this member\'s sessions.', () => member.stats.requests);
  counter('conclave_packets_received_total', 'Packets received: requests of sessions plus messages from other members.', () => num('zk_packets_received'));
  counter('conclave_packets_sent_total', 'Packets sent: replies to sessions plus messages to other members.', () => num('zk_packets_sent'));
  gauge('conclave_num_alive_connections', 'Sessions served by this member.', () => num('zk_num_alive_connections'));
  gauge('conclave_outstanding_requests', 'Requests of this member\'s sessions waiting for their result.', () => num('zk_outstanding_requests'));
  gauge('conclave_znode_count', 'Znodes in the tree (including / and /zookeeper).', () => num('zk_znode_count'));
  gauge('conclave_watch_count', 'Watches set on this member.', () => num('zk_watch_count'));
  gauge('conclave_ephemerals_count', 'Ephemeral znodes in the tree.', () => num('zk_ephemerals_count'));
  gauge('conclave_approximate_data_size_bytes', 'Bytes of znode data in the tree.', () => num('zk_approximate_data_size'));
  gauge('conclave_global_sessions', 'Sessions in the ensemble (replicated).', () => num('zk_global_sessions'));
  counter('conclave_snapshots_taken_total', 'Snapshots taken since start.', () => num('zk_snapshots_taken'));
  gauge('conclave_last_snapshot_ms', 'How long the last snapshot took, in milliseconds.', () => num('zk_last_snapshot_ms'));
  counter('conclave_fsync_batches_total', 'Durable (group-committed) writes of the txn log.', () => num('zk_fsync_batches'));
  counter('conclave_fsync_txns_total', 'Txns made durable by those writes.', () => num('zk_fsync_txns'));
  gauge('conclave_avg_txns_per_fsync', 'Mean txns per durable write (group commit).', () => num('zk_avg_txns_per_fsync'));
  gauge('conclave_uptime_seconds', 'Seconds since the member started.', () => num('zk_uptime_ms') / 1000);
  gauge('conclave_learners', 'Learners (followers and observers) connected to this member while it leads.', () => num('zk_learners'));
  gauge('conclave_synced_followers', 'Followers synced with this leader (0 unless leading).', () => num('zk_synced_followers'));
  gauge('conclave_synced_observers', 'Observers synced with this leader (0 unless leading).', () => num('zk_synced_observers'));
  gauge('conclave_pending_syncs', 'Learners still being synchronized by this leader.', () => num('zk_pending_syncs'));
  gauge('conclave_outstanding_proposals', 'Proposals logged by this leader and not yet committed.', () => num('zk_outstanding_proposals'));
  new Gauge({
    name: 'conclave_learner_lag_ticks', help: 'Ticks since this leader last heard from each learner.', labelNames: ['learner'], registers: [registry],
    collect() {
      this.reset();
      const lag = mntr().zk_learner_lag_ticks as Record<string, number> | undefined;
      for (const [id, v] of Object.entries(lag ?? {})) this.set({ learner: id }, v);
    },
  });
  new Gauge({
    name: 'conclave_learner_lag_txns', help: 'Txns each learner has yet to acknowledge (this leader\'s last zxid minus the learner\'s last ack, within the epoch).',
    labelNames: ['learner'], registers: [registry],
    collect() {
      this.reset();
      for (const l of learners(member)) if (l.lagTxns !== null) this.set({ learner: String(l.id) }, l.lagTxns);
    },
  });
  return registry;
}

interface LearnerView {
  id: number;
  observer: boolean;
  phase: string;
  ackedZxid: string;
  lagTxns: number | null;
  lagTicks: number;
}

function learners(member: Member): LearnerView[] {
  if (member.state !== 'leading') return [];
  const last = member.lastZxid;
  return member.zab.learnerReport().map((l) => ({
    id: l.id, observer: l.observer, phase: l.phase, ackedZxid: formatZxid(l.acked), lagTicks: l.lagTicks,
    lagTxns: epochOf(l.acked) === epochOf(last) ? Math.max(0, counterOf(last) - counterOf(l.acked)) : null,
  }));
}

/** What the page shows (GET /status). */
export function memberStatus(member: Member): Record<string, unknown> {
  const ls = learners(member);
  return {
    version: `conclave ${VERSION}`,
    memberId: member.id,
    mode: modeOf(member),
    state: member.state,
    serving: member.serving,
    leaderId: member.leaderId ?? null,
    zxid: formatZxid(member.lastZxid),
    epoch: member.zab ? member.zab.epoch : 0,
    ensemble: [...member.ensemble].map(([id, e]) => {
      const l = ls.find((x) => x.id === id);
      return { id, address: e.address, role: e.role, self: id === member.id, leader: id === member.leaderId, learner: l ?? null };
    }),
    learners: ls,
    outstandingProposals: member.state === 'leading' ? member.zab.outstandingProposals : 0,
    outstandingRequests: member.outstandingRequests,
    sessions: {
      global: member.tree.sessions.size,
      local: member.localSessionsReport().map((s) => ({ id: '0x' + s.id.toString(16), origin: s.origin, timeoutMs: s.timeoutMs, state: s.state, outstanding: s.pending, ephemerals: member.tree.ephemerals.get(s.id)?.size ?? 0 })),
    },
    nodeCount: member.tree.nodeCount,
    ephemeralCount: member.tree.ephemeralCount,
    watchCount: member.watches.size,
    dataBytes: member.tree.dataBytes,
    uptimeMs: member.clock.now() - member.stats.startedAt,
    pid: process.pid,
  };
}

/**
 * One znode as the tree browser shows it. Stat is always visible (as `exists` is for everyone);
 * children, data and the ACL only when the world may READ the node, or `asSuper`. Digest hashes
 * are masked unless `asSuper`.
 */
export function browseTree(member: Member, path: string, options: { asSuper?: boolean; previewBytes?: number; maxChildren?: number } = {}): Record<string, unknown> {
  validatePath(path);
  const node = member.tree.get(path);
  if (!node) throw new KeeperError('NONODE', path);
  const asSuper = options.asSuper ?? false;
  let readable = true;
  if (!asSuper) {
    try {
      checkACL(node.acl, Perms.READ, [], path);
    } catch {
      readable = false;
    }
  }
  const max = options.maxChildren ?? 1000;
  const children = readable ? member.tree.sortedChildren(node) : null;
  return {
    path,
    as: asSuper ? 'super' : 'world',
    readable,
    stat: statJson(node.stat),
    ephemeral: node.stat.ephemeralOwner !== 0n,
    acl: readable ? node.acl.map((a: ACL) => ({ scheme: a.scheme, id: !asSuper && a.scheme === 'digest' ? a.id.replace(/:.*$/s, ':x') : a.id, perms: permsToString(a.perms) })) : null,
    children: children ? children.slice(0, max) : null,
    childrenTruncated: children ? children.length > max : false,
    data: readable ? preview(node.data, options.previewBytes ?? 1024) : null,
    ...(readable ? {} : { reason: 'the world may not READ this node (its ACL); authenticate as super to browse it' }),
  };
}

/** Starts the admin endpoint for `member` (see the file comment). Stop it with close(). */
export async function startAdminServer(member: Member, options: AdminServerOptions = {}): Promise<AdminServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`admin port ${String(port)} is not 0-65535`);
  const registry = buildRegistry(member, options.processMetrics ?? true);
  const metricsOn = options.metrics ?? true;
  const guardHost = isLoopback(host);
  const superDigest = member.config.superDigest;

  const send = (res: http.ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  };
  const sendJson = (res: http.ServerResponse, status: number, value: unknown): void => send(res, status, 'application/json; charset=utf-8', json(value) + '\n');

  const isSuper = (req: http.IncomingMessage): boolean | 'bad' => {
    const h = req.headers.authorization;
    if (!h) return false;
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(h);
    if (!m || !superDigest) return 'bad';
    const cred = Buffer.from(m[1]!, 'base64').toString('utf8');
    const i = cred.indexOf(':');
    if (i <= 0) return 'bad';
    const a = Buffer.from(digest(cred.slice(0, i), cred.slice(i + 1)));
    const b = Buffer.from(superDigest);
    return a.length === b.length && timingSafeEqual(a, b) ? true : 'bad';
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if (guardHost && !isLoopback(hostOfHeader(req.headers.host ?? ''))) {
      return sendJson(res, 403, { error: `Host '${String(req.headers.host).slice(0, 100)}' is not a loopback name; this endpoint answers requests for localhost / 127.0.0.1 only` });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'application/json; charset=utf-8', json({ error: `${req.method} is not supported; use GET` }) + '\n', { allow: 'GET, HEAD' });
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    const p = url.pathname;
    if (p === '/' || p === '/index.html') {
      const nonce = randomBytes(16).toString('base64');
      return send(res, 200, 'text/html; charset=utf-8', page(nonce), {
        'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
        'referrer-policy': 'no-referrer',
      });
    }
    if (p === '/commands' || p === '/commands/') {
      const allowed = member.config.adminCommands ?? '*';
      return sendJson(res, 200, {
        commands: ADMIN_COMMANDS,
        allowed: allowed === '*' ? ADMIN_COMMANDS : ADMIN_COMMANDS.filter((c) => allowed.includes(c)),
        aliases: ADMIN_COMMAND_ALIASES,
      });
    }
    const cm = /^\/commands\/([A-Za-z_]+)\/?$/.exec(p);
    if (cm) {
      const name = cm[1]!;
      const command = (ADMIN_COMMANDS as readonly string[]).includes(name) ? (name as AdminCommand) : ADMIN_COMMAND_ALIASES[name];
      if (!command) return sendJson(res, 404, { command: name, error: `unknown command '${name}' (known: ${ADMIN_COMMANDS.join(', ')})` });
      try {
        const result = await member.admin(command);
        return sendJson(res, 200, { command, error: null, ...result });
      } catch (e) {
        const ke = e instanceof KeeperError ? e : undefined;
        if (ke?.code === 'NOAUTH') return sendJson(res, 403, { command, error: `'${command}' is not in the whitelist (4lw.commands.whitelist / adminCommands)` });
        return sendJson(res, 500, { command, error: (e as Error).message });
      }
    }
    if (p === '/metrics' && metricsOn) {
      return send(res, 200, registry.contentType, await registry.metrics());
    }
    if (p === '/status') return sendJson(res, 200, memberStatus(member));
    if (p === '/tree') {
      const path = url.searchParams.get('path') ?? '/';
      const who = isSuper(req);
      if (who === 'bad') {
        return sendJson(res, 403, { path, error: superDigest ? 'these credentials are not the super identity (superDigest)' : 'no super identity is configured on this member (superDigest)' });
      }
      try {
        return sendJson(res, 200, browseTree(member, path, { asSuper: who, ...(options.previewBytes !== undefined ? { previewBytes: options.previewBytes } : {}), ...(options.maxChildren !== undefined ? { maxChildren: options.maxChildren } : {}) }));
      } catch (e) {
        if (e instanceof KeeperError && e.code === 'NONODE') return sendJson(res, 404, { path, error: `no node at ${path}` });
        if (e instanceof KeeperError && e.code === 'BADARGUMENTS') return sendJson(res, 400, { path, error: e.message });
        throw e;
      }
    }
    return sendJson(res, 404, { error: `no such endpoint ${p}; try /, /commands, /commands/<name>, /metrics, /status, /tree?path=/` });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      member.log.warn({ err: (e as Error).message, url: req.url }, 'admin endpoint request failed');
      if (!res.headersSent) sendJson(res, 500, { error: (e as Error).message });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const why = e.code === 'EADDRINUSE' ? 'the address is already in use (another member or program listens there); stop it or set another admin.serverPort'
        : e.code === 'EADDRNOTAVAIL' ? 'that address is not on this machine; set admin.serverAddress to one of its addresses (127.0.0.1 by default)'
          : e.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges); use a port ≥ 1024' : e.message;
      reject(new Error(`admin endpoint cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${why}`, { cause: e }));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (e) => member.log.warn({ err: e.message }, 'admin endpoint error'));
  const bound = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  member.log.info({ url }, 'admin endpoint listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    host,
    port: bound,
    registry,
    metrics: () => registry.metrics(),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The status page: one HTML document, inline style and script (CSP nonce), no external assets. */
function page(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>conclave member</title>
<style nonce="${nonce}">
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#23313f;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:17px;margin:0}
.badge{padding:2px 8px;border-radius:10px;background:#556;font-weight:600}
.leader,.standalone{background:#1f7a3f}.follower{background:#2a5d9f}.observer{background:#6b4fa0}.looking,.stopped{background:#a33}
main{display:grid;grid-template-columns:minmax(320px,1fr) minmax(360px,1.3fr);gap:16px;padding:16px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 14px;overflow:auto}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 8px 3px 0;border-bottom:1px solid #eef0f2;font-variant-numeric:tabular-nums;vertical-align:top}
th{font-weight:600;color:#556}
code,pre{font:12.5px ui-monospace,Menlo,Consolas,monospace}
pre{background:#f3f4f6;padding:8px;white-space:pre-wrap;word-break:break-all;max-height:260px;overflow:auto}
a{color:#2a5d9f;cursor:pointer;text-decoration:none}a:hover{text-decoration:underline}
.crumbs a{margin-right:2px}.muted{color:#778}.err{color:#a33}
ul.kids{list-style:none;padding:0;margin:0;columns:2}
input{font:inherit;padding:2px 4px}
@media(max-width:800px){main{grid-template-columns:1fr}}
</style></head><body>
<header><h1>conclave member <span id="mid">?</span></h1><span id="mode" class="badge">…</span>
<span>leader <b id="leader">?</b></span><span>zxid <code id="zxid">?</code></span><span>epoch <b id="epoch">?</b></span>
<span class="muted" id="updated"></span></header>
<main>
<div>
<section><h2>Ensemble</h2><table><thead><tr><th>id</th><th>address</th><th>role</th><th>state</th><th>acked zxid</th><th>lag (txns)</th><th>silent (ticks)</th></tr></thead><tbody id="ens"></tbody></table></section>
<section><h2>Figures</h2><table><tbody id="figs"></tbody></table></section>
<section><h2>Sessions on this member</h2><table><thead><tr><th>session</th><th>origin</th><th>timeout</th><th>state</th><th>ephemerals</th><th>pending</th></tr></thead><tbody id="sess"></tbody></table></section>
</div>
<section><h2>Tree</h2>
<div class="crumbs" id="crumbs"></div>
<p class="muted">As the world sees it; nodes whose ACL does not let the world read stay closed.
<span id="authbox">Super: <input id="cred" type="password" placeholder="user:password" size="16" autocomplete="off"> <a id="credgo">use</a></span></p>
<div id="tree"></div>
</section>
</main>
<script nonce="${nonce}">
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function row(cells) { const tr = el('tr'); for (const c of cells) { const td = el('td'); if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? '–' : String(c); tr.appendChild(td); } return tr; }
let auth = null;
async function getJson(url) {
  const r = await fetch(url, { headers: auth ? { authorization: 'Basic ' + btoa(auth) } : {} });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
async function refresh() {
  try {
    const s = await getJson('/status');
    $('mid').textContent = s.memberId; $('mode').textContent = s.mode; $('mode').className = 'badge ' + s.mode;
    $('leader').textContent = s.leaderId === null ? 'none' : s.leaderId; $('zxid').textContent = s.zxid; $('epoch').textContent = s.epoch;
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    const ens = $('ens'); ens.replaceChildren();
    for (const m of s.ensemble) {
      const l = m.learner;
      const state = m.self ? s.mode : m.leader ? 'leader' : l ? l.phase : (s.mode === 'leader' ? 'not connected' : '');
      ens.appendChild(row([m.id + (m.self ? ' (this)' : ''), m.address || '–', m.role, state, l ? l.ackedZxid : null, l ? l.lagTxns : null, l ? l.lagTicks : null]));
    }
    const f = $('figs'); f.replaceChildren();
    for (const [k, v] of [['znodes', s.nodeCount], ['ephemerals', s.ephemeralCount], ['watches', s.watchCount], ['data bytes', s.dataBytes], ['sessions (ensemble)', s.sessions.global], ['outstanding requests', s.outstandingRequests], ['outstanding proposals', s.outstandingProposals], ['serving', s.serving ? 'yes' : 'no'], ['uptime', Math.round(s.uptimeMs / 1000) + ' s'], ['pid', s.pid]]) f.appendChild(row([k, v]));
    const ss = $('sess'); ss.replaceChildren();
    for (const x of s.sessions.local) ss.appendChild(row([x.id, x.origin, x.timeoutMs + ' ms', x.state, x.ephemerals, x.outstanding]));
    if (s.sessions.local.length === 0) ss.appendChild(row(['none']));
  } catch (e) { $('updated').textContent = 'unreachable: ' + e.message; }
}
function link(text, path) { const a = el('a', text); a.addEventListener('click', () => browse(path)); return a; }
async function browse(path) {
  const t = $('tree'); const c = $('crumbs'); c.replaceChildren(link('/', '/'));
  let acc = '';
  for (const part of path.split('/').filter(Boolean)) { acc += '/' + part; c.appendChild(link(part, acc)); c.appendChild(el('span', '/', 'muted')); }
  try {
    const n = await getJson('/tree?path=' + encodeURIComponent(path));
    t.replaceChildren();
    if (!n.readable) t.appendChild(el('p', n.reason, 'err'));
    if (n.children) {
      t.appendChild(el('h2', 'children (' + n.stat.numChildren + ')'));
      const ul = el('ul', undefined, 'kids');
      for (const k of n.children) { const li = el('li'); li.appendChild(link(k, (path === '/' ? '' : path) + '/' + k)); ul.appendChild(li); }
      t.appendChild(ul);
      if (n.childrenTruncated) t.appendChild(el('p', '(more not shown)', 'muted'));
    }
    if (n.data) { t.appendChild(el('h2', 'data (' + n.data.bytes + ' bytes, ' + n.data.encoding + (n.data.truncated ? ', truncated' : '') + ')')); t.appendChild(el('pre', n.data.text)); }
    if (n.acl) t.appendChild(el('p', 'ACL: ' + n.acl.map((a) => a.scheme + ':' + a.id + ':' + a.perms).join(', ')));
    const tb = el('table'); for (const [k, v] of Object.entries(n.stat)) tb.appendChild(row([k, (k === 'ctime' || k === 'mtime') ? new Date(v).toISOString() : v])); t.appendChild(tb);
  } catch (e) { t.replaceChildren(el('p', e.message, 'err')); }
}
$('credgo').addEventListener('click', () => { auth = $('cred').value || null; browse('/'); });
refresh(); browse('/'); setInterval(refresh, 2000);
</script></body></html>
`;
}
