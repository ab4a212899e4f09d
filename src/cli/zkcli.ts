import type { Session } from '../api/session.js';
import type { SessionOptions, SessionState, WatchEvent } from '../api/types.js';
import { parsePerms, permsToString, type ACL } from '../core/acl.js';
import { CreateMode } from '../core/createMode.js';
import { KeeperError } from '../core/errors.js';
import type { Stat } from '../core/stat.js';

/**
 * The zkCli-like shell (`conclave cli`): ZooKeeper's commands, options and output formats over a
 * `Session` — a remote one from `connect()`, or any other (tests use a member's local session).
 * The interactive loop and one-shot mode both go through `ZkShell.execute(line)`.
 */

/** Opens a session on `servers` ('host:port[,host:port]'). */
export type SessionOpener = (servers: string, options: SessionOptions) => Promise<Session>;

export interface ShellOutput {
  /** A command's output (one call per line). */
  out(line: string): void;
  /** A command's error message. */
  err(line: string): void;
  /** Something that happened between commands (WATCHER:: events, session state changes). */
  event(lines: string[]): void;
}

export interface ZkShellOptions {
  servers: string;
  open: SessionOpener;
  output: ShellOutput;
  sessionOptions?: SessionOptions;
  /** Print WATCHER:: events (zkCli's printwatches; default on). */
  printWatches?: boolean;
}

/** Splits a command line like zkCli: whitespace-separated, "double" or 'single' quotes group, \ escapes in double quotes. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) throw new UsageError(`unterminated ${quote} quote`);
  if (has) out.push(cur);
  return out;
}

/** A mistake in how a command was typed (printed with the command's usage). */
export class UsageError extends Error {}

/** ZooKeeper ACL syntax: `scheme:id:perms[,scheme:id:perms…]`, e.g. `world:anyone:cdrwa,digest:bob:HASH=:r`. */
export function parseAclSpec(spec: string): ACL[] {
  const acl: ACL[] = [];
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const first = part.indexOf(':');
    const last = part.lastIndexOf(':');
    if (first < 0 || first === last) throw new UsageError(`'${part}' does not have the form scheme:id:perms (e.g. world:anyone:cdrwa, digest:user:hash:r, ip:10.0.0.0/8:r, auth::cdrwa)`);
    const scheme = part.slice(0, first);
    const id = part.slice(first + 1, last);
    let perms: number;
    try {
      perms = parsePerms(part.slice(last + 1));
    } catch {
      throw new UsageError(`'${part.slice(last + 1)}' in '${part}' is not a set of permissions (letters of cdrwa)`);
    }
    acl.push({ scheme, id, perms });
  }
  if (acl.length === 0) throw new UsageError('the ACL is empty');
  return acl;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Java's Date.toString(), in UTC: `Fri Nov 21 12:34:56 UTC 2025` (what zkCli prints for ctime/mtime). */
