import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { KeeperError } from './errors.js';

/** One ACL entry: who (`scheme:id`) may do what (`perms`, a bit set of {@link Perms}). */
export interface ACL {
  perms: number;
  scheme: string;
  id: string;
}

/** An authenticated identity of a session, e.g. `{ scheme: 'digest', id: 'bob:hash' }`. */
export interface AuthId {
  scheme: string;
  id: string;
}

/** Permission bits, as ZooKeeper's `ZooDefs.Perms`. */
export const Perms = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const;

/** Common ACL lists, as ZooKeeper's `ZooDefs.Ids`. */
export const Ids: {
  readonly OPEN_ACL_UNSAFE: readonly ACL[];
  readonly CREATOR_ALL_ACL: readonly ACL[];
  readonly READ_ACL_UNSAFE: readonly ACL[];
  readonly ANYONE_ID_UNSAFE: AuthId;
  readonly AUTH_IDS: AuthId;
} = Object.freeze({
  OPEN_ACL_UNSAFE: Object.freeze([Object.freeze({ perms: Perms.ALL, scheme: 'world', id: 'anyone' })]),
  CREATOR_ALL_ACL: Object.freeze([Object.freeze({ perms: Perms.ALL, scheme: 'auth', id: '' })]),
  READ_ACL_UNSAFE: Object.freeze([Object.freeze({ perms: Perms.READ, scheme: 'world', id: 'anyone' })]),
  ANYONE_ID_UNSAFE: Object.freeze({ scheme: 'world', id: 'anyone' }),
  AUTH_IDS: Object.freeze({ scheme: 'auth', id: '' }),
});

/** `user:BASE64(SHA1(user:password))`, the id of the digest scheme. */
export function digest(user: string, password: string): string {
  return `${user}:${createHash('sha1').update(`${user}:${password}`, 'utf8').digest('base64')}`;
}

/** Formats perms as ZooKeeper's `cdrwa` string. */
export function permsToString(perms: number): string {
  let s = '';
  if (perms & Perms.CREATE) s += 'c';
  if (perms & Perms.DELETE) s += 'd';
  if (perms & Perms.READ) s += 'r';
  if (perms & Perms.WRITE) s += 'w';
  if (perms & Perms.ADMIN) s += 'a';
  return s;
}

/** Parses a `cdrwa` string into a perms bit set. */
export function parsePerms(s: string): number {
  let p = 0;
  for (const ch of s) {
    switch (ch) {
      case 'c': p |= Perms.CREATE; break;
      case 'd': p |= Perms.DELETE; break;
      case 'r': p |= Perms.READ; break;
      case 'w': p |= Perms.WRITE; break;
      case 'a': p |= Perms.ADMIN; break;
      default: throw new KeeperError('BADARGUMENTS', undefined, `unknown permission '${ch}' (use c, d, r, w, a)`);
    }
  }
  return p;
}

/** Parses an IPv4/IPv6 address (optionally `addr/bits`) into bytes and a prefix length. */
function parseIpCidr(s: string): { bytes: Uint8Array; bits: number } | undefined {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const kind = isIP(addr);
  if (kind === 0) return undefined;
  const maxBits = kind === 4 ? 32 : 128;
  let bits = maxBits;
  if (slash >= 0) {
    const b = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return undefined;
    bits = Number(b);
    if (bits > maxBits) return undefined;
  }
  return { bytes: ipBytes(addr, kind), bits };
}

function ipBytes(addr: string, kind: number): Uint8Array {
  if (kind === 4) return Uint8Array.from(addr.split('.').map(Number));
  // Expand IPv6 (with optional embedded IPv4 tail) to 16 bytes.
  let head = addr;
  let v4tail: number[] = [];
  const lastColon = addr.lastIndexOf(':');
  if (addr.indexOf('.', lastColon) >= 0) {
    v4tail = addr.slice(lastColon + 1).split('.').map(Number);
    head = addr.slice(0, lastColon + 1) + '0:0';
  }
  const [l, r] = head.split('::') as [string, string | undefined];
  const left = l ? l.split(':') : [];
  const right = r !== undefined && r !== '' ? r.split(':') : [];
  const groups = r === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (v4tail.length === 4) out.set(v4tail, 12);
  return out;
}

