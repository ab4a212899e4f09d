import { Packr } from 'msgpackr';
import { KeeperError } from '../../core/errors.js';

/** Turns typed values into node data and back. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** JSON (UTF-8) — readable with `get` in the CLI. bigint values are refused (JSON has none). */
export function jsonCodec<T>(): Codec<T> {
  return {
    encode(value: T): Uint8Array {
      let s: string | undefined;
      try {
        s = JSON.stringify(value);
      } catch (e) {
        throw new KeeperError('BADARGUMENTS', undefined, `jsonCodec: cannot encode value: ${(e as Error).message}`);
      }
      if (s === undefined) throw new KeeperError('BADARGUMENTS', undefined, 'jsonCodec: value has no JSON form (undefined or a function)');
      return encoder.encode(s);
    },
    decode(bytes: Uint8Array): T {
      try {
        return JSON.parse(decoder.decode(bytes)) as T;
      } catch (e) {
        throw new KeeperError('BADARGUMENTS', undefined, `jsonCodec: node data is not JSON: ${(e as Error).message}`);
      }
    },
  };
}

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true } as ConstructorParameters<typeof Packr>[0]);

/** msgpackr — compact, keeps bigint, Date, Uint8Array, Map and Set. */
export function msgpackCodec<T>(): Codec<T> {
  return {
    encode(value: T): Uint8Array {
      return packr.pack(value);
    },
    decode(bytes: Uint8Array): T {
      try {
        return packr.unpack(bytes) as T;
      } catch (e) {
        throw new KeeperError('BADARGUMENTS', undefined, `msgpackCodec: node data is not msgpack: ${(e as Error).message}`);
      }
    },
  };
}

/** UTF-8 strings. */
export const stringCodec: Codec<string> = {
  encode: (v) => encoder.encode(v),
  decode: (b) => decoder.decode(b),
};

/** Raw bytes (copied). */
export const bytesCodec: Codec<Uint8Array> = {
  encode: (v) => v.slice(),
  decode: (b) => b.slice(),
};