export function javaDate(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC ${d.getUTCFullYear()}`;
}

/** A Stat as zkCli prints it. */
export function formatStat(s: Stat): string[] {
  const hex = (v: bigint): string => '0x' + v.toString(16);
  return [
    `cZxid = ${hex(s.czxid)}`,
    `ctime = ${javaDate(s.ctime)}`,
    `mZxid = ${hex(s.mzxid)}`,
    `mtime = ${javaDate(s.mtime)}`,
    `pZxid = ${hex(s.pzxid)}`,
    `cversion = ${s.cversion}`,
    `dataVersion = ${s.version}`,
    `aclVersion = ${s.aversion}`,
    `ephemeralOwner = ${hex(s.ephemeralOwner)}`,
    `dataLength = ${s.dataLength}`,
    `numChildren = ${s.numChildren}`,
  ];
}

const EVENT_STATE: Record<SessionState, string> = {
  CONNECTED: 'SyncConnected', RECONNECTED: 'SyncConnected', SUSPENDED: 'Disconnected', LOST: 'Expired', CLOSED: 'Closed', READ_ONLY: 'ConnectedReadOnly',
};
const PROMPT_STATE: Record<SessionState, string> = {
  CONNECTED: 'CONNECTED', RECONNECTED: 'CONNECTED', SUSPENDED: 'CONNECTING', LOST: 'CLOSED', CLOSED: 'CLOSED', READ_ONLY: 'CONNECTEDREADONLY',
};

/** `WatchedEvent state:SyncConnected type:NodeDataChanged path:/a`, as zkCli prints it. */
export function watchedEvent(state: string, type: string, path: string | null): string[] {
  return ['', 'WATCHER::', '', `WatchedEvent state:${state} type:${type} path:${path ?? 'null'}`];
}

/** zkCli's messages for KeeperErrors. */
export function errorText(e: unknown, path?: string): string {
  if (e instanceof UsageError) return e.message;
  if (!(e instanceof KeeperError)) return (e as Error).message ?? String(e);
  const p = e.path ?? path ?? '';
  switch (e.code) {
    case 'NONODE': return `Node does not exist: ${p}`;
    case 'NODEEXISTS': return `Node already exists: ${p}`;
    case 'NOTEMPTY': return `Node not empty: ${p}`;
    case 'BADVERSION': return `version No is not valid : ${p}`;
    case 'NOCHILDRENFOREPHEMERALS': return `Ephemerals cannot have children: ${p}`;
    case 'NOAUTH': return `Insufficient permission : ${p}`;
    case 'INVALIDACL': return `Acl is not valid : ${p}`;
    case 'BADARGUMENTS': return `Arguments are not valid : ${p}${e.message.includes(':') ? ` (${e.message.slice(e.message.indexOf(':') + 2)})` : ''}`;
    case 'AUTHFAILED': return `Authentication is not valid : ${e.message.slice(e.message.indexOf(':') + 2)}`;
    default: return `KeeperErrorCode = ${e.code}${p ? ` for ${p}` : ''}: ${e.message.slice(e.message.indexOf(':') + 2)}`;
  }
}

interface CommandSpec {
  usage: string;
  help: string;
  /** Flags without a value, e.g. 'swR'. */
  flags?: string;
  /** Options with a value, e.g. 'tv'. */
  valued?: string;
  min: number;
  max: number;
  run(sh: ZkShell, a: Parsed): Promise<void>;
}

interface Parsed {
  flags: Set<string>;
  values: Map<string, string>;
  args: string[];
}

function parseArgs(spec: CommandSpec, tokens: string[]): Parsed {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const args: string[] = [];
  const known = (spec.flags ?? '') + (spec.valued ?? '');
  let options = true;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (options && t === '--') {
      options = false;
      continue;
    }
    // Only -x with known letters is an option, so that data such as "-1" or "-abc" stays data.
    if (options && /^-[A-Za-z]+$/.test(t) && [...t.slice(1)].every((c) => known.includes(c))) {
      const letters = t.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const c = letters[j]!;
        if ((spec.valued ?? '').includes(c)) {
          if (j !== letters.length - 1 || i + 1 >= tokens.length) throw new UsageError(`-${c} needs a value`);
          values.set(c, tokens[++i]!);
        } else {
          flags.add(c);
        }
      }
      continue;
    }
    args.push(t);
  }
  if (args.length < spec.min || args.length > spec.max) throw new UsageError(`wrong number of arguments`);
  return { flags, values, args };
}

function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`${name} '${v}' is not a whole number`);
  return Number(v);
}

function text(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
}

function list(items: readonly string[]): string {
  return `[${items.join(', ')}]`;
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

const COMMANDS: Record<string, CommandSpec> = {
  create: {
    usage: 'create [-s] [-e] [-c] [-t ttl] path [data] [acl]', help: 'create a znode (-s sequential, -e ephemeral, -c container, -t TTL in ms)',
    flags: 'sec', valued: 't', min: 1, max: 3,
    async run(sh, a) {
      const [path, data, aclSpec] = a.args as [string, string | undefined, string | undefined];
      const s = a.flags.has('s');
      const e = a.flags.has('e');
      const c = a.flags.has('c');
      const ttl = intOption(a.values.get('t'), '-t ttl');
      if (c && (s || e)) throw new UsageError('-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.');
      if (ttl !== undefined && (e || c)) throw new UsageError('TTLs cannot be used with Ephemeral or Container znodes.');
      const mode = ttl !== undefined ? (s ? CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL : CreateMode.PERSISTENT_WITH_TTL)
        : c ? CreateMode.CONTAINER : e ? (s ? CreateMode.EPHEMERAL_SEQUENTIAL : CreateMode.EPHEMERAL) : s ? CreateMode.PERSISTENT_SEQUENTIAL : CreateMode.PERSISTENT;
      const created = await sh.session().create(path, data ?? '', {
        mode, ...(aclSpec !== undefined ? { acl: parseAclSpec(aclSpec) } : {}), ...(ttl !== undefined ? { ttlMs: ttl } : {}),
      });
      sh.out(`Created ${created}`);
    },
  },
  ls: {
    usage: 'ls [-s] [-w] [-R] path', help: 'list the children (-s with stat, -w set a child watch, -R the whole subtree)',
    flags: 'swR', min: 1, max: 1,
    async run(sh, a) {
      const path = a.args[0]!;
      const session = sh.session();
      if (a.flags.has('R')) {
        // Breadth-first, as zkCli's ZKUtil.listSubTreeBFS; bounded by the tree itself.
        const queue = [path];
        await session.exists(path).then((st) => {
          if (!st) throw new KeeperError('NONODE', path);
        });
        for (let i = 0; i < queue.length; i++) {
          const p = queue[i]!;
          sh.out(p);
          let kids: string[];
          try {
            kids = await session.getChildren(p, a.flags.has('w') ? sh.watcher() : {});
          } catch (e) {
            if (e instanceof KeeperError && e.code === 'NONODE') continue; // deleted meanwhile
            throw e;
          }
          for (const k of kids) queue.push(childPath(p, k));
        }
        return;
      }
      const { children, stat } = await session.getChildrenAndStat(path, a.flags.has('w') ? sh.watcher() : {});
      sh.out(list(children));
      if (a.flags.has('s')) for (const l of formatStat(stat)) sh.out(l);
    },
  },
  get: {
    usage: 'get [-s] [-w] path', help: 'print the data (-s with stat, -w set a data watch)',
    flags: 'sw', min: 1, max: 1,
    async run(sh, a) {
      const { data, stat } = await sh.session().getData(a.args[0]!, a.flags.has('w') ? sh.watcher() : {});
      sh.out(text(data));
      if (a.flags.has('s')) for (const l of formatStat(stat)) sh.out(l);
    },
  },
  set: {
    usage: 'set [-s] [-v version] path data', help: 'set the data (-v only if the version matches, -s print the stat)',
    flags: 's', valued: 'v', min: 2, max: 3,
    async run(sh, a) {
      const [path, data, legacyVersion] = a.args as [string, string, string | undefined];
      const version = intOption(a.values.get('v') ?? legacyVersion, a.values.has('v') ? '-v version' : 'version') ?? -1;
      const stat = await sh.session().setData(path, data, { version });
      if (a.flags.has('s')) for (const l of formatStat(stat)) sh.out(l);
    },
  },
  delete: {
    usage: 'delete [-v version] path', help: 'delete a znode without children (-v only if the version matches)',
    valued: 'v', min: 1, max: 2,
    async run(sh, a) {
      const [path, legacyVersion] = a.args as [string, string | undefined];
      await sh.session().delete(path, { version: intOption(a.values.get('v') ?? legacyVersion, a.values.has('v') ? '-v version' : 'version') ?? -1 });
    },
  },
  deleteall: {
    usage: 'deleteall path [-b batch size]', help: 'delete a znode and everything below it',
    valued: 'b', min: 1, max: 1,
    async run(sh, a) {
      intOption(a.values.get('b'), '-b batch size');
      await sh.session().deleteAll(a.args[0]!);
    },
  },
  stat: {
    usage: 'stat [-w] path', help: 'print the stat (-w set an exists watch)',
    flags: 'w', min: 1, max: 1,
    async run(sh, a) {
      const path = a.args[0]!;
      const stat = await sh.session().exists(path, a.flags.has('w') ? sh.watcher() : {});
      if (!stat) throw new KeeperError('NONODE', path);
      for (const l of formatStat(stat)) sh.out(l);
    },
  },
  getAcl: {
    usage: 'getAcl [-s] path', help: 'print the ACL (-s with stat)',
    flags: 's', min: 1, max: 1,
    async run(sh, a) {
      const { acl, stat } = await sh.session().getACL(a.args[0]!);
      for (const e of acl) {
        sh.out(`'${e.scheme},'${e.id}`);
        sh.out(`: ${permsToString(e.perms)}`);
      }
      if (a.flags.has('s')) for (const l of formatStat(stat)) sh.out(l);
    },
  },
  setAcl: {
    usage: 'setAcl [-s] [-v version] [-R] path acl', help: 'set the ACL, e.g. world:anyone:r,digest:bob:HASH=:cdrwa (-R the whole subtree)',
    flags: 'sR', valued: 'v', min: 2, max: 2,
    async run(sh, a) {
      const [path, spec] = a.args as [string, string];
      const acl = parseAclSpec(spec);
      const session = sh.session();
      const version = intOption(a.values.get('v'), '-v version') ?? -1;
      if (a.flags.has('R')) {
        const queue = [path];
        for (let i = 0; i < queue.length; i++) {
          const p = queue[i]!;
          await session.setACL(p, acl, { version: p === path ? version : -1 });
          for (const k of await session.getChildren(p)) queue.push(childPath(p, k));
        }
        return;
      }
      const stat = await session.setACL(path, acl, { version });
      if (a.flags.has('s')) for (const l of formatStat(stat)) sh.out(l);
    },
  },
  addauth: {
    usage: 'addauth scheme auth', help: 'authenticate the session, e.g. addauth digest bob:secret',
    min: 2, max: 2,
    async run(sh, a) {
      await sh.session().addAuth(a.args[0]!, a.args[1]!);
    },
  },
  sync: {
    usage: 'sync path', help: 'bring the serving member up to date with the leader',
    min: 1, max: 1,
    async run(sh, a) {
      await sh.session().sync(a.args[0]!);
      sh.out('Sync is OK');
    },
  },
  getEphemerals: {
    usage: 'getEphemerals [path]', help: "this session's ephemeral znodes (under a path prefix)",
    min: 0, max: 1,
    async run(sh, a) {
      sh.out(list(await sh.session().getEphemerals(a.args[0] ?? '/')));
    },
  },
  getAllChildrenNumber: {
    usage: 'getAllChildrenNumber path', help: 'the number of all descendants',
    min: 1, max: 1,
    async run(sh, a) {
      sh.out(String(await sh.session().getAllChildrenNumber(a.args[0]!)));
    },
  },
  addWatch: {
    usage: 'addWatch [-m mode] path', help: 'a persistent watch; mode PERSISTENT or PERSISTENT_RECURSIVE (default)',
    valued: 'm', min: 1, max: 1,
    async run(sh, a) {
      const mode = a.values.get('m') ?? 'PERSISTENT_RECURSIVE';
      if (mode !== 'PERSISTENT' && mode !== 'PERSISTENT_RECURSIVE') throw new UsageError(`-m ${mode}: use PERSISTENT or PERSISTENT_RECURSIVE`);
      await sh.session().addWatch(a.args[0]!, sh.watcher().watch, { recursive: mode === 'PERSISTENT_RECURSIVE' });
    },
  },
  removewatches: {
    usage: 'removewatches path [-c|-d|-a] [-l]', help: "remove this session's watches on a path: -c child, -d data, -a any (default); -l only here",
    flags: 'cdal', min: 1, max: 1,
    async run(sh, a) {
      const picked = ['c', 'd', 'a'].filter((f) => a.flags.has(f));
      if (picked.length > 1) throw new UsageError('give one of -c, -d, -a');
      const type = picked[0] === 'c' ? 'child' : picked[0] === 'd' ? 'data' : 'any';
      await sh.session().removeWatches(a.args[0]!, { type, local: a.flags.has('l') });
    },
  },
  config: {
    usage: 'config', help: 'the ensemble configuration (/zookeeper/config)',
    min: 0, max: 0,
    async run(sh) {
      const { data } = await sh.session().getData('/zookeeper/config');
      for (const l of text(data).split('\n')) sh.out(l);
    },
  },
  connect: {
    usage: 'connect [host:port[,host:port]]', help: 'close this session and open one on these servers',
    min: 0, max: 1,
    async run(sh, a) {
      await sh.reconnect(a.args[0]);
    },
  },
  close: {
    usage: 'close', help: 'close the session (its ephemerals go); connect opens a new one',
    min: 0, max: 0,
    async run(sh) {
      await sh.closeSession();
    },
  },
  printwatches: {
    usage: 'printwatches on|off', help: 'print watch events as they arrive (default on)',
    min: 0, max: 1,
    async run(sh, a) {
      if (a.args[0] === undefined) {
        sh.out(`printwatches is ${sh.printWatches ? 'on' : 'off'}`);
        return;
      }
      if (a.args[0] !== 'on' && a.args[0] !== 'off') throw new UsageError(`'${a.args[0]}': use on or off`);
      sh.printWatches = a.args[0] === 'on';
    },
  },
  history: {
    usage: 'history', help: 'the last 10 commands', min: 0, max: 0,
    async run(sh) {
      const h = sh.history;
      for (let i = Math.max(0, h.length - 10); i < h.length; i++) sh.out(`${i} - ${h[i]}`);
    },
  },
  redo: {
    usage: 'redo cmdno', help: 'run command number cmdno of the history again', min: 1, max: 1,
    async run(sh, a) {
      const n = intOption(a.args[0], 'cmdno')!;
      const line = sh.history[n];
      if (line === undefined || /^\s*redo\b/.test(line)) throw new UsageError(`no command number ${n} in the history`);
      await sh.run(line);
    },
  },
  version: {
    usage: 'version', help: 'the CLI version', min: 0, max: 0,
    async run(sh) {
      sh.out('ZooKeeper CLI version: conclave 0.1.0');
    },
  },
  help: {
    usage: 'help', help: 'this list', min: 0, max: 1,
    async run(sh) {
      for (const l of helpText()) sh.out(l);
    },
  },
  quit: {
    usage: 'quit', help: 'close the session and leave', min: 0, max: 0,
    async run(sh) {
      sh.quitting = true;
      await sh.closeSession();
    },
  },
};

/** zkCli's help listing. */
export function helpText(): string[] {
  return ['ZooKeeper -server host:port[,host:port] [-timeout ms] [--auth scheme:auth] cmd args', ...Object.values(COMMANDS).map((c) => `\t${c.usage}`)];
}

/** The names the shell completes. */
export const SHELL_COMMANDS: readonly string[] = Object.keys(COMMANDS);

/** One shell: a session, its state, the history, and the commands. */
export class ZkShell {
  servers: string;
  printWatches: boolean;
  quitting = false;
  readonly history: string[] = [];
  private current: Session | undefined;
  private readonly opener: SessionOpener;
  private readonly output: ShellOutput;
  private readonly sessionOptions: SessionOptions;
  private detach: (() => void) | undefined;

  constructor(options: ZkShellOptions) {
    this.servers = options.servers;
    this.opener = options.open;
    this.output = options.output;
    this.sessionOptions = options.sessionOptions ?? {};
    this.printWatches = options.printWatches ?? true;
  }

  /** Opens the session (zkCli connects before the first prompt). */
  async connect(): Promise<void> {
    const s = await this.opener(this.servers, this.sessionOptions);
    this.attach(s);
  }

  private attach(s: Session): void {
    this.current = s;
    const onState = (st: SessionState): void => {
      if (this.printWatches && !this.quitting) this.output.event(watchedEvent(EVENT_STATE[st], 'None', null));
    };
    s.on('state', onState);
    this.detach = () => s.off('state', onState);
  }

  /** The session, or a usage error if closed (as zkCli's "Not connected"). */
  session(): Session {
    const s = this.current;
    if (!s || s.state === 'CLOSED' || s.state === 'LOST') throw new UsageError(`Not connected (the session is ${s ? s.state : 'not open'}); use connect to open a new one`);
    return s;
  }

  get state(): string {
    return this.current ? PROMPT_STATE[this.current.state] : 'CLOSED';
  }

  prompt(): string {
    return `[zk: ${this.servers}(${this.state}) ${this.history.length}] `;
  }

  /** A one-time watcher that prints zkCli's WATCHER:: lines; `.watch` for persistent watches. */
  watcher(): { watch: (ev: WatchEvent) => void } {
    return {
      watch: (ev: WatchEvent) => {
        if (!this.printWatches) return;
        const state = this.current ? EVENT_STATE[this.current.state] : 'SyncConnected';
        this.output.event(watchedEvent(state, ev.type, ev.path));
      },
    };
  }

  out(line: string): void {
    this.output.out(line);
  }

  async closeSession(): Promise<void> {
    const s = this.current;
    if (!s || s.state === 'CLOSED' || s.state === 'LOST') return;
    this.detach?.();
    await s.close();
  }

  async reconnect(servers?: string): Promise<void> {
    await this.closeSession().catch(() => undefined);
    if (servers !== undefined) this.servers = servers;
    await this.connect();
  }

  /**
   * Runs one command line; records it in the history. Resolves true when it succeeded, false
   * when it failed (the message went to `err`, as zkCli prints it).
   */
  async execute(line: string): Promise<boolean> {
    const trimmed = line.trim();
    if (trimmed === '') return true;
    if (!/^redo\b/.test(trimmed)) this.history.push(trimmed);
    try {
      await this.run(trimmed);
      return true;
    } catch {
      return false;
    }
  }

  /** Runs one line without touching the history; reports and rethrows failures. */
  async run(line: string): Promise<void> {
    let tokens: string[];
    try {
      tokens = tokenize(line);
    } catch (e) {
      this.output.err(errorText(e));
      throw e;
    }
    const name = tokens[0]!;
    const spec = COMMANDS[name] ?? COMMANDS[Object.keys(COMMANDS).find((k) => k.toLowerCase() === name.toLowerCase()) ?? ''];
    if (!spec) {
      for (const l of helpText()) this.output.err(l);
      throw new UsageError(`unknown command ${name}`);
    }
    let parsed: Parsed;
    try {
      parsed = parseArgs(spec, tokens.slice(1));
    } catch (e) {
      this.output.err(`${(e as Error).message}; usage: ${spec.usage}`);
      throw e;
    }
    try {
      await spec.run(this, parsed);
    } catch (e) {
      this.output.err(errorText(e, parsed.args[0]));
      throw e;
    }
  }

  /** Completes a command name, or a path argument from the tree. */
  async complete(line: string): Promise<[string[], string]> {
    const tokens = line.split(/\s+/);
    const last = tokens[tokens.length - 1] ?? '';
    if (tokens.length <= 1) return [SHELL_COMMANDS.filter((c) => c.startsWith(last)).map((c) => c + ' '), last];
    if (!last.startsWith('/') || !this.current || this.current.state === 'CLOSED' || this.current.state === 'LOST') return [[], last];
    const cut = last.lastIndexOf('/');
    const parent = cut === 0 ? '/' : last.slice(0, cut);
    const prefix = last.slice(cut + 1);
    try {
      const kids = await this.current.getChildren(parent);
      return [kids.filter((k) => k.startsWith(prefix)).map((k) => childPath(parent, k)), last];
    } catch {
      return [[], last];
    }
  }
}
