import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { realClock } from '../../src/api/clock.js';
import { silentLogger } from '../../src/api/log.js';
import { startMember } from '../../src/api/member.js';
import { loadTree, takeSnapshot } from '../../src/api/recovery.js';
import { formatZxid } from '../../src/core/zxid.js';
import { StorageError } from '../../src/storage/errors.js';
import { logKey, metaKey, SNAP_END, SNAP_HEADER, snapKey } from '../../src/storage/format.js';
import { LevelStorage } from '../../src/storage/level.js';
import type { StorageDamage } from '../../src/storage/types.js';
import { Workload } from './workload.js';

type Bytes = Uint8Array;
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'conclave-corrupt-'));
  dirs.push(d);
  return d;
}

/**
 * Fills a directory: txns in steps, a real fuzzy snapshot (takeSnapshot) after each step listed in
 * `snapAfter`. One txn per append (`perRecord` 1, the default), so one log record per txn: these
 * tests damage the record of a chosen txn; group-commit records of several txns are tested below.
 */
async function build(dir: string, seed: number, steps: number[], snapAfter: number[], perRecord = 1): Promise<{ w: Workload; snaps: bigint[] }> {
  const w = new Workload(seed);
  const s = new LevelStorage(dir);
  await s.open();
  const snaps: bigint[] = [];
  for (let i = 0; i < steps.length; i++) {
    const txns = w.steps(steps[i]!);
    for (let k = 0; k < txns.length; k += perRecord) await s.append(txns.slice(k, k + perRecord));
    if (snapAfter.includes(i)) snaps.push((await takeSnapshot(w.tree, s, realClock, silentLogger)).zxid);
  }
  await s.close();
  return { w, snaps };
}

/** Edits raw LevelDB values, below conclave's own checks. */
async function raw(dir: string, edit: (db: ClassicLevel<Bytes, Bytes>) => Promise<void>): Promise<void> {
  const db = new ClassicLevel<Bytes, Bytes>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    await edit(db);
  } finally {
    await db.close();
  }
}

async function flipValueByte(db: ClassicLevel<Bytes, Bytes>, key: Bytes, at = -3): Promise<void> {
  const v = Buffer.from((await db.get(key))!);
  const i = at < 0 ? v.length + at : at;
  v[i] = v[i]! ^ 0x5a;
  await db.put(key, v);
}

/** The chunk file of snapshot `z` (format 3: one file per snapshot in the directory's snapshots/). */
function chunkFile(dir: string, z: bigint): string {
  const prefix = `${z.toString(16).padStart(16, '0')}-`;
  const names = readdirSync(join(dir, 'snapshots')).filter((n) => n.startsWith(prefix) && n.endsWith('.snap'));
  assert.equal(names.length, 1, `one chunk file for snapshot ${formatZxid(z)}: ${names.join(', ')}`);
  return join(dir, 'snapshots', names[0]!);
}

function flipFileByte(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0x5a;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

async function recover(dir: string): Promise<{ digest: string; lastZxid: bigint; snapshotZxid: bigint; damage: StorageDamage[] }> {
  const s = new LevelStorage(dir);
  let damage: StorageDamage[] = [];
  const logged: StorageDamage[] = [];
  const log = { ...silentLogger, error: (o: Record<string, unknown>) => logged.push(o as unknown as StorageDamage), warn: (o: Record<string, unknown>) => logged.push(o as unknown as StorageDamage), child: () => log };
  try {
    const st = await s.open();
    damage = st.damage ?? [];
    await s.close();
    const again = new LevelStorage(dir);
    try {
      const rec = await loadTree(again, log, 0);
      return { digest: rec.tree.digest(), lastZxid: rec.lastZxid, snapshotZxid: rec.snapshotZxid, damage };
    } finally {
      await again.close();
    }
  } finally {
    await s.close();
  }
}

function refused(pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof StorageError, `a StorageError, got ${String(e)}`);
    assert.equal(e.code, 'UNSAFE');
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.match(e.message, pattern);
    return true;
  };
}

