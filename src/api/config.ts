import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ADMIN_COMMANDS, type AdminCommand } from './admin.js';
import type { LogLevel } from './log.js';
import type { MemberConfig } from './member.js';

/**
 * Configuration from a ZooKeeper `zoo.cfg`-style file (SPEC §7): `key=value` lines, `#`/`!`
 * comments, ZooKeeper's keys with ZooKeeper's units, plus a few of ours (`secret`, `myid`,
 * `admin.serverPort`, …). `parseZooCfg(text)` is pure; `loadConfig(path)` also reads `myid` from
 * dataDir, `secretFile` and `CONCLAVE_SECRET`, and says what the member process needs.
 *
 * Every mistake is one line: `zoo.cfg:7: tickTime='2s' is not …; write e.g. tickTime=2000`.
 */

/** A bad configuration, said in one line with what to write instead. */
export class ConfigError extends Error {
  readonly key: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, key?: string, line?: number) {
    super(message);
    this.name = 'ConfigError';
    this.key = key;
    this.line = line;
  }
}

/** One `server.N=host:port[:electionPort][:participant|:observer][;[clientHost:]clientPort]` line. */
export interface ServerEntry {
  id: number;
  host: string;
  /** The member-to-member port (ZooKeeper's quorum port); conclave's one TCP listener per member. */
  port: number;
  /** ZooKeeper's separate election port: accepted, not used (election and broadcast share one connection). */
  electionPort?: number;
  role: 'participant' | 'observer';
  /** ZooKeeper 3.5's `;[host:]port` client address, when given. */
  clientAddress?: string;
  /** 'host:port' (IPv6 as '[::1]:2888'). */
  address: string;
  line: number;
}

/** What a zoo.cfg says, validated, in ZooKeeper's units. */
export interface ZooCfg {
  /** Where it came from (a file path, or '<text>'), for messages. */
  source: string;
  tickTime?: number;
  initLimit?: number;
  syncLimit?: number;
  /** Absolute: relative paths are resolved against the config file's directory. */
  dataDir: string;
  dataLogDir?: string;
  clientPort?: number;
  clientPortAddress?: string;
  servers: ServerEntry[];
  /** The `myid` key (ours); otherwise `dataDir/myid` (loadConfig) or 1 for a standalone member. */
  myid?: number;
  snapCount?: number;
  autopurge: { snapRetainCount: number; purgeIntervalHours: number };
  /** 0 = unlimited, as ZooKeeper. */
  maxClientCnxns?: number;
  /** jute.maxbuffer: the largest znode data, in bytes. */
  maxDataBytes?: number;
  whitelist?: AdminCommand[] | '*';
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  forceSync?: boolean;
  secret?: string;
  secretFile?: string;
  superDigest?: string;
  /** enforce.auth.enabled: remote sessions must authenticate with one of `enforceAuthSchemes`. */
  enforceAuthEnabled?: boolean;
  /** enforce.auth.schemes (only `digest` exists for remote sessions). */
  enforceAuthSchemes?: string[];
  admin: { enabled: boolean; host: string; port: number };
  quorumListenOnAllIPs: boolean;
  logLevel?: LogLevel;
  logFile?: string;
  /** Unknown or ignored keys, one line each (the config still loads). */
  warnings: string[];
}

/** Default admin endpoint port, as ZooKeeper's AdminServer. */
export const DEFAULT_ADMIN_PORT = 8080;

