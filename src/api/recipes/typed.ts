import type { Stat } from '../../core/stat.js';
import type { Session } from '../session.js';
import type { CreateOptions, Watcher } from '../types.js';
import { msgpackCodec, type Codec } from './codec.js';

/** A session view whose node data are typed values (encoded by a codec). */
export interface TypedSession<T> {
  readonly session: Session;
  readonly codec: Codec<T>;
  create(path: string, value: T, options?: CreateOptions): Promise<string>;
  /** The decoded value, as `value` and (named like {@link Session.getData}'s field) `data`. */
  getData(path: string, options?: { watch?: Watcher }): Promise<{ value: T; data: T; stat: Stat }>;
  setData(path: string, value: T, options?: { version?: number }): Promise<Stat>;
  /** Read-modify-write with CAS on the version; retried (up to `maxAttempts`, default 100) on BADVERSION. */
  update(path: string, fn: (current: T) => T, options?: { maxAttempts?: number }): Promise<{ value: T; data: T; stat: Stat }>;
  /** Pass-throughs to the session (no data to convert). */
  exists(path: string, options?: { watch?: Watcher }): Promise<Stat | null>;
  delete(path: string, options?: { version?: number }): Promise<void>;
  getChildren(path: string, options?: { watch?: Watcher }): Promise<string[]>;
}

/**
 * Typed values over a session (msgpackr by default; `jsonCodec()` for readable nodes):
 *
 * ```ts
 * const t = typed<{ replicas: number }>(session);
 * await t.create('/cfg', { replicas: 3 });
 * const { value } = await t.getData('/cfg');
 * ```
 */
export function typed<T>(session: Session, codec: Codec<T> = msgpackCodec<T>()): TypedSession<T> {
  return {
    session,
    codec,
    create: (path, value, options) => session.create(path, codec.encode(value), options),
    async getData(path, options) {
      const { data, stat } = await session.getData(path, options);
      const value = codec.decode(data);
      return { value, data: value, stat };
    },
    setData: (path, value, options) => session.setData(path, codec.encode(value), options),
    exists: (path, options) => session.exists(path, options),
    delete: (path, options) => session.delete(path, options),
    getChildren: (path, options) => session.getChildren(path, options),
    async update(path, fn, options = {}) {
      const max = options.maxAttempts ?? 100;
      for (let attempt = 1; ; attempt++) {
        const { data, stat } = await session.getData(path);
        const value = fn(codec.decode(data));
        try {
          return { value, data: value, stat: await session.setData(path, codec.encode(value), { version: stat.version }) };
        } catch (e) {
          if (!(e instanceof Error && (e as { code?: string }).code === 'BADVERSION') || attempt >= max) throw e;
        }
      }
    },
  };
}
