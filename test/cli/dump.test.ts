import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ClassicLevel } from 'classic-level';
import { silentLogger } from '../../src/api/log.js';
import { startMember } from '../../src/api/member.js';
import { CreateMode } from '../../src/core/createMode.js';
import { formatZxid } from '../../src/core/zxid.js';
import { logKey } from '../../src/storage/format.js';

const run = promisify(execFile);
const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

async function conclave(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', MAIN, ...args], { maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

const TXN_LINE = /^0x[0-9a-f]+ {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}session=0x[0-9a-f]+ {2}cxid=-?\d+ {2}\w+/;

describe('cli: conclave dump-log / dump-snapshot', function () {
  this.timeout(60_000);
  let dir: string;
  let sessionId: bigint;
  let seqPath: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conclave-cli-'));
    const m = await startMember({ id: 1, storage: dir, snapCount: 10_000, logger: silentLogger });
    const s = await m.session();
    sessionId = s.id;
    await s.create('/app', 'hello');
    await s.create('/app/cfg', '{"a":1}');
    for (let i = 1; i <= 20; i++) await s.setData('/app/cfg', `v${i}`);
    await m.snapshot(); // and the log up to it is purged
    seqPath = await s.create('/app/q-', new Uint8Array([1, 2, 3, 255]), { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    await s.create('/app/e', 'mine', { mode: CreateMode.EPHEMERAL });
    await s.setData('/app', 'bye');
    await s.setData('/app/cfg', 'v21');
    await m.halt(); // like a crash: the session and its ephemeral stay in the log
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('dump-log prints one readable line per txn: zxid, ISO time, session, cxid, type, path, details', async () => {
    const r = await conclave('dump-log', dir);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^# txn log of .*: after 0x0; newest valid snapshot 0x[0-9a-f]+, last zxid 0x[0-9a-f]+, currentEpoch 1, acceptedEpoch 1$/);
    const txns = lines.filter((l) => !l.startsWith('#'));
    for (const l of txns) assert.match(l, TXN_LINE);
    const sid = `session=0x${sessionId.toString(16)}`;
    assert.equal(txns.length, 4, 'the txns after the snapshot');
    assert.ok(txns.some((l) => l.includes(`${sid}  cxid=26  setData /app/cfg data="v21" version=21`)), 'setData with data preview and version');
    assert.ok(txns.some((l) => l.includes(`create ${seqPath} data=0x010203ff persistent acl=world:anyone:cdrwa`)), 'binary data shown in hex');
    assert.ok(txns.some((l) => l.includes(`create /app/e data="mine" ephemeral owner=0x${sessionId.toString(16)}`)), 'ephemeral owner');
    assert.ok(txns[2]!.includes(`${sid}  cxid=25  setData /app data="bye" version=1`));
    // zxids strictly increasing, and the summary counts them.
    const zxids = txns.map((l) => BigInt(l.split(' ')[0]!));
    zxids.forEach((z, i) => i > 0 && assert.ok(z > zxids[i - 1]!));
    assert.equal(lines[lines.length - 1], `# ${txns.length} txn(s) ${formatZxid(zxids[0]!)}..${formatZxid(zxids[zxids.length - 1]!)}`);
  });

  it('dump-log --from ZXID starts after that zxid (hex or decimal)', async () => {
    const all = (await conclave('dump-log', dir)).stdout.trim().split('\n').filter((l) => !l.startsWith('#'));
    const from = BigInt(all[all.length - 3]!.split(' ')[0]!);
    for (const arg of [formatZxid(from), from.toString()]) {
      const r = await conclave('dump-log', dir, '--from', arg);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n').filter((l) => !l.startsWith('#')), all.slice(-2));
    }
    const bad = await conclave('dump-log', dir, '--from', 'yesterday');
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim(), "conclave: --from: 'yesterday' is not a zxid (use decimal or 0x-prefixed hex)");
  });

  it('dump-snapshot lists the snapshots, then prints the header, sessions and each node with stat and data preview', async () => {
    const r = await conclave('dump-snapshot', dir);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^# snapshots in .*: \d+$/);
    assert.match(lines[1]!, /^# {3}0x[0-9a-f]+ {2}valid {2}\d{4}-.*Z {2}\d+ nodes$/);
    const header = lines.find((l) => l.startsWith('snapshot '))!;
    assert.match(header, /^snapshot 0x[0-9a-f]+ {2}time=\d{4}-.*Z {2}nodes=\d+ {2}sessions=1$/);
    assert.ok(lines.includes(`session 0x${sessionId.toString(16)}  timeout=10000ms  origin=local`));
    const root = lines.find((l) => l.startsWith('/  '))!;
    assert.match(root, /^\/ {2}czxid=0x0 mzxid=0x0 pzxid=0x[0-9a-f]+ ctime=.* version=0 cversion=\d+ aversion=0 ephemeralOwner=0x0 dataLength=0 numChildren=2 persistent seq=\d+ acl=world:anyone:cdrwa data=""$/);
    const cfg = lines.find((l) => l.startsWith('/app/cfg  '))!;
    assert.match(cfg, /version=(\d+) .*data="v\1"$/, 'data matches the version it was snapshotted at');
    const nodeLines = lines.filter((l) => l.startsWith('/'));
    assert.equal(header.match(/nodes=(\d+)/)![1], String(nodeLines.length));
    assert.match(lines[lines.length - 1]!, new RegExp(`^# ${nodeLines.length} node\\(s\\), \\d+ data byte\\(s\\)$`));
  });

  it('damaged records are shown as such, and dumping changes nothing', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'conclave-cli-'));
    try {
      cpSync(dir, copy, { recursive: true });
      const first = (await conclave('dump-log', copy)).stdout.trim().split('\n').filter((l) => !l.startsWith('#'));
      const victim = BigInt(first[first.length - 1]!.split(' ')[0]!);
      const db = new ClassicLevel<Uint8Array, Uint8Array>(copy, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      const v = Buffer.from((await db.get(logKey(victim)))!);
      v[v.length - 2] ^= 0xff;
      await db.put(logKey(victim), v);
      await db.close();
      for (let i = 0; i < 2; i++) {
        const r = await conclave('dump-log', copy);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^# damage: log-tail-truncated at log ${formatZxid(victim)}: checksum mismatch .*\\(would remove 1 damaged record`, 'm'));
        assert.match(r.stdout, new RegExp(`^${formatZxid(victim)} {2}# DAMAGED: checksum mismatch`, 'm'));
      }
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('refuses a directory in use by a running member, and a missing one, in one line', async () => {
    const live = mkdtempSync(join(tmpdir(), 'conclave-cli-'));
    const m = await startMember({ id: 1, storage: live, logger: silentLogger });
    try {
      const r = await conclave('dump-snapshot', live);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), `conclave: ${live} is in use by a running member (LevelDB lock); stop it first, or dump a copy of the directory`);
    } finally {
      await m.stop();
      rmSync(live, { recursive: true, force: true });
    }
    const missing = await conclave('dump-log', join(live, 'nope'));
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim(), `conclave: data directory ${join(live, 'nope')} does not exist`);
  });
});