/** ZooKeeper keys that conclave accepts and does not need, with the reason (a warning, not an error). */
const IGNORED: Record<string, string> = {
  electionAlg: 'conclave always runs fast leader election',
  electionPortBindRetry: 'conclave has no separate election port',
  leaderServes: 'the leader always serves sessions',
  cnxTimeout: 'connection timeouts come from the transport (handshakeTimeoutMs)',
  globalOutstandingLimit: 'outstanding requests are bounded per session',
  preAllocSize: 'the txn log lives in LevelDB, which sizes its own files',
  syncEnabled: 'observers always log txns',
  standaloneEnabled: 'one server line (or none) is a standalone member',
  reconfigEnabled: 'dynamic reconfiguration is not supported yet',
  dynamicConfigFile: 'put the server.N lines in this file',
  peerType: 'the role comes from the server.N line (…:observer)',
  localSessionsEnabled: 'every session is global',
  localSessionsUpgradingEnabled: 'every session is global',
  skipACL: 'ACLs are always checked',
  snapSizeLimitInKb: 'snapshots are taken every ~snapCount txns',
  txnLogSizeLimitInKb: 'the txn log lives in LevelDB',
  commitLogCount: 'followers are brought up to date from an in-memory window (logWindow)',
  'admin.commandURL': 'commands are served at /commands/<name>',
  'admin.idleTimeout': 'the admin endpoint uses Node defaults',
  secureClientPort: 'TLS for client connections is not supported; use the libp2p transport for encryption',
  secureClientPortAddress: 'TLS for client connections is not supported',
  serverCnxnFactory: 'conclave has its own network layer',
  sslQuorum: 'use the libp2p transport (Noise) for encrypted member links',
  portUnification: 'there is no TLS port to unify',
  clientCnxnSocket: 'conclave has its own network layer',
  maxCnxns: 'use maxClientCnxns (per origin)',
  fsync_warningthresholdms: 'fsync times are in the logs at debug level',
  'fsync.warningthresholdms': 'fsync times are in the logs at debug level',
  'metricsProvider.className': 'Prometheus metrics are served by the admin endpoint at /metrics',
  'metricsProvider.httpPort': 'Prometheus metrics are served on admin.serverPort at /metrics',
  'metricsProvider.httpHost': 'Prometheus metrics are served on admin.serverAddress at /metrics',
  'metricsProvider.exportJvmInfo': 'Node process metrics are always exported',
  'jute.maxbuffer.extrasize': 'jute.maxbuffer bounds the data of one znode',
  quorumCnxnThreadsSize: 'conclave is single-threaded',
  'quorum.cnxn.threads_size': 'conclave is single-threaded',
  connectToLearnerMasterLimit: 'learners connect within initLimit',
  initialConfig: 'put the server.N lines in this file',
  minClientPortCnxns: 'use maxClientCnxns',
};
/** Prefixes of ZooKeeper key families that conclave does not use. */
const IGNORED_PREFIXES: [string, string][] = [
  ['ssl.', 'TLS is not supported; use the libp2p transport (Noise) for encryption'],
  ['ssl.quorum.', 'TLS is not supported; use the libp2p transport (Noise)'],
  ['authProvider.', 'conclave supports the digest, ip, world and auth schemes'],
  ['quorum.auth.', 'members authenticate with the ensemble `secret`'],
  ['zookeeper.', 'JVM system properties have no meaning here'],
  ['metricsProvider.', 'Prometheus metrics are served by the admin endpoint at /metrics'],
  ['group.', 'hierarchical quorums are not supported'],
  ['weight.', 'hierarchical quorums are not supported'],
];

interface Line {
  key: string;
  value: string;
  line: number;
}

function where(source: string, line: number | undefined): string {
  return line === undefined ? `${source}` : `${source}:${line}`;
}

/**
 * Parses Java-properties style text: `key=value` or `key: value` or `key value`, `#`/`!` comments,
 * surrounding whitespace trimmed, a trailing `\` continues the line.
 */
