import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `conclave member start|status|stop` as real processes (daemonized, on ephemeral ports, in a
 * temporary dataDir), `conclave status` and `conclave cli` against them, and every start-up
 * problem as one line with a non-zero exit code. Processes are stopped by PID in `after`.
 */

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function conclave(args: string[], options: { timeoutMs?: number; input?: string; uid?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const user = options.uid === undefined ? {} : { uid: options.uid, gid: options.uid };
    const child = execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { ...user, timeout: options.timeoutMs ?? 30_000, env: { ...process.env, CONCLAVE_LOG_LEVEL: 'info', CONCLAVE_CLI_HISTORY: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    else child.stdin!.end();
  });
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** PIDs this file started (read from pid files); `after` stops the ones still running, by PID. */
const started = new Set<number>();

function pidOf(dataDir: string): number {
  const pid = Number(readFileSync(join(dataDir, 'conclave_member.pid'), 'utf8').trim());
  started.add(pid);
  return pid;
}

async function killStarted(): Promise<void> {
  for (const pid of started) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  for (let i = 0; i < 50 && [...started].some(alive); i++) await new Promise((r) => setTimeout(r, 50));
  started.clear();
}

/** stderr of a failed start-up: exactly one `conclave: …` line (besides pino's JSON log lines of a foreground member). */
function oneLine(r: Run): string {
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('conclave: warning:') && !l.startsWith('{"level":'));
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^conclave: /);
  return lines[0]!.slice('conclave: '.length);
}