describe('storage/level: corruption is detected, reported precisely, and never served', function () {
  this.timeout(30_000);
  after(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('a flipped byte in the last log record: reported (where, what), truncated, the state ends one txn earlier', async () => {
    const dir = tempDir();
    const { w, snaps } = await build(dir, 41, [120, 60], [0]);
    const last = w.lastZxid;
    await raw(dir, (db) => flipValueByte(db, logKey(last)));
    const r = await recover(dir);
    const prev = w.txns[w.txns.length - 2]!.zxid;
    assert.equal(r.damage.length, 1);
    assert.equal(r.damage[0]!.kind, 'log-tail-truncated');
    assert.equal(r.damage[0]!.where, `log ${formatZxid(last)}`);
    assert.match(r.damage[0]!.detail, /^checksum mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\)$/);
    assert.match(r.damage[0]!.action, /removed 1 damaged record/);
    assert.equal(r.snapshotZxid, snaps[0]);
    assert.equal(r.lastZxid, prev);
    assert.equal(r.digest, w.digestAt(prev));
    // Truncated for good: the next opening finds nothing to report.
    assert.deepEqual((await recover(dir)).damage, []);
  });

  it('a torn tail (the last records cut short) is truncated back to the last whole record', async () => {
    const dir = tempDir();
    const { w } = await build(dir, 42, [150], []);
    const lastThree = w.txns.slice(-3).map((t) => t.zxid);
    await raw(dir, async (db) => {
      for (const z of lastThree) {
        const v = (await db.get(logKey(z)))!;
        await db.put(logKey(z), v.subarray(0, Math.floor(v.length / 2)));
      }
    });
    const r = await recover(dir);
    assert.equal(r.damage[0]!.kind, 'log-tail-truncated');
    assert.equal(r.damage[0]!.where, `log ${formatZxid(lastThree[0]!)}`);
    assert.match(r.damage[0]!.action, new RegExp(`removed 3 damaged record\\(s\\) ${formatZxid(lastThree[0]!)}\\.\\.${formatZxid(lastThree[2]!)}`));
    const keep = w.txns[w.txns.length - 4]!.zxid;
    assert.equal(r.lastZxid, keep);
    assert.equal(r.digest, w.digestAt(keep));
  });

  it('a corrupt record in the middle of the log, with valid records after it: refuses to start, in one line', async () => {
    const dir = tempDir();
    const { w } = await build(dir, 43, [80, 80], [0]);
    const bad = w.txns[120]!.zxid;
    await raw(dir, (db) => flipValueByte(db, logKey(bad), 30));
    await assert.rejects(loadTree(new LevelStorage(dir), silentLogger, 0),
      refused(new RegExp(`^refusing to start from .*: log ${formatZxid(bad)} is damaged \\(checksum mismatch .*\\), and 39 valid record\\(s\\) after it, up to ${formatZxid(w.lastZxid)}, depend on it, so the tree cannot be rebuilt safely; move the directory aside and let this member resync from the ensemble, or restore a backup$`)));
    // The member refuses too, with the same one-line reason, and nothing was changed on disk.
    await assert.rejects(startMember({ id: 1, storage: dir, logger: silentLogger }), refused(/refusing to start/));
    await assert.rejects(startMember({ id: 1, storage: dir, logger: silentLogger }), refused(/refusing to start/));
  });

  it('a record missing from the middle of the log is caught by the record chain: refuses', async () => {
    const dir = tempDir();
    const { w } = await build(dir, 44, [100], []);
    const gone = w.txns[50]!.zxid;
    await raw(dir, (db) => db.del(logKey(gone)));
    await assert.rejects(loadTree(new LevelStorage(dir), silentLogger, 0),
      refused(new RegExp(`txn ${formatZxid(gone)} is missing from the log \\(log ${formatZxid(w.txns[51]!.zxid)} follows it; the log holds ${formatZxid(w.txns[49]!.zxid)} before it\\), and 49 valid record\\(s\\) after it`)));
  });

  it('a record stored under the wrong zxid at the tail is reported as such and truncated', async () => {
    const dir = tempDir();
    const { w } = await build(dir, 45, [60], []);
    const [a, b] = w.txns.slice(-2).map((t) => t.zxid);
    await raw(dir, async (db) => db.put(logKey(b!), (await db.get(logKey(a!)))!));
    const r = await recover(dir);
    assert.equal(r.damage[0]!.where, `log ${formatZxid(b!)}`);
    assert.match(r.damage[0]!.detail, /key and record disagree/);
    assert.equal(r.digest, w.digestAt(a!));
  });

  it('a corrupt chunk in the newest snapshot: falls back to the older snapshot plus the log, nothing lost', async () => {
    const dir = tempDir();
    const { w, snaps } = await build(dir, 46, [100, 100, 50], [0, 1]);
    flipFileByte(chunkFile(dir, snaps[1]!), 4 + 40); // inside chunk 0 (after its length)
    const r = await recover(dir);
    assert.equal(r.damage.length, 1);
    assert.equal(r.damage[0]!.kind, 'snapshot-corrupt');
    assert.equal(r.damage[0]!.where, `snapshot ${formatZxid(snaps[1]!)}`);
    assert.match(r.damage[0]!.detail, new RegExp(`snapshot ${formatZxid(snaps[1]!)} chunk 0: checksum mismatch`));
    assert.match(r.damage[0]!.action, new RegExp(`older snapshot ${formatZxid(snaps[0]!)}`));
    assert.equal(r.snapshotZxid, snaps[0]);
    assert.equal(r.lastZxid, w.lastZxid);
    assert.equal(r.digest, w.tree.digest());
  });

  it('a snapshot with a damaged header, a missing, cut or overlong chunk file, a bad chunk length, or no end marker is not used', async () => {
    const cut = (by: number) => (dir: string, z: bigint): void => {
      const f = chunkFile(dir, z);
      truncateSync(f, statSync(f).size + by);
    };
    for (const [what, edit, kind, detail] of [
      ['header', (dir: string, z: bigint) => raw(dir, (db) => flipValueByte(db, snapKey(z, SNAP_HEADER), 10)), 'snapshot-corrupt', /header: checksum mismatch/],
      ['chunk file', (dir: string, z: bigint) => rmSync(chunkFile(dir, z)), 'snapshot-corrupt', /its chunk file snapshots\/[0-9a-f]{16}-[0-9a-f]{8}\.snap is missing/],
      ['cut chunk file', cut(-7), 'snapshot-corrupt', /its chunk file snapshots\/\S+ is \d+ bytes, its end marker says \d+/],
      ['longer chunk file', cut(+3), 'snapshot-corrupt', /is \d+ bytes, its end marker says \d+/],
      ['chunk length', (dir: string, z: bigint) => flipFileByte(chunkFile(dir, z), 0), 'snapshot-corrupt', /chunk 0: its length \d+ runs past the end of the file/],
      ['end', (dir: string, z: bigint) => raw(dir, (db) => db.del(snapKey(z, SNAP_END))), 'snapshot-unfinished', /no end marker/],
    ] as const) {
      const dir = tempDir();
      const { w, snaps } = await build(dir, 47, [60, 60, 20], [0, 1]);
      await edit(dir, snaps[1]!);
      const r = await recover(dir);
      assert.equal(r.damage[0]?.kind, kind, `${what}: ${JSON.stringify(r.damage)}`);
      assert.match(r.damage[0]!.detail, detail, what);
      assert.equal(r.snapshotZxid, snaps[0], what);
      assert.equal(r.digest, w.tree.digest(), what);
    }
  });

  it('chunk files no end marker names (a snapshot cut short, a removal cut short) are reported and removed; read-only opening leaves them', async () => {
    const dir = tempDir();
    const { w, snaps } = await build(dir, 50, [60, 60, 20], [0, 1]);
    const folder = join(dir, 'snapshots');
    const own = readdirSync(folder).sort();
    assert.equal(own.length, 2);
    const z = `${(snaps[1]! + 5n).toString(16).padStart(16, '0')}`;
    writeFileSync(join(folder, `${z}-0000abcd.snap.tmp`), Buffer.alloc(100, 1)); // being written when the process died
    writeFileSync(join(folder, `${z}-00001234.snap`), Buffer.alloc(50, 2)); // renamed, end marker never written
    writeFileSync(join(folder, 'notes.txt'), 'not ours');
    const ro = new LevelStorage(dir, { readOnly: true });
    const seen = (await ro.open()).damage ?? [];
    await ro.close();
    assert.deepEqual(seen.map((d) => [d.kind, d.action]), [
      ['snapshot-unfinished', 'left as found (read-only)'], ['snapshot-unfinished', 'left as found (read-only)'],
    ]);
    assert.equal(readdirSync(folder).length, 5);
    const r = await recover(dir);
    assert.deepEqual(r.damage.map((d) => d.where), [
      `snapshot ${formatZxid(snaps[1]! + 5n)} (snapshots/${z}-00001234.snap)`, `snapshot ${formatZxid(snaps[1]! + 5n)} (snapshots/${z}-0000abcd.snap.tmp)`,
    ]);
    assert.match(r.damage[0]!.detail, /no finished snapshot refers to/);
    assert.match(r.damage[1]!.detail, /still being written/);
    assert.deepEqual(readdirSync(folder).sort(), [...own, 'notes.txt'].sort());
    assert.equal(r.snapshotZxid, snaps[1]);
    assert.equal(r.digest, w.tree.digest());
  });

  it('purge and SNAP install remove the chunk files of the snapshots they drop', async () => {
    const dir = tempDir();
    const { w, snaps } = await build(dir, 51, [40, 40, 40, 40, 10], [0, 1, 2, 3]);
    const folder = join(dir, 'snapshots');
    assert.equal(readdirSync(folder).length, 4);
    const s = new LevelStorage(dir);
    await s.open();
    assert.equal((await s.purge(2)).snapshots, 2);
    assert.deepEqual(readdirSync(folder).map((n) => BigInt(`0x${n.slice(0, 16)}`)).sort(), snaps.slice(2));
    const records = [...w.tree.records()];
    const header = { zxid: w.lastZxid, time: 1, sessions: [...w.tree.sessions].map(([id, e]) => ({ id, ...e })) };
    await s.installSnapshot(header, [records]);
    assert.deepEqual(readdirSync(folder).map((n) => BigInt(`0x${n.slice(0, 16)}`)), [w.lastZxid]);
    await s.close();
    const r = await recover(dir);
    assert.deepEqual(r.damage, []);
    assert.equal(r.snapshotZxid, w.lastZxid);
    assert.equal(r.digest, w.tree.digest());
  });

  it('no valid snapshot while the log does not start at zxid 0: refuses', async () => {
    const dir = tempDir();
    const { snaps } = await build(dir, 48, [60, 60, 60, 60, 10], [0, 1, 2, 3]);
    const s = new LevelStorage(dir);
    await s.open();
    await s.purge(3); // drops the log up to the oldest retained snapshot
    await s.close();
    // The purge removed the older snapshots (and their files); damage the rest.
    const kept = new Set(readdirSync(join(dir, 'snapshots')));
    for (const z of snaps) {
      const prefix = `${z.toString(16).padStart(16, '0')}-`;
      for (const n of kept) if (n.startsWith(prefix)) flipFileByte(join(dir, 'snapshots', n), 4 + 20);
    }
    await assert.rejects(loadTree(new LevelStorage(dir), silentLogger, 0),
      refused(/there is no valid snapshot \(0x[0-9a-f]+: snapshot 0x[0-9a-f]+ chunk 0: checksum mismatch.*\) and the log starts at 0x[0-9a-f]+, after 0x[0-9a-f]+ \(older txns were purged\), so it cannot be replayed from the beginning/));
  });

  it('every snapshot corrupt but the log complete from the beginning: recovers from the log alone', async () => {
    const dir = tempDir();
    const { w, snaps } = await build(dir, 49, [70, 70, 10], [0, 1]);
    await raw(dir, async (db) => {
      for (const z of snaps) await flipValueByte(db, snapKey(z, SNAP_END), 6);
    });
    const r = await recover(dir);
    assert.deepEqual(r.damage.map((d) => d.kind), ['snapshot-corrupt', 'snapshot-corrupt']);
    assert.match(r.damage[1]!.action, /recovering from the log alone/);
    assert.equal(r.snapshotZxid, 0n);
    assert.equal(r.digest, w.tree.digest());
  });

  it('a damaged epoch refuses to start (the promises made to other members are unknown)', async () => {
    const dir = tempDir();
    const s = new LevelStorage(dir);
    await s.open();
    await s.setEpochs({ currentEpoch: 3, acceptedEpoch: 3 });
    await s.close();
    await raw(dir, (db) => flipValueByte(db, metaKey('acceptedEpoch'), -1));
    await assert.rejects(new LevelStorage(dir).open(), refused(/acceptedEpoch is damaged \(checksum mismatch/));
  });

  it('damage in log records the snapshot already covers is reported and does not stop recovery', async () => {
    const dir = tempDir();
    const { w, snaps } = await build(dir, 50, [80, 40], [0]);
    const old = w.txns[10]!.zxid;
    await raw(dir, (db) => flipValueByte(db, logKey(old), 25));
    const r = await recover(dir);
    assert.equal(r.damage[0]!.kind, 'log-before-snapshot-damaged');
    assert.equal(r.damage[0]!.where, `log ${formatZxid(old)}`);
    assert.match(r.damage[0]!.action, new RegExp(`not needed to recover from snapshot ${formatZxid(snaps[0]!)}`));
    assert.equal(r.digest, w.tree.digest());
  });

  it('read-only opening reports damage but changes nothing', async () => {
    const dir = tempDir();
    const { w } = await build(dir, 51, [40], []);
    await raw(dir, (db) => flipValueByte(db, logKey(w.lastZxid)));
    const ro = new LevelStorage(dir, { readOnly: true });
    const st = await ro.open();
    assert.match(st.damage![0]!.action, /would remove 1 damaged record/);
    await ro.close();
    const again = new LevelStorage(dir, { readOnly: true });
    assert.equal((await again.open()).damage![0]!.kind, 'log-tail-truncated');
    await again.close();
  });

  // ---------------------------------------------------------------- below LevelDB's own records

  /** Either a clear refusal, or exactly the state after some prefix of the txns: never anything else. */
  async function recoveredOrRefused(dir: string, w: Workload): Promise<'refused' | bigint> {
    try {
      const rec = await loadTree(new LevelStorage(dir), silentLogger, 0);
      assert.equal(rec.tree.digest(), w.digestAt(rec.lastZxid), `the recovered tree is exactly the state at ${formatZxid(rec.lastZxid)}`);
      return rec.lastZxid;
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof StorageError, `a StorageError, got ${String(e)}`);
      assert.ok(['UNSAFE', 'CORRUPT', 'IO'].includes(e.code), e.message);
      assert.ok(!e.message.includes('\n'), 'one line');
      return 'refused';
    }
  }

  function walFile(dir: string): string {
    const f = readdirSync(dir).filter((n) => n.endsWith('.log') && n !== 'LOG').map((n) => join(dir, n)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
    assert.ok(f, 'a LevelDB write-ahead log file');
    return f;
  }

  function flipFileByte(file: string, at: number): void {
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
  }

  it("LevelDB's write-ahead log cut short (a torn write): a consistent prefix is recovered", async () => {
    const dir = tempDir();
    const { w } = await build(dir, 52, [600], []);
    const wal = walFile(dir);
    truncateSync(wal, Math.floor(statSync(wal).size * 0.6));
    const got = await recoveredOrRefused(dir, w);
    assert.equal(typeof got, 'bigint', 'a torn write-ahead log is recovered, not refused');
    assert.ok((got as bigint) < w.lastZxid && (got as bigint) > 0n);
  });

  it("a flipped byte in the middle of LevelDB's write-ahead log: LevelDB drops a block, the record chain sees the gap, refuses", async () => {
    const dir = tempDir();
    const { w } = await build(dir, 53, [1500], []);
    const wal = walFile(dir);
    assert.ok(statSync(wal).size > 4 * 32768, 'several LevelDB log blocks');
    flipFileByte(wal, Math.floor(statSync(wal).size * 0.3));
    assert.equal(await recoveredOrRefused(dir, w), 'refused');
  });

  it('flipped bytes and truncation in LevelDB table files: refused or exactly a consistent state, never a wrong tree', async () => {
    const base = tempDir();
    // One snapshot, so that every record in the table file is read when opening.
    const { w } = await build(base, 54, [400, 400], [0]);
    // Reopen once so that LevelDB turns its write-ahead log into a table file (.ldb).
    const reopened = new LevelStorage(base);
    await reopened.open();
    await reopened.close();
    const table = readdirSync(base).filter((n) => n.endsWith('.ldb')).map((n) => join(base, n)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
    assert.ok(table, 'a table file');
    const size = statSync(table).size;
    const outcomes: (string | bigint)[] = [];
    const cases: [string, (f: string) => void][] = [
      ...[0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9].map((p) => [`flip at ${p}`, (f: string) => flipFileByte(f, Math.floor(size * p))] as [string, (f: string) => void]),
      ['truncate to 70%', (f: string) => truncateSync(f, Math.floor(size * 0.7))],
    ];
    for (const [, damage] of cases) {
      const dir = tempDir();
      cpSync(base, dir, { recursive: true });
      damage(join(dir, table.slice(base.length + 1)));
      outcomes.push(await recoveredOrRefused(dir, w));
    }
    assert.ok(outcomes.some((o) => o === 'refused' || o !== w.lastZxid), `some damage was noticed: ${outcomes.map(String).join(', ')}`);
    if (process.env.CONCLAVE_TEST_VERBOSE) console.log(outcomes);
  });

  describe('group-commit records (format 4: the txns of one group in one record, keyed by the last)', () => {
    /** Every log key with the first and last zxid of its record, in order. */
    async function records(dir: string): Promise<bigint[]> {
      const out: bigint[] = [];
      await raw(dir, async (db) => {
        for await (const k of db.keys({ gte: logKey(0n), lte: logKey((1n << 64n) - 1n) })) out.push(Buffer.from(k).readBigUInt64BE(1));
      });
      return out;
    }

    it('one record per group; reading from inside a record returns exactly the txns after the point', async () => {
      const dir = tempDir();
      const { w } = await build(dir, 51, [95], [], 10);
      const keys = await records(dir);
      assert.equal(keys.length, 10, 'ten appends of ten txns (the last of five), ten records');
      assert.deepEqual(keys, w.txns.filter((_, i) => i % 10 === 9 || i === w.txns.length - 1).map((t) => t.zxid));
      const s = new LevelStorage(dir);
      await s.open();
      try {
        for (const from of [0n, w.txns[0]!.zxid, w.txns[33]!.zxid, w.txns[39]!.zxid, w.txns[94]!.zxid]) {
          const got: bigint[] = [];
          for await (const b of s.readLog(from)) got.push(...b.map((t) => t.zxid));
          assert.deepEqual(got, w.txns.filter((t) => t.zxid > from).map((t) => t.zxid), `after ${formatZxid(from)}`);
        }
      } finally {
        await s.close();
      }
    });

    it('concurrent appends are committed together in one record and each resolves', async () => {
      const dir = tempDir();
      const w = new Workload(52);
      const txns = w.steps(60);
      const s = new LevelStorage(dir);
      await s.open();
      await s.append(txns.slice(0, 1));
      await Promise.all([s.append(txns.slice(1, 20)), s.append(txns.slice(20, 40)), s.append(txns.slice(40))]);
      await s.close();
      assert.deepEqual(await records(dir), [txns[0]!.zxid, txns[59]!.zxid], 'the three appends queued behind the first went in one record');
      assert.equal((await recover(dir)).digest, w.digestAt(txns[59]!.zxid));
    });

    it('a long append (a DIFF) is logged as several records: at most 4096 txns or ~4 MiB of data each', async () => {
      const dir = tempDir();
      const w = new Workload(56);
      const small = w.bulk(10_000, 8);
      const big = w.bulk(3, 3 * 1024 * 1024);
      const s = new LevelStorage(dir);
      await s.open();
      await s.append(small);
      await s.append(big);
      await s.close();
      const keys = await records(dir);
      // bulk() starts with a createSession (and the first time a create of /bulk).
      assert.equal(small.length, 10_002);
      assert.equal(big.length, 4);
      assert.deepEqual(keys, [small[4095]!.zxid, small[8191]!.zxid, small[10_001]!.zxid, big[2]!.zxid, big[3]!.zxid]);
      const r = await recover(dir);
      assert.deepEqual(r.damage, []);
      assert.equal(r.digest, w.digestAt(big[3]!.zxid));
    });

    it('a truncation inside a record keeps what it holds up to the point (rewritten as a record of its own)', async () => {
      const dir = tempDir();
      const { w } = await build(dir, 53, [80], [], 10);
      const at = w.txns[44]!.zxid; // the fifth txn of the fifth record
      const s = new LevelStorage(dir);
      await s.open();
      await s.truncateAfter(at);
      const next = new Workload(53);
      next.steps(45);
      const more = next.steps(7); // the same history up to `at`, then other txns
      await s.append(more);
      await s.close();
      const keys = await records(dir);
      assert.deepEqual(keys.slice(-2), [at, more[6]!.zxid]);
      const r = await recover(dir);
      assert.deepEqual(r.damage, []);
      assert.equal(r.lastZxid, more[6]!.zxid);
      assert.equal(r.digest, next.digestAt(more[6]!.zxid));
    });

    it('a snapshot taken inside a record: recovery replays only what follows it; a purge keeps the record that holds both sides', async () => {
      const dir = tempDir();
      const w = new Workload(54);
      const s = new LevelStorage(dir);
      await s.open();
      const a = w.steps(25);
      await s.append(a.slice(0, 10));
      // A fuzzy snapshot at the 15th txn, whose record (txns 11–20) is appended after it.
      const partial = new Workload(54);
      partial.steps(15);
      const snap = await takeSnapshot(partial.tree, s, realClock, silentLogger);
      await s.append(a.slice(10, 20));
      await s.append(a.slice(20));
      assert.deepEqual(await s.purge(1), { snapshots: 0, txns: 15 }, 'txns up to the snapshot count as purged');
      await s.close();
      assert.deepEqual(await records(dir), [a[19]!.zxid, a[24]!.zxid], 'the record of txns 1–10 went; 11–20 stays (it holds 16–20)');
      const r = await recover(dir);
      assert.deepEqual(r.damage, []);
      assert.equal(r.snapshotZxid, snap.zxid);
      assert.equal(r.lastZxid, a[24]!.zxid);
      assert.equal(r.digest, w.digestAt(a[24]!.zxid));
    });

    it('a damaged last record goes whole (the state ends at the record before); in the middle, with records after it, refuses', async () => {
      const dir = tempDir();
      const { w } = await build(dir, 55, [60], [], 10);
      const copy = tempDir();
      cpSync(dir, copy, { recursive: true });
      await raw(dir, (db) => flipValueByte(db, logKey(w.lastZxid), 40));
      const r = await recover(dir);
      assert.equal(r.damage.length, 1);
      assert.equal(r.damage[0]!.kind, 'log-tail-truncated');
      assert.match(r.damage[0]!.action, /removed 1 damaged record/);
      assert.equal(r.lastZxid, w.txns[49]!.zxid);
      assert.equal(r.digest, w.digestAt(w.txns[49]!.zxid));

      await raw(copy, (db) => flipValueByte(db, logKey(w.txns[29]!.zxid), 40));
      await assert.rejects(loadTree(new LevelStorage(copy), silentLogger, 0), refused(new RegExp(`log ${formatZxid(w.txns[29]!.zxid)} is damaged .*and 3 valid record\\(s\\) after it`)));
    });
  });
});

