/**
 * zxid: a 64-bit transaction id; the high 32 bits are the leader's epoch, the low 32 bits a
 * counter that restarts each epoch. Kept as bigint so that it is exact and matches `Stat`.
 */
export type Zxid = bigint;

const MASK32 = 0xffffffffn;

export function makeZxid(epoch: number, counter: number): Zxid {
  return (BigInt(epoch) << 32n) | BigInt(counter);
}

export function epochOf(zxid: Zxid): number {
  return Number(zxid >> 32n);
}

export function counterOf(zxid: Zxid): number {
  return Number(zxid & MASK32);
}

/** `0x<epoch>_<counter>` style rendering used in logs and tools. */
export function formatZxid(zxid: Zxid): string {
  return '0x' + zxid.toString(16);
}

/** Parses decimal or 0x-hex zxids as typed on a command line. */
export function parseZxid(s: string): Zxid {
  const t = s.trim();
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(t)) throw new Error(`not a zxid: ${s}`);
  return BigInt(t);
}
