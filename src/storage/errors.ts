/**
 * Typed storage errors. Every message is one line that says what is wrong, where, and what the
 * operator can do about it (SPEC §7: start-up problems are reported in one line).
 */
export type StorageErrorCode =
  /** Another member (in this or another process) holds the directory's lock. */
  | 'LOCKED'
  /** A record or snapshot failed its checksum or could not be decoded. */
  | 'CORRUPT'
  /** The data on disk is damaged in a way that makes recovery unsafe; the member must not start. */
  | 'UNSAFE'
  /** The directory is not a conclave data directory, or was written by a newer format. */
  | 'FORMAT'
  /** The directory does not exist (read-only opening). */
  | 'NOT_FOUND'
  /** Operating-system level failure (permissions, disk full, …). */
  | 'IO'
  /** The storage is not open, or was closed. */
  | 'CLOSED'
  /** A caller broke the contract (append out of order, bad argument). */
  | 'BAD_ARGUMENT'
  /** An earlier durable write failed; nothing more is written (ZOOKEEPER-4882: no gaps). */
  | 'FAILED';

export class StorageError extends Error {
  constructor(readonly code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** A record that failed its checksum or decoding; `where` names it (e.g. `log 0x100000007`). */
export class CorruptRecordError extends StorageError {
  constructor(readonly where: string, readonly detail: string) {
    super('CORRUPT', `corrupt record at ${where}: ${detail}`);
    this.name = 'CorruptRecordError';
  }
}
