import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { startMember, type Member } from '../../src/api/member.js';
import { digest } from '../../src/core/acl.js';
import { parseCliArgs, runCli } from '../../src/cli/commands/cli.js';
import { formatStat, javaDate, parseAclSpec, tokenize, ZkShell } from '../../src/cli/zkcli.js';

/** A shell on an in-process member's session, capturing what it prints (the code path of `conclave cli`). */
function shellOn(member: Member): { shell: ZkShell; out: string[]; err: string[]; events: string[]; run(line: string): Promise<string[]> } {
  const out: string[] = [];
  const err: string[] = [];
  const events: string[] = [];
  const shell = new ZkShell({
    servers: '127.0.0.1:2181', open: (_servers, options) => member.session(options),
    output: { out: (l) => out.push(l), err: (l) => err.push(l), event: (ls) => events.push(...ls) },
  });
  return {
    shell, out, err, events,
    async run(line: string) {
      out.length = 0;
      err.length = 0;
      await shell.execute(line);
      return [...out, ...err.map((e) => `! ${e}`)];
    },
  };
}

const STAT_KEYS = ['cZxid', 'ctime', 'mZxid', 'mtime', 'pZxid', 'cversion', 'dataVersion', 'aclVersion', 'ephemeralOwner', 'dataLength', 'numChildren'];

function statOf(lines: string[]): Record<string, string> {
  const tail = lines.slice(-11);
  assert.deepEqual(tail.map((l) => l.split(' = ')[0]), STAT_KEYS, 'zkCli stat layout');
  return Object.fromEntries(tail.map((l) => l.split(' = ') as [string, string]));
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
}