function lines(text: string, source: string): Line[] {
  const out: Line[] = [];
  const raw = text.split(/\r\n|\n|\r/);
  for (let i = 0; i < raw.length; i++) {
    const lineNo = i + 1;
    let l = raw[i]!.trim();
    if (l === '' || l.startsWith('#') || l.startsWith('!')) continue;
    // Continuation lines (bounded by the file's length).
    while (l.endsWith('\\') && !l.endsWith('\\\\') && i + 1 < raw.length) {
      l = l.slice(0, -1) + raw[++i]!.trim();
    }
    const m = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(l);
    if (!m) {
      if (/^[^=:\s]+$/.test(l)) throw new ConfigError(`${where(source, lineNo)}: '${l}' has no value; write ${l}=<value> (or remove the line)`, l, lineNo);
      throw new ConfigError(`${where(source, lineNo)}: cannot read '${l.slice(0, 60)}'; write key=value`, undefined, lineNo);
    }
    out.push({ key: m[1]!, value: m[2]!.trim(), line: lineNo });
  }
  return out;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** host:port[:port][:role][;[host:]port] with IPv6 hosts in brackets. */
function parseServer(id: number, value: string, source: string, line: number): ServerEntry {
  const key = `server.${id}`;
  const example = `${key}=10.0.0.${id}:2888:3888 (or ${key}=host:2888:3888:observer)`;
  const bad = (why: string): ConfigError => new ConfigError(`${where(source, line)}: ${key}='${value}' ${why}; write e.g. ${example}`, key, line);
  const [main, client, ...rest] = value.split(';');
  if (rest.length > 0) throw bad('has more than one \';\'');
  let host: string;
  let tail: string;
  const v6 = /^\[([^\]]+)\](.*)$/.exec(main!.trim());
  if (v6) {
    host = v6[1]!;
    tail = v6[2]!;
  } else {
    const i = main!.indexOf(':');
    if (i < 0) throw bad('has no port');
    host = main!.slice(0, i).trim();
    tail = main!.slice(i);
  }
  if (host === '' || /\s/.test(host)) throw bad('has no host');
  const parts = tail.split(':').slice(1).map((s) => s.trim());
  if (parts.length === 0 || tail[0] !== ':') throw bad('has no port');
  const port = Number(parts[0]);
  if (!/^\d{1,5}$/.test(parts[0]!) || port > 65535) throw bad(`has port '${parts[0]}', not a number 0-65535`);
  let electionPort: number | undefined;
  let role: 'participant' | 'observer' = 'participant';
  for (const p of parts.slice(1)) {
    if (/^\d{1,5}$/.test(p) && electionPort === undefined && role === 'participant' && Number(p) <= 65535) electionPort = Number(p);
    else if (p === 'observer' || p === 'participant') role = p;
    else throw bad(`has '${p}' where an election port or 'participant'/'observer' belongs`);
  }
  let clientAddress: string | undefined;
  if (client !== undefined) {
    const c = client.trim();
    const m = /^(?:(.+):)?(\d{1,5})$/.exec(c);
    if (!m || Number(m[2]) > 65535) throw bad(`has client address '${c}', not [host:]port`);
    clientAddress = hostPort(m[1] ?? '0.0.0.0', Number(m[2]));
  }
  return { id, host, port, electionPort, role, clientAddress, address: hostPort(host, port), line };
}

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/**
 * Parses and validates zoo.cfg text. Throws ConfigError (one line: source:line, the key, what is
 * wrong, what to write instead); unknown keys become `warnings`.
 */