describe('ops/member: conclave member start/status/stop as real processes (SPEC §7)', function () {
  this.timeout(60_000);
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'conclave-ops-'));
  });
  after(async () => {
    await killStarted();
    rmSync(root, { recursive: true, force: true });
  });

  it('start daemonizes (pid file, log file), status asks it, cli talks to it, a second start refuses, stop ends it gracefully', async () => {
    const [port] = await freePorts(1);
    const dir = join(root, 'standalone');
    mkdirSync(dir);
    const cfg = join(dir, 'zoo.cfg');
    writeFileSync(cfg, `tickTime=100\ndataDir=${join(dir, 'data')}\nserver.1=127.0.0.1:${port}\nadmin.serverPort=0\n4lw.commands.whitelist=srvr,mntr\n`);
    const data = join(dir, 'data');

    const start = await conclave(['member', 'start', '--config', cfg]);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /^Using config: .*zoo\.cfg\nStarting conclave member 1 \.\.\. STARTED\npid \d+, admin http:\/\/127\.0\.0\.1:\d+, log .*conclave_member\.out\n$/);
    const pid = pidOf(data);
    assert.ok(alive(pid));
    assert.equal(Number(/pid (\d+)/.exec(start.stdout)![1]), pid);
    const run = JSON.parse(readFileSync(join(data, 'conclave_member.json'), 'utf8')) as { pid: number; admin: string };
    assert.equal(run.pid, pid);

    const status = await conclave(['member', 'status', '--config', cfg]);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.match(status.stdout, new RegExp(`Member: 1 \\(pid ${pid}\\)\\nMode: standalone\\nLeader: 1\\nZxid: 0x[0-9a-f]+ \\(epoch 1\\)\\nServing: yes\\n`));
    assert.ok(status.stdout.includes(`Admin: ${run.admin}`));

    // The member serves remote sessions on its address: the CLI, one-shot and piped.
    const create = await conclave(['cli', '-server', `127.0.0.1:${port}`, 'create', '/ops', 'from the cli']);
    assert.equal(create.code, 0, create.stderr);
    assert.equal(create.stdout, 'Created /ops\n');
    const piped = await conclave(['cli', '-server', `127.0.0.1:${port}`], { input: 'get /ops\nls /\nget /missing\n' });
    assert.equal(piped.stdout, 'from the cli\n[ops, zookeeper]\n');
    assert.equal(piped.stderr, 'Node does not exist: /missing\n');
    assert.equal(piped.code, 1);

    // The admin endpoint and the metrics see the write.
    const mntr = await (await fetch(`${run.admin}/commands/mntr`)).json() as Record<string, unknown>;
    assert.equal(mntr.zk_server_state, 'standalone');
    assert.equal(mntr.zk_znode_count, 5);
    const metrics = await (await fetch(`${run.admin}/metrics`)).text();
    assert.match(metrics, /^conclave_znode_count\{member="1"\} 5$/m);
    assert.equal((await fetch(`${run.admin}/commands/conf`)).status, 403, 'the whitelist of zoo.cfg applies');

    const ens = await conclave(['status', '--config', cfg]);
    assert.equal(ens.code, 0, ens.stderr);
    assert.match(ens.stdout, /^SERVER +MEMBER +MODE +LEADER +ZXID +SERVING +SESSIONS/);
    assert.match(ens.stdout, /\n127\.0\.0\.1:\d+ +1 +standalone +1 +0x[0-9a-f]+ +yes +0/);
    assert.match(ens.stdout, /1\/1 members answered; leader 1; 1 serving\n$/);

    const again = await conclave(['member', 'start', '--config', cfg]);
    assert.equal(again.code, 1);
    assert.equal(oneLine(again), `member 1 is already running as process ${pid} (pid file ${join(data, 'conclave_member.pid')}); use conclave member restart --config ${cfg} to restart it`);

    const stop = await conclave(['member', 'stop', '--config', cfg]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, new RegExp(`Stopping conclave member 1 \\(pid ${pid}\\) \\.\\.\\. STOPPED\\n$`));
    assert.ok(!alive(pid));
    assert.ok(!existsSync(join(data, 'conclave_member.pid')), 'the pid file is removed');
    const log = readFileSync(join(data, 'conclave_member.out'), 'utf8');
    assert.match(log, /"msg":"member process stopping"/);
    assert.match(log, /"msg":"member process stopped"/, 'graceful: member.stop() ran');

    const after = await conclave(['member', 'status', '--config', cfg]);
    assert.equal(after.code, 3);
    assert.match(after.stdout, /member 1 is not running\n$/);
    const stopAgain = await conclave(['member', 'stop', '--config', cfg]);
    assert.equal(stopAgain.code, 0);
    assert.match(stopAgain.stdout, /member 1 is not running \(no pid file at /);

    // The data survived: a restart recovers /ops from LevelDB.
    const restart = await conclave(['member', 'restart', '--config', cfg]);
    assert.equal(restart.code, 0, restart.stderr);
    pidOf(data);
    const get = await conclave(['cli', '-server', `127.0.0.1:${port}`, 'get', '/ops']);
    assert.equal(get.stdout, 'from the cli\n');
    assert.equal((await conclave(['member', 'stop', '--config', cfg])).code, 0);
  });

  it('three member processes from one zoo.cfg (myid files) elect a leader; conclave status shows each role', async () => {
    const ports = await freePorts(6);
    const dir = join(root, 'ensemble');
    const cfgs: string[] = [];
    const dataDirs: string[] = [];
    for (const id of [1, 2, 3]) {
      const d = join(dir, `m${id}`);
      mkdirSync(join(d, 'data'), { recursive: true });
      writeFileSync(join(d, 'data', 'myid'), `${id}\n`);
      const cfg = join(d, 'zoo.cfg');
      writeFileSync(cfg, [
        'tickTime=100', 'initLimit=20', 'syncLimit=10', 'dataDir=data', 'secret=ops-test-secret-0123456789',
        ...[1, 2, 3].map((i) => `server.${i}=127.0.0.1:${ports[i - 1]}:${ports[i - 1]! + 1000}`), `admin.serverPort=${ports[2 + id]}`, '',
      ].join('\n'));
      cfgs.push(cfg);
      dataDirs.push(join(d, 'data'));
    }
    const starts = await Promise.all(cfgs.map((c) => conclave(['member', 'start', '--config', c])));
    for (const s of starts) assert.equal(s.code, 0, s.stderr);
    assert.match(starts[0]!.stderr, /warning: .*the election ports in server\.N lines/);
    for (const d of dataDirs) pidOf(d);
    const servers = [3, 4, 5].map((i) => `127.0.0.1:${ports[i]}`).join(',');
    let out = '';
    for (let i = 0; i < 50; i++) {
      const r = await conclave(['status', '--servers', servers]);
      out = r.stdout;
      const l = /3\/3 members answered; leader (\d); 3 serving/.exec(out);
      // The leader's row lists both learners once both finished syncing.
      if (r.code === 0 && l && (out.split('\n')[Number(l[1])] ?? '').match(/\d+:\d+ \d+:\d+$/)) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    const leader = Number(/3\/3 members answered; leader (\d); 3 serving/.exec(out)?.[1]);
    assert.ok(leader >= 1, out);
    const rows = out.split('\n').slice(1, 4);
    assert.deepEqual(rows.map((r) => r.split(/ +/).slice(1, 4)), [1, 2, 3].map((id) => [String(id), id === leader ? 'leader' : 'follower', String(leader)]));
    const others = [1, 2, 3].filter((id) => id !== leader);
    assert.match(rows[leader - 1]!, new RegExp(`${others[0]}:\\d+ ${others[1]}:\\d+$`), `the leader shows its learners' lag:\n${out}`);
    const follower = others[0]!;
    // Stop one follower: status says who is missing, exit code 1.
    assert.equal((await conclave(['member', 'stop', '--config', cfgs[follower - 1]!])).code, 0);
    const partial = await conclave(['status', '--servers', servers]);
    assert.equal(partial.code, 1);
    assert.match(partial.stdout, /127\.0\.0\.1:\d+ +- +unreachable +- +- +- +- +ECONNREFUSED/);
    assert.match(partial.stdout, new RegExp(`2/3 members answered; leader ${leader}; 2 serving`));
    await Promise.all(cfgs.filter((_, i) => i !== follower - 1).map((c) => conclave(['member', 'stop', '--config', c])));
  });

  describe('start-up problems: one line that says what to fix, non-zero exit', () => {
    const cfgIn = (name: string, lines: string[]): { dir: string; cfg: string } => {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      const cfg = join(dir, 'zoo.cfg');
      writeFileSync(cfg, lines.join('\n') + '\n');
      return { dir, cfg };
    };

    it('each problem, daemonized and in the foreground', async () => {
      const [busyPort, adminPort] = await freePorts(2);
      const busy = net.createServer();
      await new Promise<void>((r) => busy.listen(busyPort, '127.0.0.1', r));
      try {
        const file = join(root, 'a-file');
        writeFileSync(file, 'not a directory');
        const notDir = cfgIn('notdir', [`dataDir=${join(file, 'data')}`]);
        const inUse = cfgIn('inuse', [`dataDir=${join(root, 'inuse', 'data')}`, 'tickTime=100', `server.1=127.0.0.1:${busyPort}`, 'admin.serverPort=0']);
        const adminBusy = cfgIn('adminbusy', [`dataDir=${join(root, 'adminbusy', 'data')}`, 'tickTime=100', `admin.serverPort=${busyPort}`]);
        const notMine = cfgIn('notmine', [`dataDir=${join(root, 'notmine', 'data')}`, 'server.1=127.0.0.1:1', 'server.2=127.0.0.1:2', 'server.3=127.0.0.1:3']);
        mkdirSync(join(root, 'notmine', 'data'));
        writeFileSync(join(root, 'notmine', 'data', 'myid'), '4\n');
        const noSecret = cfgIn('nosecret', [`dataDir=${join(root, 'nosecret', 'data')}`, 'myid=1', `server.1=127.0.0.1:${adminPort}`, 'server.2=127.0.0.1:2', 'server.3=127.0.0.1:3']);
        const badValue = cfgIn('badvalue', [`dataDir=${join(root, 'badvalue')}`, 'tickTime=2s']);
        const cases: [string, { cfg: string }, string][] = [
          ['data directory not writable', notDir, `dataDir ${join(file, 'data')} cannot be created: part of that path is a file, not a directory; set dataDir to a directory path`],
          ['port in use', inUse, `127.0.0.1:${busyPort} is already in use (server.1 (${inUse.cfg}:3)): another member or program listens there; stop it (see: lsof -i :${busyPort}) or give this member another port`],
          ['admin port in use', adminBusy, `the admin endpoint cannot listen on 127.0.0.1:${busyPort}: the address is already in use (another member or program listens there); stop it or set another admin.serverPort (admin.serverPort in ${adminBusy.cfg}; 0 = any free port)`],
          ['myid not in the ensemble', notMine, `myid 4 (from ${join(root, 'notmine', 'data', 'myid')}) is not in the ensemble of ${notMine.cfg} (server.1, server.2, server.3); fix myid or add a server.4=host:2888:3888 line`],
          ['missing secret', noSecret, `no ensemble secret in ${noSecret.cfg}: add secret=<at least 16 random characters, the same on every member> (e.g. from: openssl rand -hex 16), or secretFile=<path>, or set CONCLAVE_SECRET`],
          ['bad value', badValue, `${badValue.cfg}:2: tickTime='2s' is not a whole number of milliseconds; write e.g. tickTime=2000`],
        ];
        const env = { ...process.env };
        delete env.CONCLAVE_SECRET;
        const results = await Promise.all(cases.map(async ([, c]) => ({
          daemon: await conclave(['member', 'start', '--config', c.cfg]),
          foreground: await conclave(['member', '--config', c.cfg]),
        })));
        cases.forEach(([what, , message], i) => {
          const { daemon, foreground } = results[i]!;
          assert.equal(foreground.code, 1, `${what}: exit code`);
          assert.equal(oneLine(foreground), message, `${what} (foreground)`);
          assert.equal(daemon.code, 1, `${what}: exit code (start)`);
          assert.equal(oneLine(daemon), message, `${what} (start)`);
        });
        // What reached the child (environment problems) says FAILED after "Starting".
        assert.match(results[1]!.daemon.stdout, /Starting conclave member 1 \.\.\. FAILED\n$/);
        // Nothing keeps running, and no pid file is left behind.
        for (const n of ['inuse', 'adminbusy']) assert.ok(!existsSync(join(root, n, 'data', 'conclave_member.pid')), n);
      } finally {
        await new Promise((r) => busy.close(r));
      }
    });

    it('a data directory the user may not write', async () => {
      const { dir, cfg } = cfgIn('readonly', ['dataDir=data']);
      const data = join(dir, 'data');
      mkdirSync(data);
      chmodSync(data, 0o500);
      // Root writes anywhere. As root the member runs as 'nobody' (65534), owner of the read-only
      // directory, when nobody can read the sources; otherwise the directory is made immutable
      // (chattr +i: refused even to root, with EPERM).
      const asRoot = process.getuid?.() === 0;
      let as: { uid?: number } = {};
      let immutable = false;
      if (asRoot) {
        const readable = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(MAIN)})`], { uid: 65534, gid: 65534 }).status === 0;
        if (readable) {
          chmodSync(root, 0o755);
          chownSync(data, 65534, 65534);
          as = { uid: 65534 };
        } else {
          const c = spawnSync('chattr', ['+i', data]);
          assert.equal(c.status, 0, `running as root, and neither can 'nobody' read ${MAIN} nor can chattr +i make a directory read-only here: ${String(c.stderr)}`);
          immutable = true;
        }
      }
      try {
        const r = await conclave(['member', '--config', cfg], as);
        assert.equal(r.code, 1);
        assert.match(oneLine(r), new RegExp(`^dataDir .*data is not writable by this user \\(${immutable ? 'EPERM' : 'EACCES'}\\); fix its owner or permissions \\(chown/chmod\\), or set dataDir to a writable directory$`));
      } finally {
        if (immutable) spawnSync('chattr', ['-i', data]);
        chmodSync(data, 0o700);
        if (asRoot) chmodSync(root, 0o700);
      }
    });
  });
});