/** Normalizes an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) to plain IPv4. */
function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** True when `ip` lies in the `cidr` range (ip scheme matching). */
export function ipMatches(ip: string, cidr: string): boolean {
  const range = parseIpCidr(cidr);
  const addr = parseIpCidr(normalizeIp(ip));
  if (!range || !addr || range.bytes.length !== addr.bytes.length) return false;
  const full = Math.floor(range.bits / 8);
  for (let i = 0; i < full; i++) if (range.bytes[i] !== addr.bytes[i]) return false;
  const rem = range.bits % 8;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((range.bytes[full]! ^ addr.bytes[full]!) & mask) === 0;
}

const DIGEST_ID = /^[^:]+:[A-Za-z0-9+/]{27}=$/;

/** True when the ACL entry is well formed for its scheme. */
function isValidEntry(a: ACL): boolean {
  if (a === null || typeof a !== 'object') return false;
  if (!Number.isInteger(a.perms) || a.perms < 0 || a.perms > Perms.ALL) return false;
  if (typeof a.scheme !== 'string' || typeof a.id !== 'string') return false;
  switch (a.scheme) {
    case 'world': return a.id === 'anyone';
    case 'digest': return DIGEST_ID.test(a.id);
    case 'ip': return parseIpCidr(a.id) !== undefined;
    // Like ZooKeeper, only schemes with an authentication provider are valid ('super' has none).
    default: return false;
  }
}

/**
 * Validates an ACL for create/setACL and expands the `auth` scheme to the session's
 * authenticated identities, as ZooKeeper's `fixupACL` does. Throws INVALIDACL.
 */
const OPEN_ACL: ACL[] = Ids.OPEN_ACL_UNSAFE as ACL[];

export function fixupACL(path: string, acl: readonly ACL[] | undefined, authIds: readonly AuthId[]): ACL[] {
  // Fast path for the common open ACL (shared, never modified downstream).
  if (Array.isArray(acl) && acl.length === 1) {
    const a = acl[0] as ACL | null;
    if (a !== null && typeof a === 'object' && a.perms === 31 && a.scheme === 'world' && a.id === 'anyone') return OPEN_ACL;
  }
  if (!Array.isArray(acl) || acl.length === 0) throw new KeeperError('INVALIDACL', path, 'an ACL must have at least one entry');
  const out: ACL[] = [];
  for (const a of acl) {
    if (a !== null && typeof a === 'object' && a.scheme === 'auth') {
      if (!Number.isInteger(a.perms) || a.perms < 0 || a.perms > Perms.ALL) throw new KeeperError('INVALIDACL', path, 'invalid perms');
      let any = false;
      for (const id of authIds) {
        // Only identities of an authenticating scheme count (ZooKeeper: provider.isAuthenticated());
        // ip does not, and the super marker is not an identity an ACL can name.
        if (id.scheme === 'digest') {
          any = true;
          pushUnique(out, { perms: a.perms, scheme: id.scheme, id: id.id });
        }
      }
      if (!any) throw new KeeperError('INVALIDACL', path, "the 'auth' scheme needs an authenticated identity; call addAuth('digest', 'user:password') first");
      continue;
    }
    // (bigint-safe: this runs in the leader's prep, where a throw other than KeeperError stops the member)
    if (!isValidEntry(a)) throw new KeeperError('INVALIDACL', path, `invalid ACL entry ${JSON.stringify(a, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
    pushUnique(out, { perms: a.perms, scheme: a.scheme, id: a.id });
  }
  return out;
}

function pushUnique(out: ACL[], a: ACL): void {
  for (const b of out) if (b.scheme === a.scheme && b.id === a.id && b.perms === a.perms) return;
  out.push(a);
}

/** True when one of `ids` is the super identity. */
export function isSuper(ids: readonly AuthId[]): boolean {
  for (const id of ids) if (id.scheme === 'super') return true;
  return false;
}

/**
 * ZooKeeper's checkACL: allowed when any entry granting `perm` matches the world or one of the
 * session's identities; the super identity and empty ACLs allow everything. Throws NOAUTH.
 */
export function checkACL(acl: readonly ACL[], perm: number, ids: readonly AuthId[], path: string): void {
  if (acl.length === 0) return;
  for (let i = 0; i < acl.length; i++) {
    const a = acl[i]!;
    if ((a.perms & perm) === 0) continue;
    if (a.scheme === 'world' && a.id === 'anyone') return;
    for (let j = 0; j < ids.length; j++) {
      const id = ids[j]!;
      if (id.scheme === 'super') return;
      if (id.scheme !== a.scheme) continue;
      if (a.scheme === 'ip' ? ipMatches(id.id, a.id) : id.id === a.id) return;
    }
  }
  for (const id of ids) if (id.scheme === 'super') return;
  throw new KeeperError('NOAUTH', path);
}
