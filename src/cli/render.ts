import type { ACL } from '../core/acl.js';
import type { Stat } from '../core/stat.js';
import type { SnapshotNode } from '../core/tree.js';
import { NodeKind, type Txn, type TxnOp } from '../core/txn.js';
import { formatZxid } from '../core/zxid.js';

/** Readable renderings shared by the CLI commands (dump tools, and others to come). */

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function hex(n: bigint | number): string {
  return '0x' + n.toString(16);
}

export function isoTime(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms);
}

/** A short preview of znode data: quoted text when it is printable UTF-8, hex otherwise. */
export function dataPreview(data: Uint8Array, max = 48): string {
  if (data.length === 0) return '""';
  let text: string | undefined;
  try {
    text = utf8.decode(data);
  } catch {
    text = undefined;
  }
  // eslint-disable-next-line no-control-regex
  if (text !== undefined && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) {
    const cut = text.length > max ? text.slice(0, max) : text;
    return JSON.stringify(cut) + (cut.length < text.length ? `…(${data.length} B)` : '');
  }
  const bytes = data.subarray(0, Math.ceil(max / 2));
  return '0x' + Buffer.from(bytes).toString('hex') + (bytes.length < data.length ? `…(${data.length} B)` : '');
}

function perms(p: number): string {
  return ['c', 'd', 'r', 'w', 'a'].filter((_, i) => p & [4, 8, 1, 2, 16][i]!).join('') || '-';
}

export function aclText(acl: readonly ACL[]): string {
  return acl.map((a) => `${a.scheme}:${a.id}:${perms(a.perms)}`).join(',');
}

const KIND = ['persistent', 'ephemeral', 'container', 'ttl'] as const;

function opText(op: TxnOp): string {
  switch (op.type) {
    case 'create': {
      const kind = KIND[op.kind] ?? `kind${op.kind}`;
      const owner = op.kind === NodeKind.Ephemeral ? ` owner=${hex(op.ephemeralOwner)}` : '';
      const ttl = op.kind === NodeKind.Ttl ? ` ttl=${op.ttl}ms` : '';
      return `create ${op.path} data=${dataPreview(op.data)} ${kind}${owner}${ttl} acl=${aclText(op.acl)} parentCversion=${op.pcv} parentSeq=${op.pseq}`;
    }
    case 'delete':
      return `delete ${op.path} parentCversion=${op.pcv}`;
    case 'setData':
      return `setData ${op.path} data=${dataPreview(op.data)} version=${op.version}`;
    case 'setACL':
      return `setACL ${op.path} acl=${aclText(op.acl)} aversion=${op.aversion}`;
    case 'check':
      return `check ${op.path}`;
    case 'multi':
      return `multi [${op.ops.map((o) => opText(o)).join('; ')}]`;
    case 'error':
      return `error ${op.code}${op.path !== undefined ? ` ${op.path}` : ''}${op.failedOp !== undefined ? ` failedOp=${op.failedOp}/${op.opCount}` : ''}`;
    case 'createSession':
      return `createSession timeout=${op.timeoutMs}ms origin=${op.origin}`;
    case 'closeSession':
      return `closeSession reason=${op.reason}${op.deletes.length > 0 ? ` deletes=[${op.deletes.map((d) => d.path).join(',')}]` : ''}`;
    default:
      return `unknown ${JSON.stringify((op as { type?: unknown }).type)}`;
  }
}

/** One txn on one line: zxid, time, session, cxid, then the type, path and details. */
export function txnLine(t: Txn): string {
  return `${formatZxid(t.zxid)}  ${isoTime(t.time)}  session=${hex(t.sessionId)}  cxid=${t.cxid}  ${opText(t.op)}`;
}

export function statText(s: Stat): string {
  return `czxid=${hex(s.czxid)} mzxid=${hex(s.mzxid)} pzxid=${hex(s.pzxid)} ctime=${isoTime(s.ctime)} mtime=${isoTime(s.mtime)} `
    + `version=${s.version} cversion=${s.cversion} aversion=${s.aversion} ephemeralOwner=${hex(s.ephemeralOwner)} `
    + `dataLength=${s.dataLength} numChildren=${s.numChildren}`;
}

/** One snapshot node on one line: path, stat, kind/seq, acl and a data preview. */
export function nodeLine(n: SnapshotNode): string {
  const kind = KIND[n.kind] ?? `kind${n.kind}`;
  return `${n.path}  ${statText(n.stat)} ${kind}${n.kind === NodeKind.Ttl ? ` ttl=${n.ttl}ms` : ''} seq=${n.seq} acl=${aclText(n.acl)} data=${dataPreview(n.data)}`;
}

/** Writes to stdout; a closed pipe (`| head`) ends the program quietly. */
export function out(line: string): void {
  process.stdout.write(line + '\n');
}
