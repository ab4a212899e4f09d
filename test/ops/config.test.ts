import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseZooCfg, toMemberConfig } from '../../src/api/config.js';

/** The one-line error parseZooCfg throws for `text` (asserts it is a ConfigError, one line). */
function error(text: string): ConfigError {
  try {
    parseZooCfg(text, { source: 'zoo.cfg', baseDir: '/srv' });
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e;
  }
  assert.fail(`no error for:\n${text}`);
}

const ENSEMBLE = `# a three-member ensemble, ZooKeeper style
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/conclave
dataLogDir=/fast/conclave-log
clientPort=2181
clientPortAddress=127.0.0.1
server.1=10.0.0.1:2888:3888
server.2=10.0.0.2:2888:3888;2181
server.3=[fd00::3]:2888:3888:observer
snapCount=50000
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
maxClientCnxns=0
jute.maxbuffer=4194304
4lw.commands.whitelist=srvr, mntr,ruok
minSessionTimeout=4000
maxSessionTimeout=60000
forceSync=no
secret=0123456789abcdef0123
superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
admin.serverPort=9090
admin.serverAddress=0.0.0.0
logLevel=info
`;

describe('ops/config: zoo.cfg parsing (SPEC §7)', () => {
  it('reads every supported key of a ZooKeeper-style ensemble config', () => {
    const cfg = parseZooCfg(ENSEMBLE, { source: 'zoo.cfg', baseDir: '/srv' });
    assert.equal(cfg.tickTime, 2000);
    assert.equal(cfg.initLimit, 10);
    assert.equal(cfg.syncLimit, 5);
    assert.equal(cfg.dataDir, '/var/lib/conclave');
    assert.equal(cfg.dataLogDir, '/fast/conclave-log');
    assert.equal(cfg.clientPort, 2181);
    assert.equal(cfg.clientPortAddress, '127.0.0.1');
    assert.deepEqual(cfg.servers.map((s) => [s.id, s.address, s.port, s.electionPort, s.role, s.clientAddress, s.line]), [
      [1, '10.0.0.1:2888', 2888, 3888, 'participant', undefined, 9],
      [2, '10.0.0.2:2888', 2888, 3888, 'participant', '0.0.0.0:2181', 10],
      [3, '[fd00::3]:2888', 2888, 3888, 'observer', undefined, 11],
    ]);
    assert.equal(cfg.snapCount, 50000);
    assert.deepEqual(cfg.autopurge, { snapRetainCount: 5, purgeIntervalHours: 24 });
    assert.equal(cfg.maxClientCnxns, 0);
    assert.equal(cfg.maxDataBytes, 4194304);
    assert.deepEqual(cfg.whitelist, ['srvr', 'mntr', 'ruok']);
    assert.equal(cfg.minSessionTimeout, 4000);
    assert.equal(cfg.maxSessionTimeout, 60000);
    assert.equal(cfg.forceSync, false);
    assert.equal(cfg.secret, '0123456789abcdef0123');
    assert.equal(cfg.superDigest, 'super:D/InIHSb7yEEbrWz8b9l71RjZJU=');
    assert.deepEqual(cfg.admin, { enabled: true, host: '0.0.0.0', port: 9090 });
    assert.equal(cfg.logLevel, 'info');
    // An even number of voters is legal but worth a word; election ports are not used.
    assert.deepEqual(cfg.warnings, [
      'zoo.cfg: 2 voting members tolerate no more failures than 1; prefer an odd number',
      'zoo.cfg: the election ports in server.N lines (host:port:ELECTIONPORT) are not used: conclave carries election and broadcast on one connection per pair of members',
    ]);
  });

  it('maps to a MemberConfig in conclave units (ms, bytes), with ZooKeeper defaults derived from tickTime', () => {
    const cfg = parseZooCfg(ENSEMBLE, { baseDir: '/srv' });
    const m = toMemberConfig(cfg, 2);
    assert.deepEqual(m, {
      id: 2,
      storage: '/fast/conclave-log',
      ensemble: {
        1: { address: '10.0.0.1:2888', role: 'participant' },
        2: { address: '10.0.0.2:2888', role: 'participant' },
        3: { address: '[fd00::3]:2888', role: 'observer' },
      },
      tickMs: 2000, initLimit: 10, syncLimit: 5, snapCount: 50000, forceSync: false, maxDataBytes: 4194304,
      minSessionTimeoutMs: 4000, maxSessionTimeoutMs: 60000, maxSessionsPerOrigin: Number.MAX_SAFE_INTEGER,
      adminCommands: ['srvr', 'mntr', 'ruok'], superDigest: 'super:D/InIHSb7yEEbrWz8b9l71RjZJU=', secret: '0123456789abcdef0123',
      logLevel: 'info', autopurge: { snapRetainCount: 5, purgeIntervalMs: 24 * 3_600_000 },
    });
    const minimal = toMemberConfig(parseZooCfg('tickTime=100\ndataDir=d\n', { baseDir: '/srv' }), 1);
    assert.deepEqual(minimal, {
      id: 1, storage: '/srv/d', tickMs: 100, minSessionTimeoutMs: 200, maxSessionTimeoutMs: 2000,
      autopurge: { snapRetainCount: 3, purgeIntervalMs: 0 },
    });
  });

  it('enforce.auth.enabled / enforce.auth.schemes: remote sessions must authenticate (digest); bad combinations are refused in one line', () => {
    const on = parseZooCfg('dataDir=d\nenforce.auth.enabled=true\nenforce.auth.schemes=digest\n', { baseDir: '/srv' });
    assert.deepEqual(toMemberConfig(on, 1).enforceAuthSchemes, ['digest']);
    const camel = parseZooCfg('dataDir=d\nenforceAuthEnabled=yes\nenforceAuthSchemes=digest\n', { baseDir: '/srv' });
    assert.deepEqual(toMemberConfig(camel, 1).enforceAuthSchemes, ['digest']);
    const off = parseZooCfg('dataDir=d\nenforce.auth.schemes=digest\n', { baseDir: '/srv' });
    assert.equal(toMemberConfig(off, 1).enforceAuthSchemes, undefined);
    assert.match(off.warnings.join('\n'), /no effect without enforce\.auth\.enabled=true/);
    assert.throws(() => parseZooCfg('dataDir=d\nenforce.auth.enabled=true\n'), (e: Error) => e instanceof ConfigError && /add enforce\.auth\.schemes=digest/.test(e.message));
    assert.throws(() => parseZooCfg('dataDir=d\nenforce.auth.enabled=true\nenforce.auth.schemes=sasl\n'), (e: Error) => e instanceof ConfigError && /sasl.*conclave has digest/.test(e.message));
  });

  it('accepts properties syntax: comments, blank lines, spaces around =, key: value, continuation lines', () => {
    const cfg = parseZooCfg('# c\n! also a comment\n\n  tickTime = 500  \ndataDir: ./data\nserver.1=127.0.0.1:\\\n  2888\n4lw.commands.whitelist=*\n', { baseDir: '/srv' });
    assert.equal(cfg.tickTime, 500);
    assert.equal(cfg.dataDir, '/srv/data');
    assert.equal(cfg.servers[0]!.address, '127.0.0.1:2888');
    assert.equal(cfg.whitelist, '*');
    assert.deepEqual(cfg.warnings, []);
  });

  it('unknown keys and ZooKeeper keys conclave does not use are warnings, not errors', () => {
    const cfg = parseZooCfg('dataDir=/d\ntickTim=2000\nelectionAlg=3\nssl.keyStore.location=/k\nautopurge.snapRetainCount=1\nsecret=short\n');
    assert.deepEqual(cfg.warnings, [
      "zoo.cfg:2: unknown key 'tickTim' ignored (check the spelling; see the README's zoo.cfg reference)",
      'zoo.cfg:3: electionAlg is a ZooKeeper setting that conclave ignores (conclave always runs fast leader election)',
      'zoo.cfg:4: ssl.keyStore.location is a ZooKeeper setting that conclave ignores (TLS is not supported; use the libp2p transport (Noise) for encryption)',
      'zoo.cfg:5: autopurge.snapRetainCount=1 is below the minimum 3; using 3 (as ZooKeeper)',
      'zoo.cfg:6: secret is shorter than 16 bytes; use at least 16 random characters (openssl rand -hex 16)',
    ]);
    assert.equal(cfg.autopurge.snapRetainCount, 3);
  });

  describe('every bad value is one line naming the file:line, the key and what to write', () => {
    const D = 'dataDir=/d\n';
    const cases: [string, string, string, number | undefined][] = [
      ['tickTime=2s\n' + D, "zoo.cfg:1: tickTime='2s' is not a whole number of milliseconds; write e.g. tickTime=2000", 'tickTime', 1],
      [D + 'initLimit=0\n', "zoo.cfg:2: initLimit='0' is out of range (1–1000000); write e.g. initLimit=10", 'initLimit', 2],
      [D + 'syncLimit=-1\n', "zoo.cfg:2: syncLimit='-1' is not a whole number of ticks; write e.g. syncLimit=5", 'syncLimit', 2],
      [D + 'tickTime\n', "zoo.cfg:2: 'tickTime' has no value; write tickTime=<value> (or remove the line)", 'tickTime', 2],
      [D + 'tickTime=\n', "zoo.cfg:2: tickTime='' is not a whole number of milliseconds; write e.g. tickTime=2000", 'tickTime', 2],
      [D + 'tickTime=100\ntickTime=200\n', 'zoo.cfg:3: tickTime is set twice (also on line 2); keep one', 'tickTime', 3],
      ['tickTime=100\n', 'zoo.cfg: dataDir is missing; add a line like dataDir=/var/lib/conclave (the member\'s data directory)', 'dataDir', undefined],
      [D + 'dataLogDir=\n', "zoo.cfg:2: dataLogDir='' is empty; write e.g. dataLogDir=/var/lib/conclave", 'dataLogDir', 2],
      [D + 'clientPort=65536\n', "zoo.cfg:2: clientPort='65536' is out of range (0–65535); write e.g. clientPort=2181", 'clientPort', 2],
      [D + 'server.one=h:1\n', "zoo.cfg:2: 'server.one' has no valid member id; write server.<id ≥ 1>=host:2888:3888, e.g. server.1=10.0.0.1:2888:3888", 'server.one', 2],
      [D + 'server.0=h:1\n', "zoo.cfg:2: 'server.0' has no valid member id; write server.<id ≥ 1>=host:2888:3888, e.g. server.1=10.0.0.1:2888:3888", 'server.0', 2],
      [D + 'server.1=10.0.0.1\n', "zoo.cfg:2: server.1='10.0.0.1' has no port; write e.g. server.1=10.0.0.1:2888:3888 (or server.1=host:2888:3888:observer)", 'server.1', 2],
      [D + 'server.2=h:70000\n', "zoo.cfg:2: server.2='h:70000' has port '70000', not a number 0-65535; write e.g. server.2=10.0.0.2:2888:3888 (or server.2=host:2888:3888:observer)", 'server.2', 2],
      [D + 'server.1=h:2888:3888:leader\n', "zoo.cfg:2: server.1='h:2888:3888:leader' has 'leader' where an election port or 'participant'/'observer' belongs; write e.g. server.1=10.0.0.1:2888:3888 (or server.1=host:2888:3888:observer)", 'server.1', 2],
      [D + 'server.1=h:2888;x:y\n', "zoo.cfg:2: server.1='h:2888;x:y' has client address 'x:y', not [host:]port; write e.g. server.1=10.0.0.1:2888:3888 (or server.1=host:2888:3888:observer)", 'server.1', 2],
      [D + 'server.1=h:2888\nserver.2=h:2888\n', 'zoo.cfg:3: server.2 uses h:2888, like server.1 on line 2; give each member its own host:port', 'server.2', 3],
      [D + 'server.1=h:2888:observer\nserver.2=i:2888:observer\n', "zoo.cfg:2: every server.N line is an observer; at least one must be a participant (drop ':observer' from some)", 'server.1', 2],
      [D + 'server.1=h:0\nserver.2=i:2888\n', 'zoo.cfg:2: server.1 has port 0, but the other members must know its port; write a fixed port, e.g. server.1=h:2888:3888', 'server.1', 2],
      [D + 'server.1=h:1\nserver.2=i:1\nmyid=4\n', 'zoo.cfg:4: myid=4 is not among the server lines (server.1, server.2); fix myid or add server.4=host:2888:3888', 'myid', 4],
      [D + 'snapCount=many\n', "zoo.cfg:2: snapCount='many' is not a whole number of txns; write e.g. snapCount=100000", 'snapCount', 2],
      [D + 'autopurge.purgeInterval=daily\n', "zoo.cfg:2: autopurge.purgeInterval='daily' is not a number of hours (0 = never purge on a timer); write e.g. autopurge.purgeInterval=24", 'autopurge.purgeInterval', 2],
      [D + 'maxClientCnxns=lots\n', "zoo.cfg:2: maxClientCnxns='lots' is not a whole number of sessions per client address (0 = unlimited); write e.g. maxClientCnxns=60", 'maxClientCnxns', 2],
      [D + 'jute.maxbuffer=0\n', "zoo.cfg:2: jute.maxbuffer='0' is out of range (1–1073741824); write e.g. jute.maxbuffer=1048575", 'jute.maxbuffer', 2],
      [D + '4lw.commands.whitelist=srvr,kill\n', "zoo.cfg:2: 4lw.commands.whitelist='srvr,kill' names unknown command(s) kill (known: ruok conf envi srvr stat srst cons crst dump wchs wchc wchp mntr); write e.g. 4lw.commands.whitelist=srvr,mntr,ruok", '4lw.commands.whitelist', 2],
      [D + '4lw.commands.whitelist=,\n', "zoo.cfg:2: 4lw.commands.whitelist=',' is empty; write e.g. 4lw.commands.whitelist=srvr,mntr,ruok (or 4lw.commands.whitelist=*)", '4lw.commands.whitelist', 2],
      [D + 'minSessionTimeout=9000\nmaxSessionTimeout=4000\n', 'zoo.cfg:2: minSessionTimeout=9000 is above maxSessionTimeout=4000; make minSessionTimeout ≤ maxSessionTimeout', 'minSessionTimeout', 2],
      [D + 'forceSync=maybe\n', "zoo.cfg:2: forceSync='maybe' is not yes/no (or true/false); write e.g. forceSync=yes", 'forceSync', 2],
      [D + 'secret=\n', "zoo.cfg:2: secret='' is empty; write e.g. secret=<at least 16 random characters, the same on every member, e.g. from 'openssl rand -hex 16'>", 'secret', 2],
      [D + 'superDigest=super:pw\n', "zoo.cfg:2: superDigest='super:pw' is not 'user:BASE64(SHA1(user:password))'; write e.g. superDigest=super:xxxxxxxxxxxxxxxxxxxxxxxxxxx= (from: node -e \"console.log(require('conclave').digest('super','pw'))\")", 'superDigest', 2],
      [D + 'admin.serverPort=http\n', "zoo.cfg:2: admin.serverPort='http' is not a whole number; write e.g. admin.serverPort=8080 (0 = any free port)", 'admin.serverPort', 2],
      [D + 'admin.enableServer=on\n', "zoo.cfg:2: admin.enableServer='on' is not yes/no (or true/false); write e.g. admin.enableServer=true", 'admin.enableServer', 2],
      [D + 'logLevel=loud\n', "zoo.cfg:2: logLevel='loud' is not one of debug, info, warn, error, silent; write e.g. logLevel=info", 'logLevel', 2],
    ];
    for (const [text, message, key, line] of cases) {
      it(`${key}: ${message.slice(0, 70)}…`, () => {
        const e = error(text);
        assert.equal(e.message, message);
        assert.equal(e.key, key);
        assert.equal(e.line, line);
      });
    }
  });

  describe('loadConfig: myid, secret and paths from the environment of the file', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'conclave-cfg-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const write = (text: string): string => {
      const p = join(dir, 'zoo.cfg');
      writeFileSync(p, text);
      return p;
    };
    const loadError = (p: string, env: Record<string, string> = {}): string => {
      try {
        loadConfig(p, env);
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        assert.ok(!e.message.includes('\n'));
        return e.message;
      }
      return assert.fail('no error');
    };

    it('myid comes from dataDir/myid; relative paths are relative to the config file; files live in dataDir', () => {
      mkdirSync(join(dir, 'data'));
      writeFileSync(join(dir, 'data', 'myid'), '2\n');
      const p = write('dataDir=data\nserver.1=127.0.0.1:2888\nserver.2=127.0.0.1:2889;127.0.0.1:2182\nserver.3=127.0.0.1:2890\nsecret=0123456789abcdef\n');
      const c = loadConfig(p, {});
      assert.equal(c.id, 2);
      assert.equal(c.idSource, join(dir, 'data', 'myid'));
      assert.equal(c.dataDir, join(dir, 'data'));
      assert.equal(c.storageDir, join(dir, 'data'));
      assert.equal(c.listen, '127.0.0.1:2889');
      assert.equal(c.clientListen, '127.0.0.1:2182', 'the ;clientPort of its server line is an extra listener for sessions');
      assert.equal(c.pidFile, join(dir, 'data', 'conclave_member.pid'));
      assert.equal(c.logFile, join(dir, 'data', 'conclave_member.out'));
      assert.equal(c.secret, '0123456789abcdef');
      assert.equal(c.member.id, 2);
    });

    it('a standalone config needs no myid; clientPort is where it listens; quorumListenOnAllIPs binds the wildcard', () => {
      const c = loadConfig(write(`dataDir=${dir}\nclientPort=2181\nclientPortAddress=127.0.0.1\n`), {});
      assert.equal(c.id, 1);
      assert.equal(c.idSource, 'standalone default');
      assert.equal(c.listen, '127.0.0.1:2181');
      assert.equal(c.clientListen, undefined);
      const d = loadConfig(write(`dataDir=${dir}\nserver.1=10.9.9.9:2888\nquorumListenOnAllIPs=true\nmyid=1\n`), {});
      assert.equal(d.listen, '0.0.0.0:2888');
    });

    it('the secret comes from secret=, else secretFile=, else $CONCLAVE_SECRET', () => {
      writeFileSync(join(dir, 'secret.txt'), 'from-the-secret-file\n');
      assert.equal(loadConfig(write(`dataDir=${dir}\nsecretFile=secret.txt\n`), { CONCLAVE_SECRET: 'env' }).secret, 'from-the-secret-file');
      assert.equal(loadConfig(write(`dataDir=${dir}\n`), { CONCLAVE_SECRET: 'from-the-env' }).secret, 'from-the-env');
      assert.equal(loadConfig(write(`dataDir=${dir}\n`), {}).secret, undefined);
      assert.match(loadError(write(`dataDir=${dir}\nsecretFile=nope.txt\n`)), /^secretFile .*nope\.txt: cannot read it \(ENOENT\); create it with e\.g\. openssl rand -hex 16 > /);
    });

    it('start-up problems of the file itself are one line: missing file, missing or bad myid, myid not in the ensemble', () => {
      assert.equal(loadError(join(dir, 'none.cfg')), `${join(dir, 'none.cfg')}: no such file; pass the path of your zoo.cfg with --config`);
      const three = `dataDir=${dir}\nserver.1=127.0.0.1:2888\nserver.2=127.0.0.1:2889\nserver.3=127.0.0.1:2890\n`;
      const p = write(three);
      assert.equal(loadError(p), `${p}: no myid for this member: write its id into ${join(dir, 'myid')} (echo 1 > ${join(dir, 'myid')}) or add myid=<id> to the config`);
      writeFileSync(join(dir, 'myid'), 'one');
      assert.equal(loadError(p), `${join(dir, 'myid')}: 'one' is not a member id; write the member's id (an integer ≥ 1) alone in the file, e.g. echo 1 > ${join(dir, 'myid')}`);
      writeFileSync(join(dir, 'myid'), '4\n');
      assert.equal(loadError(p), `myid 4 (from ${join(dir, 'myid')}) is not in the ensemble of ${p} (server.1, server.2, server.3); fix myid or add a server.4=host:2888:3888 line`);
    });
  });
});
