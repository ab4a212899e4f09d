import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { startMember } from '../../src/api/member.js';
import { silentLogger } from '../../src/api/log.js';
import { StorageError } from '../../src/storage/errors.js';
import type { Txn } from '../../src/core/txn.js';
import { makeZxid } from '../../src/core/zxid.js';
import {
  ChunkEncoder, decodeMeta, encodeLogRecord, encodeLogRecordV1, encodeMeta, encodeSnapshotEnd, encodeSnapshotHeader, FORMAT_VERSION, logKey, metaKey,
  SNAP_CHUNK, SNAP_END, SNAP_HEADER, snapKey, snapshotFileName,
} from '../../src/storage/format.js';
import { LevelStorage } from '../../src/storage/level.js';
import type { Storage } from '../../src/storage/types.js';
import { storageCompliance } from './compliance.js';
import { Workload } from './workload.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-level-'));
  dirs.push(dir);
  return dir;
}
function cleanup(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

storageCompliance('leveldb', {
  create: async () => new LevelStorage(tempDir()),
  reopen: async (closed: Storage) => new LevelStorage((closed as LevelStorage).directory),
  cleanup: async () => cleanup(),
});

function code(c: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof StorageError && e.code === c && !e.message.includes('\n');
}

describe('storage/level: LevelDB specifics', function () {
  this.timeout(30_000);
  afterEach(cleanup);

  it('group commit: concurrent appends share synced batches (far fewer batches than appends)', async () => {
    const s = new LevelStorage(tempDir());
    await s.open();
    const w = new Workload(31);
    const txns = w.steps(400);
    await Promise.all(txns.map((t) => s.append([t])));
    const st = s.stats();
    assert.equal(st.appends, 400);
    assert.equal(st.txns, 400);
    assert.ok(st.batches <= 10, `400 concurrent appends went to disk in ${st.batches} batches`);
    // Sequential appends cannot share: one batch each.
    const before = s.stats().batches;
    for (const t of w.steps(20)) await s.append([t]);
    assert.equal(s.stats().batches - before, 20);
    await s.close();
  });

  it('a group-commit batch is bounded (16384 txns); the rest go in the next batches, in order', async () => {
    const s = new LevelStorage(tempDir());
    await s.open();
    const txns: Txn[] = Array.from({ length: 40_000 }, (_, i) => ({ zxid: makeZxid(1, i + 1), sessionId: 1n, cxid: i, time: 0, op: { type: 'check', path: '/' } }));
    await Promise.all(txns.map((t) => s.append([t])));
    const st = s.stats();
    assert.ok(st.batches >= 3 && st.batches <= 6, `${st.batches} batches`);
    let n = 0;
    let prev = 0n;
    for await (const b of s.readLog(0n)) {
      for (const t of b) {
        assert.ok(t.zxid > prev);
        prev = t.zxid;
        n++;
      }
    }
    assert.equal(n, 40_000);
    await s.close();
  });

  it("a member's concurrent writes are group-committed through the storage", async () => {
    const dir = tempDir();
    const storage = new LevelStorage(dir);
    const m = await startMember({ id: 1, storage, logger: silentLogger });
    try {
      const sessions = await Promise.all(Array.from({ length: 32 }, () => m.session()));
      const before = storage.stats();
      await Promise.all(sessions.map(async (s, i) => {
        for (let k = 0; k < 10; k++) await s.create(`/w${i}-${k}`, `v${k}`);
      }));
      const after = storage.stats();
      const txns = after.txns - before.txns;
      const batches = after.batches - before.batches;
      assert.ok(txns >= 320, `${txns} txns logged`);
      assert.ok(batches * 4 <= txns, `${txns} txns in ${batches} synced batches`);
    } finally {
      await m.stop();
    }
  });

  it('forceSync: false still logs every txn in order (durable against a process crash, not power loss)', async () => {
    const dir = tempDir();
    const s = new LevelStorage(dir, { forceSync: false });
    await s.open();
    const w = new Workload(32);
    const txns = w.steps(100);
    await Promise.all(txns.map((t) => s.append([t])));
    await s.close();
    const r = new LevelStorage(dir);
    const st = await r.open();
    assert.equal(st.lastZxid, txns[99]!.zxid);
    await r.close();
  });

  it('the directory lock: a second opener in this process gets LOCKED with what to do', async () => {
    const dir = tempDir();
    const a = new LevelStorage(dir);
    await a.open();
    const b = new LevelStorage(dir);
    await assert.rejects(b.open(), (e: unknown) => code('LOCKED')(e) && /locked by another member.*stop that member first, or give each member its own directory/.test((e as Error).message));
    await a.close();
    await b.open();
    await b.close();
  });

  it('two members cannot share a directory (startMember names the directory and the fix)', async () => {
    const dir = tempDir();
    const m = await startMember({ id: 1, storage: dir, logger: silentLogger });
    try {
      await assert.rejects(startMember({ id: 2, storage: dir, logger: silentLogger }), (e: unknown) => code('LOCKED')(e) && (e as Error).message.includes(dir));
    } finally {
      await m.stop();
    }
    const again = await startMember({ id: 1, storage: dir, logger: silentLogger });
    await again.stop();
  });

  it('the lock holds across processes', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'hold-lock.ts'), dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('open')) resolve();
        });
        child.on('exit', (c) => reject(new Error(`lock holder exited early (${c})`)));
      });
      await assert.rejects(new LevelStorage(dir).open(), code('LOCKED'));
    } finally {
      child.stdin.end();
      await new Promise((r) => child.once('exit', r));
    }
    const s = new LevelStorage(dir);
    await s.open();
    await s.close();
  });

  it('refuses a directory that is not a conclave data directory, and a path that is a file', async () => {
    const dir = tempDir();
    const foreign = new ClassicLevel(dir);
    await foreign.put('hello', 'world');
    await foreign.close();
    await assert.rejects(new LevelStorage(dir).open(), (e: unknown) => code('FORMAT')(e) && /not a conclave data directory/.test((e as Error).message));
    const file = join(tempDir(), 'plain-file');
    writeFileSync(file, 'x');
    await assert.rejects(new LevelStorage(file).open(), code('IO'));
    assert.throws(() => new LevelStorage(''), code('BAD_ARGUMENT'));
    const missing = join(tempDir(), 'missing');
    await assert.rejects(new LevelStorage(missing, { readOnly: true }).open(), code('NOT_FOUND'));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(existsSync(missing), false, 'read-only opening never creates the directory');
    // Constructing a storage does not open (or lock, or create) anything by itself.
    const lazy = join(tempDir(), 'lazy');
    new LevelStorage(lazy);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(existsSync(lazy), false);
  });

  for (const autopurge of [undefined, { snapRetainCount: 3, purgeIntervalMs: 50 }]) {
    it(`auto-purge keeps snapRetainCount snapshots and the log they need (${autopurge ? 'on a purge interval' : 'after each snapshot'})`, async () => {
      const dir = tempDir();
      const m = await startMember({ id: 1, storage: dir, snapCount: 40, logger: silentLogger, ...(autopurge ? { autopurge } : {}) });
      const s = await m.session();
      for (let i = 0; i < 400; i++) await s.create(`/n${i}`, `v${i}`);
      // The session's close is a txn too, and may be the one that triggers a snapshot: closed
      // before the purge timer's last rounds, so that no snapshot comes after them.
      await s.close();
      if (autopurge) await new Promise((r) => setTimeout(r, 300));
      assert.ok(m.stats.snapshotsTaken >= 6, `${m.stats.snapshotsTaken} snapshots taken`);
      await m.stop();
      const digest = m.tree.digest();
      const ro = new LevelStorage(dir, { readOnly: true });
      const st = await ro.open();
      const snaps = await ro.snapshots();
      assert.equal(snaps.length, 3, `snapshots on disk: ${snaps.map((x) => x.zxid.toString(16)).join(', ')}`);
      // The log starts right after the oldest retained snapshot: nothing older is kept, nothing needed is gone.
      let first: bigint | undefined;
      for await (const r of ro.inspectLog(0n)) {
        first = r.zxid;
        break;
      }
      assert.ok(first !== undefined && first > snaps[2]!.zxid && first <= snaps[2]!.zxid + 1n, `log starts at ${first?.toString(16)}, oldest snapshot ${snaps[2]!.zxid.toString(16)}`);
      assert.ok(st.lastZxid > snaps[0]!.zxid || st.lastZxid === snaps[0]!.zxid);
      await ro.close();
      const again = await startMember({ id: 1, storage: dir, logger: silentLogger });
      assert.equal(again.tree.digest(), digest);
      await again.halt();
    });
  }

  describe('storage format versions', () => {
    /** A directory as conclave's format 1 wrote it: msgpack log records, format marker 1. */
    async function formatOneDirectory(txns: Txn[]): Promise<string> {
      const dir = tempDir();
      const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      const batch = db.batch();
      batch.put(metaKey('format'), encodeMeta(1));
      let prev = 0n;
      for (const t of txns) {
        batch.put(logKey(t.zxid), encodeLogRecordV1(t, prev));
        prev = t.zxid;
      }
      await batch.write({ sync: true });
      await db.close();
      return dir;
    }

    async function formatMarker(dir: string): Promise<unknown> {
      const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      try {
        return decodeMeta('format', (await db.get(metaKey('format')))!);
      } finally {
        await db.close();
      }
    }

    async function readAll(s: LevelStorage): Promise<Txn[]> {
      const out: Txn[] = [];
      for await (const b of s.readLog(0n)) out.push(...b);
      return out;
    }

    it('a format 1 directory (msgpack records) is read, marked with the current format when opened for writing, and continues with binary records', async () => {
      const w = new Workload(41);
      const old = w.steps(300);
      const dir = await formatOneDirectory(old);
      const ro = new LevelStorage(dir, { readOnly: true });
      assert.equal((await ro.open()).lastZxid, w.lastZxid);
      assert.deepStrictEqual(await readAll(ro), old);
      await ro.close();
      assert.equal(await formatMarker(dir), 1, 'read-only opening changes nothing');

      const s = new LevelStorage(dir);
      const st = await s.open();
      assert.equal(st.lastZxid, w.lastZxid);
      assert.deepStrictEqual(st.damage, []);
      const added = w.steps(200);
      await s.append(added);
      assert.deepStrictEqual(await readAll(s), [...old, ...added]);
      await s.close();
      assert.equal(await formatMarker(dir), FORMAT_VERSION);
      const again = new LevelStorage(dir);
      assert.equal((await again.open()).lastZxid, w.lastZxid);
      assert.deepStrictEqual(await readAll(again), w.txns);
      await again.close();
    });

    it('a directory of a newer format is refused with FORMAT, naming the formats this version reads', async () => {
      const dir = await formatOneDirectory([]);
      const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      await db.put(metaKey('format'), encodeMeta(FORMAT_VERSION + 1));
      await db.close();
      await assert.rejects(new LevelStorage(dir).open(), (e: unknown) => code('FORMAT')(e) && new RegExp(`storage format ${FORMAT_VERSION + 1}; this conclave reads formats 1, 2, 3 and 4`).test((e as Error).message));
    });

    it('a format 2 snapshot (chunks in LevelDB) is used, upgraded directories take new snapshots as files, and purge removes the old one', async () => {
      // As format 2 wrote it: binary log records, a snapshot at zxid S with its chunks under keys.
      const w = new Workload(42);
      const before = w.steps(400);
      const dir = tempDir();
      const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      const batch = db.batch();
      batch.put(metaKey('format'), encodeMeta(2));
      let prev = 0n;
      for (const t of before) {
        batch.put(logKey(t.zxid), encodeLogRecord(t, prev));
        prev = t.zxid;
      }
      const S = w.lastZxid;
      const enc = new ChunkEncoder();
      let chunks = 0;
      let nodes = 0;
      for (const n of w.tree.records()) {
        enc.add(n);
        nodes++;
        if (enc.count >= 50) batch.put(snapKey(S, SNAP_CHUNK, chunks++), enc.finish());
      }
      if (enc.count > 0) batch.put(snapKey(S, SNAP_CHUNK, chunks++), enc.finish());
      assert.ok(chunks > 1);
      const sessions = [...w.tree.sessions].map(([id, e]) => ({ id, ...e }));
      batch.put(snapKey(S, SNAP_HEADER), encodeSnapshotHeader({ zxid: S, time: 1, sessions, nodeCount: nodes }));
      batch.put(snapKey(S, SNAP_END), encodeSnapshotEnd({ chunks, nodes }));
      const after = w.steps(100);
      for (const t of after) {
        batch.put(logKey(t.zxid), encodeLogRecord(t, prev));
        prev = t.zxid;
      }
      await batch.write({ sync: true });
      await db.close();

      const m = await startMember({ id: 1, storage: dir, logger: silentLogger });
      try {
        assert.equal(m.tree.digest(), w.tree.digest());
        const st = m.storage as LevelStorage;
        const list = await st.snapshots();
        assert.deepEqual(list.map((x) => [x.zxid, x.status, x.chunks]), [[S, 'valid', chunks]]);
        await m.snapshot();
        const files = readdirSync(join(dir, 'snapshots'));
        assert.equal(files.length, 1, files.join(', '));
        const newest = (await st.snapshots())[0]!;
        assert.ok(newest.zxid > S && newest.status === 'valid');
        assert.ok(files[0]!.startsWith(snapshotFileName(newest.zxid, 0).slice(0, 17)), files[0]);
        // The member's own purge after its snapshot (retaining 3) dropped the log up to S; this one
        // drops the format 2 snapshot and the 100 txns after it.
        assert.deepEqual(await st.purge(1), { snapshots: 1, txns: 100 });
        assert.deepEqual((await st.snapshots()).map((x) => x.zxid), [newest.zxid]);
      } finally {
        await m.halt();
      }
      assert.equal(await formatMarker(dir), FORMAT_VERSION);
      const again = await startMember({ id: 1, storage: dir, logger: silentLogger });
      assert.equal(again.tree.digest(), w.tree.digest());
      await again.halt();
    });
  });

  it('a snapshot that cannot be written as a file fails with IO, naming the folder; the log goes on and a later snapshot works', async () => {
    const dir = tempDir();
    const s = new LevelStorage(dir);
    await s.open();
    const w = new Workload(43);
    await s.append(w.steps(20));
    writeFileSync(join(dir, 'snapshots'), 'in the way');
    const header = { zxid: w.lastZxid, time: 1, sessions: [] };
    await assert.rejects(s.writeSnapshot(header, [[...w.tree.records()]]),
      (e: unknown) => code('IO')(e) && /writing snapshot 0x[0-9a-f]+ to .*snapshots failed/.test((e as Error).message));
    await s.append(w.steps(5));
    rmSync(join(dir, 'snapshots'));
    await s.writeSnapshot({ ...header, zxid: w.lastZxid }, [[...w.tree.records()]]);
    assert.deepEqual((await s.snapshots()).map((x) => [x.zxid, x.status]), [[w.lastZxid, 'valid']]);
    await s.close();
  });

  it('read-only storage refuses writes', async () => {
    const dir = tempDir();
    const s = new LevelStorage(dir);
    await s.open();
    await s.close();
    const r = new LevelStorage(dir, { readOnly: true });
    await r.open();
    await assert.rejects(r.append(new Workload(33).steps(1)), code('BAD_ARGUMENT'));
    await r.close();
  });
});