describe('ops/cli: the zkCli-like shell (SPEC §7)', function () {
  this.timeout(20_000);

  describe('parsing', () => {
    it('tokenizes like zkCli: spaces separate, quotes group, backslash escapes inside double quotes', () => {
      assert.deepEqual(tokenize('create /a "hello world"'), ['create', '/a', 'hello world']);
      assert.deepEqual(tokenize("set  /a 'it''s'  "), ['set', '/a', 'its']);
      assert.deepEqual(tokenize('set /a "say \\"hi\\""'), ['set', '/a', 'say "hi"']);
      assert.deepEqual(tokenize('create /e ""'), ['create', '/e', '']);
      assert.throws(() => tokenize('get "/a'), /unterminated " quote/);
    });

    it('reads ZooKeeper ACL syntax: scheme:id:perms[,…], digest ids with a colon, auth::, ip ranges', () => {
      assert.deepEqual(parseAclSpec('world:anyone:cdrwa,digest:bob:abc=:r,ip:10.0.0.0/8:rw,auth::a'), [
        { scheme: 'world', id: 'anyone', perms: 31 },
        { scheme: 'digest', id: 'bob:abc=', perms: 1 },
        { scheme: 'ip', id: '10.0.0.0/8', perms: 3 },
        { scheme: 'auth', id: '', perms: 16 },
      ]);
      assert.throws(() => parseAclSpec('world:anyone'), /does not have the form scheme:id:perms/);
      assert.throws(() => parseAclSpec('world:anyone:rwx'), /'rwx' in 'world:anyone:rwx' is not a set of permissions/);
      assert.throws(() => parseAclSpec(','), /the ACL is empty/);
    });

    it('reads zkCli\'s command line: -server, -timeout, -r, --auth, --config; the rest is a one-shot command', () => {
      assert.deepEqual(parseCliArgs(['-server', 'h1:2181,h2:2181', '-timeout', '5000', 'get', '-s', '/a']), {
        servers: 'h1:2181,h2:2181', timeoutMs: 5000, readOnly: false, auth: [], help: false, command: ['get', '-s', '/a'],
      });
      assert.deepEqual(parseCliArgs(['--server', 'h:1', '--auth', 'digest:bob:pw', '-r']), {
        servers: 'h:1', timeoutMs: undefined, readOnly: true, auth: [{ scheme: 'digest', credentials: 'bob:pw' }], help: false, command: [],
      });
      assert.equal(parseCliArgs([]).servers, '127.0.0.1:2181', "zkCli's default");
      assert.deepEqual(parseCliArgs(['--', '-server']).command, ['-server']);
      assert.throws(() => parseCliArgs(['-timeout', 'soon']), /-timeout 'soon' is not a number of milliseconds/);
      assert.throws(() => parseCliArgs(['--auth', 'bob']), /--auth 'bob' is not scheme:credentials/);
      const dir = mkdtempSync(join(tmpdir(), 'conclave-cli-cfg-'));
      try {
        writeFileSync(join(dir, 'zoo.cfg'), `dataDir=${dir}\nmyid=1\nserver.1=127.0.0.1:2888\nserver.2=0.0.0.0:2889\nserver.3=127.0.0.1:2890\n`);
        assert.equal(parseCliArgs(['--config', join(dir, 'zoo.cfg'), 'ls', '/']).servers, '127.0.0.1:2888,127.0.0.1:2889,127.0.0.1:2890');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('prints times as Java Date.toString() in UTC and stats in zkCli\'s layout', () => {
      assert.equal(javaDate(0), 'Thu Jan 01 00:00:00 UTC 1970');
      assert.equal(javaDate(Date.UTC(2024, 1, 29, 13, 5, 9)), 'Thu Feb 29 13:05:09 UTC 2024');
      const lines = formatStat({ czxid: 0x100000002n, mzxid: 0x100000003n, pzxid: 0x100000004n, ctime: 0, mtime: 0, version: 1, cversion: 2, aversion: 3, ephemeralOwner: 0xabcn, dataLength: 5, numChildren: 6 });
      assert.deepEqual(lines, [
        'cZxid = 0x100000002', 'ctime = Thu Jan 01 00:00:00 UTC 1970', 'mZxid = 0x100000003', 'mtime = Thu Jan 01 00:00:00 UTC 1970',
        'pZxid = 0x100000004', 'cversion = 2', 'dataVersion = 1', 'aclVersion = 3', 'ephemeralOwner = 0xabc', 'dataLength = 5', 'numChildren = 6',
      ]);
    });
  });

  describe('commands against a live member session', () => {
    let member: Member;
    let sh: ReturnType<typeof shellOn>;
    beforeEach(async () => {
      member = await startMember({ id: 1, tickMs: 50, logLevel: 'error', superDigest: digest('super', 'pw') });
      sh = shellOn(member);
      await sh.shell.connect();
    });
    afterEach(async () => {
      await sh.shell.closeSession().catch(() => undefined);
      await member.stop();
    });

    it('create (all modes), ls, ls -s, ls -R, get -s, getAllChildrenNumber, getEphemerals', async () => {
      assert.deepEqual(await sh.run('create /app "hello world"'), ['Created /app']);
      assert.deepEqual(await sh.run('create /app/cfg'), ['Created /app/cfg']);
      assert.deepEqual(await sh.run('create -s /app/q- x'), ['Created /app/q-0000000001']);
      assert.deepEqual(await sh.run('create -e /app/eph'), ['Created /app/eph']);
      assert.deepEqual(await sh.run('create -s -e /app/es- x'), ['Created /app/es-0000000003']);
      assert.deepEqual(await sh.run('create -c /box'), ['Created /box']);
      assert.deepEqual(await sh.run('create -t 60000 /ttl'), ['Created /ttl']);
      assert.deepEqual(await sh.run('create /app/eph/kid'), ['! Ephemerals cannot have children: /app/eph/kid']);
      assert.deepEqual(await sh.run('create /app x'), ['! Node already exists: /app']);
      assert.deepEqual(await sh.run('create -c -e /bad'), ['! -c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.']);
      assert.deepEqual(await sh.run('create -e -t 10 /bad'), ['! TTLs cannot be used with Ephemeral or Container znodes.']);
      assert.deepEqual(await sh.run('ls /'), ['[app, box, ttl, zookeeper]']);
      const ls = await sh.run('ls -s /app');
      assert.equal(ls[0], '[cfg, eph, es-0000000003, q-0000000001]');
      assert.equal(statOf(ls).numChildren, '4');
      assert.deepEqual(await sh.run('ls -R /app'), ['/app', '/app/cfg', '/app/eph', '/app/es-0000000003', '/app/q-0000000001']);
      const get = await sh.run('get -s /app');
      assert.equal(get[0], 'hello world');
      const st = statOf(get);
      assert.equal(st.dataLength, '11');
      assert.equal(st.dataVersion, '0');
      assert.equal(st.cZxid, '0x' + (await (await member.session()).exists('/app'))!.czxid.toString(16));
      assert.match(st.ctime!, /^\w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}$/);
      assert.deepEqual(await sh.run('get /app/cfg'), ['']);
      assert.deepEqual(await sh.run('getAllChildrenNumber /app'), ['4']);
      assert.deepEqual(await sh.run('getEphemerals'), ['[/app/eph, /app/es-0000000003]']);
      assert.deepEqual(await sh.run('getEphemerals /app/e'), ['[/app/eph, /app/es-0000000003]']);
      assert.deepEqual(await sh.run('getEphemerals /box'), ['[]']);
      assert.deepEqual(await sh.run('get /nope'), ['! Node does not exist: /nope']);
      const bad = await sh.run('ls bad');
      assert.equal(bad.length, 1);
      assert.match(bad[0]!, /^! Arguments are not valid : bad \(.+\)$/);
    });

    it('set and delete with versions (-v and zkCli 3.4\'s trailing version), stat, deleteall, sync', async () => {
      await sh.run('create /v one');
      assert.deepEqual(await sh.run('set /v two'), []);
      const set = await sh.run('set -s -v 1 /v three');
      assert.equal(statOf(set).dataVersion, '2');
      assert.deepEqual(await sh.run('set -v 1 /v four'), ['! version No is not valid : /v']);
      assert.deepEqual(await sh.run('set /v four 1'), ['! version No is not valid : /v'], 'trailing version, as zkCli 3.4');
      assert.deepEqual(await sh.run('set /v four 2'), []);
      assert.deepEqual(await sh.run('get /v'), ['four']);
      assert.deepEqual(await sh.run('set /v -1'), [], 'data that looks like an option stays data');
      assert.deepEqual(await sh.run('get /v'), ['-1']);
      assert.equal(statOf(await sh.run('stat /v')).dataVersion, '4');
      assert.deepEqual(await sh.run('stat /none'), ['! Node does not exist: /none']);
      assert.deepEqual(await sh.run('delete -v 0 /v'), ['! version No is not valid : /v']);
      assert.deepEqual(await sh.run('delete /v 0'), ['! version No is not valid : /v']);
      assert.deepEqual(await sh.run('delete -v 4 /v'), []);
      await sh.run('create /t');
      await sh.run('create /t/a');
      await sh.run('create /t/a/b');
      assert.deepEqual(await sh.run('delete /t'), ['! Node not empty: /t']);
      assert.deepEqual(await sh.run('deleteall /t'), []);
      assert.deepEqual(await sh.run('ls /'), ['[zookeeper]']);
      assert.deepEqual(await sh.run('sync /'), ['Sync is OK']);
      assert.deepEqual(await sh.run('set -v x /v y'), ["! -v version 'x' is not a whole number"]);
      assert.deepEqual(await sh.run('set /v'), ['! wrong number of arguments; usage: set [-s] [-v version] path data']);
      assert.deepEqual(await sh.run('get -v /v'), ['! wrong number of arguments; usage: get [-s] [-w] path'], '-v is not an option of get, so it is an argument');
    });

    it('getAcl / setAcl in ZooKeeper syntax, addauth, NOAUTH as zkCli says it', async () => {
      await sh.run('create /acl data');
      assert.deepEqual(await sh.run('getAcl /acl'), ["'world,'anyone", ': cdrwa']);
      const bob = digest('bob', 'bobpw');
      assert.deepEqual(await sh.run(`setAcl /acl digest:${bob}:cdrwa,world:anyone:r`), []);
      assert.deepEqual(await sh.run('getAcl /acl'), ["'digest,'bob:x", ': cdrwa', "'world,'anyone", ': r'], 'hashes hidden without ADMIN');
      assert.deepEqual(await sh.run('set /acl x'), ['! Insufficient permission : /acl']);
      assert.deepEqual(await sh.run('addauth digest bob:bobpw'), []);
      assert.deepEqual(await sh.run('set /acl x'), []);
      const full = await sh.run('getAcl -s /acl');
      assert.deepEqual(full.slice(0, 4), [`'digest,'${bob}`, ': cdrwa', "'world,'anyone", ': r']);
      assert.equal(statOf(full).aclVersion, '1');
      assert.deepEqual(await sh.run('setAcl -v 0 /acl world:anyone:cdrwa'), ['! version No is not valid : /acl']);
      assert.deepEqual(await sh.run('setAcl /acl world:anyone:xyz'), ["! 'xyz' in 'world:anyone:xyz' is not a set of permissions (letters of cdrwa)"]);
      await sh.run('create /tree');
      await sh.run('create /tree/a');
      assert.deepEqual(await sh.run('setAcl -R /tree world:anyone:r'), []);
      assert.deepEqual(await sh.run('getAcl /tree/a'), ["'world,'anyone", ': r']);
      assert.deepEqual(await sh.run('addauth digest nocolon'), ["! Authentication is not valid : digest credentials must be 'user:password'"]);
    });

    it('watches print WATCHER:: events as zkCli does: get -w, ls -w, stat -w, addWatch; printwatches off silences them', async () => {
      await sh.run('create /w a');
      await sh.run('get -w /w');
      await sh.run('ls -w /w');
      await sh.run('stat -w /w2');
      await sh.run('set /w b');
      await sh.run('create /w/kid');
      await sh.run('create /w2');
      await settle();
      assert.deepEqual(sh.events, [
        '', 'WATCHER::', '', 'WatchedEvent state:SyncConnected type:NodeDataChanged path:/w',
        '', 'WATCHER::', '', 'WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/w',
        '', 'WATCHER::', '', 'WatchedEvent state:SyncConnected type:NodeCreated path:/w2',
      ]);
      sh.events.length = 0;
      await sh.run('set /w c');
      await settle();
      assert.equal(sh.events.length, 0, 'one-time watches');
      await sh.run('addWatch -m PERSISTENT_RECURSIVE /w');
      await sh.run('set /w/kid 1');
      await sh.run('set /w/kid 2');
      await settle();
      assert.deepEqual(sh.events.filter((l) => l.startsWith('Watched')), [
        'WatchedEvent state:SyncConnected type:NodeDataChanged path:/w/kid',
        'WatchedEvent state:SyncConnected type:NodeDataChanged path:/w/kid',
      ]);
      sh.events.length = 0;
      assert.deepEqual(await sh.run('printwatches off'), []);
      await sh.run('get -w /w');
      await sh.run('set /w d');
      await settle();
      assert.deepEqual(sh.events, []);
      assert.deepEqual(await sh.run('printwatches'), ['printwatches is off']);
      assert.deepEqual(await sh.run('addWatch -m ONCE /w'), ['! -m ONCE: use PERSISTENT or PERSISTENT_RECURSIVE']);
    });

    it('removewatches path [-c|-d|-a] [-l]: removed watches print nothing; no watch says so', async () => {
      await sh.run('create /rw a');
      await sh.run('get -w /rw');
      await sh.run('ls -w /rw');
      assert.deepEqual(await sh.run('removewatches /rw -d'), []);
      await sh.run('set /rw b');
      await settle();
      assert.deepEqual(sh.events, [], 'the data watch is gone');
      assert.deepEqual(await sh.run('removewatches /rw -c -l'), []);
      await sh.run('create /rw/k');
      await settle();
      assert.deepEqual(sh.events, [], 'the child watch is gone (here; the member forgets it when it fires)');
      const none = await sh.run('removewatches /rw');
      assert.equal(none.length, 1);
      assert.match(none[0]!, /^! .*NOWATCHER|^! .*no watch/i);
      assert.deepEqual(await sh.run('removewatches /rw -c -d'), ['! give one of -c, -d, -a']);
    });

    it('prompt, history, redo, close, connect, quit, help, unknown commands', async () => {
      assert.equal(sh.shell.prompt(), '[zk: 127.0.0.1:2181(CONNECTED) 0] ');
      await sh.run('create /h 1');
      await sh.run('get /h');
      assert.equal(sh.shell.prompt(), '[zk: 127.0.0.1:2181(CONNECTED) 2] ');
      assert.deepEqual(await sh.run('history'), ['0 - create /h 1', '1 - get /h', '2 - history']);
      assert.deepEqual(await sh.run('redo 1'), ['1']);
      assert.deepEqual(await sh.run('redo 99'), ['! no command number 99 in the history']);
      const help = await sh.run('help');
      assert.equal(help[0], 'ZooKeeper -server host:port[,host:port] [-timeout ms] [--auth scheme:auth] cmd args');
      for (const c of ['create [-s] [-e] [-c] [-t ttl] path [data] [acl]', 'ls [-s] [-w] [-R] path', 'get [-s] [-w] path', 'set [-s] [-v version] path data', 'delete [-v version] path', 'deleteall path [-b batch size]', 'stat [-w] path', 'getAcl [-s] path', 'setAcl [-s] [-v version] [-R] path acl', 'addauth scheme auth', 'sync path', 'getEphemerals [path]', 'getAllChildrenNumber path', 'close', 'quit']) {
        assert.ok(help.includes(`\t${c}`), c);
      }
      const unknown = await sh.run('frobnicate /a');
      assert.equal(unknown[0], '! ZooKeeper -server host:port[,host:port] [-timeout ms] [--auth scheme:auth] cmd args');
      await sh.run('create -e /mine');
      assert.deepEqual(await sh.run('close'), []);
      assert.equal(sh.shell.state, 'CLOSED');
      assert.match(sh.shell.prompt(), /^\[zk: 127\.0\.0\.1:2181\(CLOSED\) \d+\] $/);
      assert.deepEqual(await sh.run('ls /'), ['! Not connected (the session is CLOSED); use connect to open a new one']);
      assert.deepEqual(await sh.run('connect'), []);
      assert.equal(sh.shell.state, 'CONNECTED');
      assert.deepEqual(await sh.run('ls /'), ['[h, zookeeper]'], 'the closed session took its ephemeral with it');
      await sh.run('quit');
      assert.equal(sh.shell.quitting, true);
      assert.equal(sh.shell.state, 'CLOSED');
    });

    it('completes command names and paths from the tree', async () => {
      await sh.run('create /alpha');
      await sh.run('create /alpha/one');
      await sh.run('create /alpha/other');
      assert.deepEqual((await sh.shell.complete('get'))[0], ['get ', 'getAcl ', 'getEphemerals ', 'getAllChildrenNumber ']);
      assert.deepEqual(await sh.shell.complete('ls /al'), [['/alpha'], '/al']);
      assert.deepEqual(await sh.shell.complete('get /alpha/o'), [['/alpha/one', '/alpha/other'], '/alpha/o']);
      assert.deepEqual(await sh.shell.complete('get /missing/x'), [[], '/missing/x']);
    });
  });

  describe('runCli: piped input and one-shot mode (what `conclave cli` runs)', () => {
    let member: Member;
    before(async () => {
      member = await startMember({ id: 1, tickMs: 50, logLevel: 'error' });
    });
    after(() => member.stop());
    const io = (input: string): { input: PassThrough; output: PassThrough; error: PassThrough; text(): { out: string; err: string } } => {
      const i = new PassThrough();
      const o = new PassThrough();
      const e = new PassThrough();
      let out = '';
      let err = '';
      o.on('data', (c: Buffer) => (out += c.toString()));
      e.on('data', (c: Buffer) => (err += c.toString()));
      i.end(input);
      return { input: i, output: o, error: e, text: () => ({ out, err }) };
    };
    const open = (_servers: string, options: object): ReturnType<Member['session']> => member.session(options);

    it('runs piped commands in order without prompts; exit code 1 when one failed', async () => {
      const s = io('create /p "piped data"\nget /p\nls /\nget /none\n');
      const code = await runCli(parseCliArgs(['-server', 'x:1']), open, s);
      assert.equal(code, 1);
      assert.equal(s.text().out, 'Created /p\npiped data\n[p, zookeeper]\n');
      assert.equal(s.text().err, 'Node does not exist: /none\n');
      const ok = io('delete /p\n');
      assert.equal(await runCli(parseCliArgs([]), open, ok), 0);
    });

    it('one-shot: `conclave cli -server … get -s /a` runs one command and closes the session', async () => {
      const s0 = await member.session();
      await s0.create('/one', 'shot');
      const before = member.localSessionsReport().length;
      const s = io('');
      assert.equal(await runCli(parseCliArgs(['-server', 'x:1', 'get', '-s', '/one']), open, s), 0);
      const out = s.text().out.trim().split('\n');
      assert.equal(out[0], 'shot');
      statOf(out);
      assert.equal(member.localSessionsReport().length, before, 'its session is closed');
      const bad = io('');
      assert.equal(await runCli(parseCliArgs(['-server', 'x:1', 'create', '/one', 'again']), open, bad), 1);
      assert.equal(bad.text().err, 'Node already exists: /one\n');
      const spaced = io('');
      assert.equal(await runCli(parseCliArgs(['set', '/one', 'with spaces']), open, spaced), 0);
      assert.equal(new TextDecoder().decode((await s0.getData('/one')).data), 'with spaces');
      await s0.close();
    });
  });
});