export function parseZooCfg(text: string, options: { source?: string; baseDir?: string } = {}): ZooCfg {
  const source = options.source ?? 'zoo.cfg';
  const baseDir = options.baseDir ?? process.cwd();
  const warnings: string[] = [];
  const seen = new Map<string, number>();
  const entries = lines(text, source);
  const cfg: Partial<ZooCfg> & { servers: ServerEntry[]; warnings: string[] } = { source, servers: [], warnings };
  let autopurgeRetain: number | undefined;
  let autopurgeHours: number | undefined;
  let adminEnabled = true;
  let adminHost = '127.0.0.1';
  let adminPort = DEFAULT_ADMIN_PORT;
  let quorumListenOnAllIPs = false;
  let electionPortsIgnored = false;

  for (const { key, value, line } of entries) {
    const at = where(source, line);
    const prev = seen.get(key);
    if (prev !== undefined) throw new ConfigError(`${at}: ${key} is set twice (also on line ${prev}); keep one`, key, line);
    seen.set(key, line);
    const fail = (what: string, instead: string): never => {
      throw new ConfigError(`${at}: ${key}='${value}' ${what}; write e.g. ${instead}`, key, line);
    };
    const int = (min: number, max: number, unit: string, example: string): number => {
      if (!/^[+]?\d+$/.test(value)) fail(`is not a whole number${unit ? ` of ${unit}` : ''}`, `${key}=${example}`);
      const n = Number(value);
      if (n < min || n > max) fail(`is out of range (${min}–${max})`, `${key}=${example}`);
      return n;
    };
    const bool = (example: 'yes' | 'no' | 'true' | 'false'): boolean => {
      const v = value.toLowerCase();
      if (v === 'yes' || v === 'true') return true;
      if (v === 'no' || v === 'false') return false;
      return fail('is not yes/no (or true/false)', `${key}=${example}`);
    };
    const path = (): string => {
      if (value === '') fail('is empty', `${key}=/var/lib/conclave`);
      return isAbsolute(value) ? value : resolve(baseDir, value);
    };

    const sm = /^server\.(.*)$/.exec(key);
    if (sm) {
      if (!/^\d+$/.test(sm[1]!) || Number(sm[1]) < 1 || Number(sm[1]) > 0xffffffff) {
        throw new ConfigError(`${at}: '${key}' has no valid member id; write server.<id ≥ 1>=host:2888:3888, e.g. server.1=10.0.0.1:2888:3888`, key, line);
      }
      const s = parseServer(Number(sm[1]), value, source, line);
      const dup = cfg.servers.find((o) => o.address === s.address);
      if (dup) throw new ConfigError(`${at}: ${key} uses ${s.address}, like server.${dup.id} on line ${dup.line}; give each member its own host:port`, key, line);
      if (s.electionPort !== undefined) electionPortsIgnored = true;
      cfg.servers.push(s);
      continue;
    }
    switch (key) {
      case 'tickTime': cfg.tickTime = int(1, 3_600_000, 'milliseconds', '2000'); break;
      case 'initLimit': cfg.initLimit = int(1, 1_000_000, 'ticks', '10'); break;
      case 'syncLimit': cfg.syncLimit = int(1, 1_000_000, 'ticks', '5'); break;
      case 'dataDir': cfg.dataDir = path(); break;
      case 'dataLogDir': cfg.dataLogDir = path(); break;
      case 'clientPort': cfg.clientPort = int(0, 65535, '', '2181'); break;
      case 'clientPortAddress':
        if (value === '' || /\s/.test(value)) fail('is not a host name or address', `${key}=127.0.0.1`);
        cfg.clientPortAddress = value.replace(/^\[(.*)\]$/, '$1');
        break;
      case 'myid': cfg.myid = int(1, 0xffffffff, '', '1'); break;
      case 'snapCount': cfg.snapCount = int(2, 1_000_000_000, 'txns', '100000'); break;
      case 'autopurge.snapRetainCount': {
        const n = int(1, 1_000_000, 'snapshots', '3');
        if (n < 3) warnings.push(`${at}: autopurge.snapRetainCount=${n} is below the minimum 3; using 3 (as ZooKeeper)`);
        autopurgeRetain = Math.max(3, n);
        break;
      }
      case 'autopurge.purgeInterval': {
        if (!/^\d+(\.\d+)?$/.test(value)) fail('is not a number of hours (0 = never purge on a timer)', `${key}=24`);
        autopurgeHours = Number(value);
        if (autopurgeHours > 24 * 365) fail('is more than a year', `${key}=24`);
        break;
      }
      case 'maxClientCnxns': cfg.maxClientCnxns = int(0, 1_000_000, 'sessions per client address (0 = unlimited)', '60'); break;
      case 'jute.maxbuffer': cfg.maxDataBytes = int(1, 1 << 30, 'bytes', '1048575'); break;
      case '4lw.commands.whitelist': {
        const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
        if (names.length === 0) fail('is empty', `${key}=srvr,mntr,ruok (or ${key}=*)`);
        if (names.includes('*')) {
          cfg.whitelist = '*';
        } else {
          const unknown = names.filter((n) => !(ADMIN_COMMANDS as readonly string[]).includes(n));
          if (unknown.length > 0) fail(`names unknown command(s) ${unknown.join(', ')} (known: ${ADMIN_COMMANDS.join(' ')})`, `${key}=srvr,mntr,ruok`);
          cfg.whitelist = names as AdminCommand[];
        }
        break;
      }
      case 'minSessionTimeout': cfg.minSessionTimeout = int(1, 86_400_000, 'milliseconds', '4000'); break;
      case 'maxSessionTimeout': cfg.maxSessionTimeout = int(1, 86_400_000, 'milliseconds', '40000'); break;
      case 'forceSync': cfg.forceSync = bool('yes'); break;
      case 'secret':
        if (value === '') fail('is empty', `${key}=<at least 16 random characters, the same on every member, e.g. from 'openssl rand -hex 16'>`);
        if (Buffer.byteLength(value, 'utf8') < 16) warnings.push(`${at}: secret is shorter than 16 bytes; use at least 16 random characters (openssl rand -hex 16)`);
        cfg.secret = value;
        break;
      case 'secretFile': cfg.secretFile = path(); break;
      case 'superDigest':
      case 'DigestAuthenticationProvider.superDigest':
      case 'zookeeper.DigestAuthenticationProvider.superDigest':
        if (!/^[^:\s]+:[A-Za-z0-9+/]{27}=$/.test(value)) fail("is not 'user:BASE64(SHA1(user:password))'", `superDigest=super:${'x'.repeat(27)}= (from: node -e "console.log(require('conclave').digest('super','pw'))")`);
        cfg.superDigest = value;
        break;
      case 'enforce.auth.enabled':
      case 'enforceAuthEnabled':
        cfg.enforceAuthEnabled = bool('true');
        break;
      case 'enforce.auth.schemes':
      case 'enforceAuthSchemes': {
        const schemes = value.split(',').map((x) => x.trim()).filter((x) => x !== '');
        if (schemes.length === 0) fail('is empty', `${key}=digest`);
        const unknown = schemes.filter((x) => x !== 'digest');
        if (unknown.length > 0) fail(`names scheme(s) remote sessions cannot authenticate with (${unknown.join(', ')}; conclave has digest)`, `${key}=digest`);
        cfg.enforceAuthSchemes = schemes;
        break;
      }
      case 'admin.serverPort': adminPort = int(0, 65535, '', '8080 (0 = any free port)'); break;
      case 'admin.serverAddress':
        if (value === '' || /\s/.test(value)) fail('is not a host name or address', `${key}=127.0.0.1`);
        adminHost = value.replace(/^\[(.*)\]$/, '$1');
        break;
      case 'admin.enableServer': adminEnabled = bool('true'); break;
      case 'quorumListenOnAllIPs': quorumListenOnAllIPs = bool('false'); break;
      case 'logLevel':
        if (!(LOG_LEVELS as readonly string[]).includes(value)) fail(`is not one of ${LOG_LEVELS.join(', ')}`, `${key}=info`);
        cfg.logLevel = value as LogLevel;
        break;
      case 'logFile': cfg.logFile = path(); break;
      default: {
        const reason = IGNORED[key] ?? IGNORED_PREFIXES.find(([p]) => key.startsWith(p))?.[1];
        if (reason !== undefined) warnings.push(`${at}: ${key} is a ZooKeeper setting that conclave ignores (${reason})`);
        else warnings.push(`${at}: unknown key '${key}' ignored (check the spelling; see the README's zoo.cfg reference)`);
      }
    }
  }

  if (cfg.dataDir === undefined) {
    throw new ConfigError(`${source}: dataDir is missing; add a line like dataDir=/var/lib/conclave (the member's data directory)`, 'dataDir');
  }
  if (cfg.minSessionTimeout !== undefined && cfg.maxSessionTimeout !== undefined && cfg.minSessionTimeout > cfg.maxSessionTimeout) {
    const line = seen.get('minSessionTimeout');
    throw new ConfigError(`${where(source, line)}: minSessionTimeout=${cfg.minSessionTimeout} is above maxSessionTimeout=${cfg.maxSessionTimeout}; make minSessionTimeout ≤ maxSessionTimeout`, 'minSessionTimeout', line);
  }
  cfg.servers.sort((a, b) => a.id - b.id);
  for (let i = 1; i < cfg.servers.length; i++) {
    if (cfg.servers[i]!.id === cfg.servers[i - 1]!.id) {
      const s = cfg.servers[i]!;
      throw new ConfigError(`${where(source, s.line)}: server.${s.id} is set twice; keep one`, `server.${s.id}`, s.line);
    }
  }
  if (cfg.servers.length > 1) {
    const voters = cfg.servers.filter((s) => s.role === 'participant');
    if (voters.length === 0) {
      const s = cfg.servers[0]!;
      throw new ConfigError(`${where(source, s.line)}: every server.N line is an observer; at least one must be a participant (drop ':observer' from some)`, `server.${s.id}`, s.line);
    }
    if (voters.length % 2 === 0) warnings.push(`${source}: ${voters.length} voting members tolerate no more failures than ${voters.length - 1}; prefer an odd number`);
    for (const s of cfg.servers) {
      if (s.port === 0) throw new ConfigError(`${where(source, s.line)}: server.${s.id} has port 0, but the other members must know its port; write a fixed port, e.g. server.${s.id}=${s.host}:2888:3888`, `server.${s.id}`, s.line);
    }
  }
  if (electionPortsIgnored) warnings.push(`${source}: the election ports in server.N lines (host:port:ELECTIONPORT) are not used: conclave carries election and broadcast on one connection per pair of members`);
  if (cfg.myid !== undefined && cfg.servers.length > 0 && !cfg.servers.some((s) => s.id === cfg.myid)) {
    const line = seen.get('myid');
    throw new ConfigError(`${where(source, line)}: myid=${cfg.myid} is not among the server lines (${cfg.servers.map((s) => `server.${s.id}`).join(', ')}); fix myid or add server.${cfg.myid}=host:2888:3888`, 'myid', line);
  }
  if (cfg.enforceAuthEnabled && cfg.enforceAuthSchemes === undefined) {
    const line = seen.get('enforce.auth.enabled') ?? seen.get('enforceAuthEnabled');
    throw new ConfigError(`${where(source, line)}: enforce.auth.enabled=true needs the schemes to enforce; add enforce.auth.schemes=digest`, 'enforce.auth.schemes', line);
  }
  if (cfg.enforceAuthSchemes !== undefined && !cfg.enforceAuthEnabled) {
    warnings.push(`${source}: enforce.auth.schemes has no effect without enforce.auth.enabled=true`);
  }
  return {
    ...cfg,
    dataDir: cfg.dataDir,
    servers: cfg.servers,
    autopurge: { snapRetainCount: autopurgeRetain ?? 3, purgeIntervalHours: autopurgeHours ?? 0 },
    admin: { enabled: adminEnabled, host: adminHost, port: adminPort },
    quorumListenOnAllIPs,
    warnings,
  } as ZooCfg;
}

