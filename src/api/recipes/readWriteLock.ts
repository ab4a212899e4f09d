import { KeeperError } from '../../core/errors.js';
import type { Session } from '../session.js';
import { LockInternals, predecessorPredicate, type LockPredicate } from './lockInternals.js';
import { ReentrantNodeLock, type InterProcessLock } from './mutex.js';
import { checkPath, type WaitOptions } from './util.js';

export const READ_LOCK_NAME = '__READ__';
export const WRITE_LOCK_NAME = '__WRIT__';

const isRead = (n: string): boolean => n.includes(READ_LOCK_NAME);
const isWrite = (n: string): boolean => n.includes(WRITE_LOCK_NAME);
const isEither = (n: string): boolean => isRead(n) || isWrite(n);

class WriteLock extends ReentrantNodeLock {
  constructor(session: Session, path: string, private readonly rw: ReadWriteLock) {
    super(session, new LockInternals(session, path, WRITE_LOCK_NAME, isEither, predecessorPredicate, `ReadWriteLock ${path} (write)`), true);
  }

  override acquire(options: WaitOptions = {}): Promise<boolean> {
    if (!this.isAcquiredInThisProcess() && this.rw.readLock().isAcquiredInThisProcess()) {
      // Our own read node precedes the write node we would create: waiting would never end.
      return Promise.reject(new KeeperError('BADARGUMENTS', this.internals.basePath, 'ReadWriteLock: cannot upgrade a held read lock to a write lock (release the read lock first; downgrading is allowed)'));
    }
    return super.acquire(options);
  }
}

/**
 * A distributed read-write lock (Curator's InterProcessReadWriteLock) with `__READ__` and
 * `__WRIT__` nodes in one sequence. Writers are exclusive and wait on their immediate
 * predecessor; readers run concurrently and wait only on the **nearest preceding writer** — not
 * on the first node, so a release wakes only the waiters it actually unblocks. Both locks are
 * reentrant; the holder of the write lock may also take the read lock (downgrade), not the
 * other way round. Fencing tokens and `lost` events as for Mutex.
 */
export class ReadWriteLock {
  readonly path: string;
  private readonly writer: WriteLock;
  private readonly reader: ReentrantNodeLock;

  constructor(session: Session, path: string) {
    checkPath(path, 'ReadWriteLock');
    this.path = path;
    this.writer = new WriteLock(session, path, this);
    const readPredicate: LockPredicate = (sorted, i) => {
      for (let j = i - 1; j >= 0; j--) {
        const n = sorted[j]!;
        if (!isWrite(n)) continue;
        // Our own held write lock does not block our reads (downgrade); it is first, so nothing earlier can.
        if (this.writer.node?.name === n) return { acquired: true };
        return { acquired: false, watch: n };
      }
      return { acquired: true };
    };
    this.reader = new ReentrantNodeLock(session, new LockInternals(session, path, READ_LOCK_NAME, isEither, readPredicate, `ReadWriteLock ${path} (read)`), true);
  }

  /** The shared (read) lock. */
  readLock(): InterProcessLock & ReentrantNodeLock {
    return this.reader;
  }

  /** The exclusive (write) lock. */
  writeLock(): InterProcessLock & ReentrantNodeLock {
    return this.writer;
  }
}
