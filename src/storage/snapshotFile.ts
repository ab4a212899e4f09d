import { randomInt } from 'node:crypto';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { formatZxid } from '../core/zxid.js';
import { CorruptRecordError } from './errors.js';
import { snapshotFileName } from './format.js';

/**
 * The chunk file of a format 3 snapshot: the chunk values (sealed by format.ts: CRC-32, type,
 * payload), each preceded by its length as a big-endian u32, nothing else. The end marker in
 * LevelDB names the file and records its length and chunk count; each chunk carries its checksum.
 *
 * Written as `<name>.tmp`, synced, then renamed and the directory synced: a file under its final
 * name is complete on disk before the end marker that refers to it is written.
 */
export class ChunkFileWriter {
  private bytes = 0;
  private closed = false;

  private constructor(
    private readonly dir: string,
    readonly name: string,
    readonly id: number,
    private readonly fh: FileHandle,
  ) {}

  /** Opens a new temporary file for snapshot `zxid` in `dir` (created if missing), under a fresh id. */
  static async create(dir: string, zxid: bigint): Promise<ChunkFileWriter> {
    await mkdir(dir, { recursive: true });
    const id = randomInt(0, 0x1_0000_0000);
    const name = snapshotFileName(zxid, id);
    const fh = await open(join(dir, `${name}.tmp`), 'wx');
    return new ChunkFileWriter(dir, name, id, fh);
  }

  /** The temporary name while it is being written. */
  get temporaryName(): string {
    return `${this.name}.tmp`;
  }

  /** Appends one chunk value, given as consecutive parts (written before this resolves). */
  async append(parts: readonly Buffer[]): Promise<void> {
    let length = 0;
    for (const p of parts) length += p.length;
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(length, 0);
    const all = [len, ...parts];
    let written = (await this.fh.writev(all)).bytesWritten;
    // A short write (rare for files: a signal, a full disk) continues where it stopped.
    for (const b of all) {
      if (written >= b.length) {
        written -= b.length;
        continue;
      }
      let off = written;
      written = 0;
      while (off < b.length) off += (await this.fh.write(b, off, b.length - off)).bytesWritten;
    }
    this.bytes += 4 + length;
  }

  /** Syncs and closes the file, moves it to its final name and syncs the directory; its length. */
  async finish(): Promise<number> {
    await this.fh.sync();
    this.closed = true;
    await this.fh.close();
    await rename(join(this.dir, this.temporaryName), join(this.dir, this.name));
    await syncDirectory(this.dir);
    return this.bytes;
  }

  /** Closes and removes the temporary file (best effort). */
  async abandon(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await unlink(join(this.dir, this.temporaryName)).catch(() => undefined);
  }
}

/** fsync of a directory, so that a rename or unlink in it is durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * The chunk values of a chunk file, in order; the framing is checked against the file's length
 * (`bytes`, from the end marker) but not the values' checksums (the caller checks or decodes them).
 * A missing, short or long file, or a length running past its end, is a CorruptRecordError.
 */
export async function* readChunkFile(path: string, zxid: bigint, name: string, bytes: number): AsyncGenerator<Buffer> {
  const z = formatZxid(zxid);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CorruptRecordError(`snapshot ${z}`, `its chunk file snapshots/${name} is missing`);
    throw e;
  }
  try {
    const size = (await fh.stat()).size;
    if (size !== bytes) throw new CorruptRecordError(`snapshot ${z}`, `its chunk file snapshots/${name} is ${size} bytes, its end marker says ${bytes}`);
    const head = Buffer.allocUnsafe(4);
    let pos = 0;
    for (let index = 0; pos < size; index++) {
      if (pos + 4 > size) throw new CorruptRecordError(`snapshot ${z} chunk ${index}`, 'cut short (the file ends inside its length)');
      await readFully(fh, head, pos);
      const len = head.readUInt32BE(0);
      if (pos + 4 + len > size) throw new CorruptRecordError(`snapshot ${z} chunk ${index}`, `its length ${len} runs past the end of the file`);
      const value = Buffer.allocUnsafe(len);
      await readFully(fh, value, pos + 4);
      pos += 4 + len;
      yield value;
    }
  } finally {
    await fh.close();
  }
}

async function readFully(fh: FileHandle, into: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < into.length) {
    const { bytesRead } = await fh.read(into, off, into.length - off, position + off);
    if (bytesRead === 0) throw new Error('unexpected end of file');
    off += bytesRead;
  }
}