/** The MemberConfig a zoo.cfg describes, for member `id` (no transport, storage = the data directory). */
export function toMemberConfig(cfg: ZooCfg, id: number): MemberConfig {
  const ensemble: NonNullable<MemberConfig['ensemble']> = {};
  for (const s of cfg.servers) ensemble[s.id] = { address: s.address, role: s.role };
  const out: MemberConfig = {
    id,
    storage: cfg.dataLogDir ?? cfg.dataDir,
    autopurge: { snapRetainCount: cfg.autopurge.snapRetainCount, purgeIntervalMs: Math.round(cfg.autopurge.purgeIntervalHours * 3_600_000) },
  };
  if (cfg.servers.length > 0) out.ensemble = ensemble;
  if (cfg.tickTime !== undefined) out.tickMs = cfg.tickTime;
  if (cfg.initLimit !== undefined) out.initLimit = cfg.initLimit;
  if (cfg.syncLimit !== undefined) out.syncLimit = cfg.syncLimit;
  if (cfg.snapCount !== undefined) out.snapCount = cfg.snapCount;
  if (cfg.forceSync !== undefined) out.forceSync = cfg.forceSync;
  if (cfg.maxDataBytes !== undefined) out.maxDataBytes = cfg.maxDataBytes;
  // ZooKeeper's defaults are 2 and 20 ticks.
  if (cfg.minSessionTimeout !== undefined) out.minSessionTimeoutMs = cfg.minSessionTimeout;
  else if (cfg.tickTime !== undefined) out.minSessionTimeoutMs = 2 * cfg.tickTime;
  if (cfg.maxSessionTimeout !== undefined) out.maxSessionTimeoutMs = cfg.maxSessionTimeout;
  else if (cfg.tickTime !== undefined) out.maxSessionTimeoutMs = Math.max(20 * cfg.tickTime, out.minSessionTimeoutMs ?? 0);
  if (cfg.maxClientCnxns !== undefined) out.maxSessionsPerOrigin = cfg.maxClientCnxns === 0 ? Number.MAX_SAFE_INTEGER : cfg.maxClientCnxns;
  if (cfg.whitelist !== undefined) out.adminCommands = cfg.whitelist === '*' ? '*' : [...cfg.whitelist];
  if (cfg.superDigest !== undefined) out.superDigest = cfg.superDigest;
  if (cfg.enforceAuthEnabled && cfg.enforceAuthSchemes !== undefined) out.enforceAuthSchemes = [...cfg.enforceAuthSchemes];
  if (cfg.secret !== undefined) out.secret = cfg.secret;
  if (cfg.logLevel !== undefined) out.logLevel = cfg.logLevel;
  return out;
}

