import { Packr } from 'msgpackr';

/**
 * The one msgpackr configuration used for storage records and wire frames: plain maps (no
 * record extension, so every frame decodes on its own), 64-bit integers as bigint (zxids,
 * session ids), byte arrays as binary.
 */
// copyBuffers: decoded byte arrays own their memory (no views pinning a whole frame).
const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true, moreTypes: false, copyBuffers: true } as ConstructorParameters<typeof Packr>[0]);

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/** CRC-32 (IEEE) for record checksums. */
const TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = -1;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