/** Everything `conclave member` needs to run one member from a zoo.cfg. */
export interface MemberProcessConfig {
  /** Absolute path of the config file. */
  path: string;
  cfg: ZooCfg;
  /** myid, and where it came from ('myid key', the myid file's path, or 'standalone default'). */
  id: number;
  idSource: string;
  /** The MemberConfig (storage = the LevelDB directory; no transport: the caller builds it from `listen`/`secret`). */
  member: MemberConfig;
  /**
   * This member's TCP listen address: its server.N address (members and remote sessions), or for a
   * standalone member without server lines, clientPortAddress:clientPort (remote sessions only).
   */
  listen: string | undefined;
  /** An extra listener for remote sessions only: clientPort (or server.N's `;port`) when it differs from `listen`. */
  clientListen: string | undefined;
  /** The ensemble secret: `secret`, else `secretFile`'s contents, else $CONCLAVE_SECRET. */
  secret: string | undefined;
  dataDir: string;
  /** Where the LevelDB txn log and snapshots live (dataLogDir, else dataDir). */
  storageDir: string;
  pidFile: string;
  /** The admin endpoint's address once running (written by the member process; ephemeral ports). */
  runFile: string;
  logFile: string;
  admin: { enabled: boolean; host: string; port: number };
  warnings: string[];
}

/**
 * Reads a zoo.cfg file and resolves what it points to: `myid` (key, or dataDir/myid, or 1 for a
 * standalone member), the secret (`secret`, `secretFile`, or $CONCLAVE_SECRET). Throws ConfigError.
 */
export function loadConfig(path: string, env: Record<string, string | undefined> = process.env): MemberProcessConfig {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`${abs}: no such file; pass the path of your zoo.cfg with --config`);
    if (code === 'EISDIR') throw new ConfigError(`${abs} is a directory; pass the zoo.cfg file inside it with --config`);
    throw new ConfigError(`${abs}: cannot read it (${code ?? (e as Error).message}); check its permissions`);
  }
  const cfg = parseZooCfg(text, { source: abs, baseDir: dirname(abs) });

  let id: number;
  let idSource: string;
  if (cfg.myid !== undefined) {
    id = cfg.myid;
    idSource = `myid key in ${abs}`;
  } else {
    const myidFile = join(cfg.dataDir, 'myid');
    let raw: string | undefined;
    try {
      raw = readFileSync(myidFile, 'utf8');
    } catch (e) {
      // A dataDir that does not exist (or is not a directory) is reported when the member starts.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ConfigError(`${myidFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check its permissions`);
    }
    if (raw !== undefined) {
      const t = raw.trim();
      if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 0xffffffff) throw new ConfigError(`${myidFile}: '${t.slice(0, 20)}' is not a member id; write the member's id (an integer ≥ 1) alone in the file, e.g. echo 1 > ${myidFile}`, 'myid');
      id = Number(t);
      idSource = myidFile;
    } else if (cfg.servers.length <= 1) {
      id = cfg.servers[0]?.id ?? 1;
      idSource = 'standalone default';
    } else {
      throw new ConfigError(`${abs}: no myid for this member: write its id into ${myidFile} (echo 1 > ${myidFile}) or add myid=<id> to the config`, 'myid');
    }
  }
  const self = cfg.servers.find((s) => s.id === id);
  if (cfg.servers.length > 0 && !self) {
    throw new ConfigError(`myid ${id} (from ${idSource}) is not in the ensemble of ${abs} (${cfg.servers.map((s) => `server.${s.id}`).join(', ')}); fix myid or add a server.${id}=host:2888:3888 line`, 'myid');
  }

  let secret = cfg.secret;
  if (secret === undefined && cfg.secretFile !== undefined) {
    try {
      secret = readFileSync(cfg.secretFile, 'utf8').trim();
    } catch (e) {
      throw new ConfigError(`secretFile ${cfg.secretFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); create it with e.g. openssl rand -hex 16 > ${cfg.secretFile}`, 'secretFile');
    }
    if (secret === '') throw new ConfigError(`secretFile ${cfg.secretFile} is empty; put the ensemble secret in it (openssl rand -hex 16 > ${cfg.secretFile})`, 'secretFile');
  }
  if (secret === undefined && env.CONCLAVE_SECRET) secret = env.CONCLAVE_SECRET;

  const member = toMemberConfig(cfg, id);
  if (secret !== undefined) member.secret = secret;
  const clientAddress = self?.clientAddress ?? (cfg.clientPort !== undefined ? hostPort(cfg.clientPortAddress ?? '0.0.0.0', cfg.clientPort) : undefined);
  let listen: string | undefined;
  let clientListen: string | undefined;
  if (self) {
    listen = cfg.quorumListenOnAllIPs ? hostPort(self.host.includes(':') ? '::' : '0.0.0.0', self.port) : self.address;
    if (clientAddress !== undefined && clientAddress !== listen) clientListen = clientAddress;
  } else if (clientAddress !== undefined) {
    listen = clientAddress;
    member.ensemble = { [id]: clientAddress };
  }
  const storageDir = cfg.dataLogDir ?? cfg.dataDir;
  return {
    path: abs,
    cfg,
    id,
    idSource,
    member,
    listen,
    clientListen,
    secret,
    dataDir: cfg.dataDir,
    storageDir,
    pidFile: join(cfg.dataDir, 'conclave_member.pid'),
    runFile: join(cfg.dataDir, 'conclave_member.json'),
    logFile: cfg.logFile ?? join(cfg.dataDir, 'conclave_member.out'),
    admin: cfg.admin,
    warnings: cfg.warnings,
  };
}
