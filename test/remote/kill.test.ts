import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Member } from '../../src/index.js';
import { servingMember, tcpEnsemble, waitFor, type TcpEnsemble } from './helpers.js';

const CLIENT = fileURLToPath(new URL('./client-process.ts', import.meta.url));
const TICK_MS = 100;
/** Time for the closeSession txn to commit and apply on the leader after it expired the session. */
const COMMIT_SLACK_MS = 50;

interface Spawned {
  child: ChildProcess;
  sessionId: bigint;
  timeoutMs: number;
}

async function spawnClient(addresses: string[], ephemeral: string): Promise<Spawned> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLIENT], {
    env: { ...process.env, CONCLAVE_CLIENT: JSON.stringify({ addresses, timeoutMs: 2000, ephemeral }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    const r = await lines.next();
    if (r.done) throw new Error(`client process exited: ${err}`);
    const m = JSON.parse(r.value) as { sessionId: string; timeoutMs: number };
    return { child, sessionId: BigInt(m.sessionId), timeoutMs: m.timeoutMs };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** kill -9 of the client process, then ms until its ephemeral is deleted on the leader. */
async function killAndMeasure(ens: TcpEnsemble, c: Spawned, path: string): Promise<number> {
  const leader = ens.leader();
  const watcher = await leader.session();
  let deletedAt = 0;
  assert.ok(await watcher.exists(path, { watch: (ev) => {
    if (ev.type === 'NodeDeleted') deletedAt = Date.now();
  } }), 'the ephemeral exists before the kill');
  const exited = new Promise<void>((r) => c.child.once('exit', () => r()));
  const t0 = Date.now();
  process.kill(c.child.pid!, 'SIGKILL');
  await exited;
  await waitFor(() => deletedAt !== 0, c.timeoutMs + 3000, 'the ephemeral to disappear');
  await watcher.close();
  return deletedAt - t0;
}

describe('remote sessions: a killed client process loses its ephemerals after the session timeout (issue 5 acceptance)', function () {
  this.timeout(60_000);
  let ens: TcpEnsemble;
  const children: ChildProcess[] = [];
  before(async () => {
    ens = await tcpEnsemble({ size: 3, member: { tickMs: TICK_MS } });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
    await ens.stopAll();
  });

  async function run(target: Member, path: string): Promise<{ ms: number; timeoutMs: number }> {
    const c = await spawnClient([ens.addresses.get(target.id)!], path);
    children.push(c.child);
    assert.equal(servingMember(ens, c.sessionId)?.id, target.id);
    assert.equal(c.timeoutMs, 2000);
    const ms = await killAndMeasure(ens, c, path);
    for (const m of ens.members.values()) await waitFor(() => !m!.tree.sessions.has(c.sessionId), 2000, 'the session gone everywhere');
    return { ms, timeoutMs: c.timeoutMs };
  }

  it('attached to the leader: gone within the negotiated timeout + one tick of the kill', async () => {
    const { ms, timeoutMs } = await run(ens.leader(), '/owned-by-leader-client');
    if (process.env.CONCLAVE_REMOTE_TIMINGS) console.log(`      leader-attached: ephemeral gone ${ms} ms after kill -9 (timeout ${timeoutMs}, tick ${TICK_MS})`);
    // Never before the timeout (the last heartbeat came at most timeout/3 before the kill) …
    assert.ok(ms >= timeoutMs - timeoutMs / 3, `gone after ${ms} ms: too early for a ${timeoutMs} ms timeout`);
    // … and at most timeout + one tick after it.
    assert.ok(ms <= timeoutMs + TICK_MS + COMMIT_SLACK_MS, `gone after ${ms} ms > ${timeoutMs} + ${TICK_MS} (+${COMMIT_SLACK_MS} commit)`);
  });

  it('attached to a follower: heartbeats relayed with the follower\'s pings, gone within timeout + two ticks', async () => {
    const { ms, timeoutMs } = await run(ens.followers()[0]!, '/owned-by-follower-client');
    if (process.env.CONCLAVE_REMOTE_TIMINGS) console.log(`      follower-attached: ephemeral gone ${ms} ms after kill -9 (timeout ${timeoutMs}, tick ${TICK_MS})`);
    assert.ok(ms >= timeoutMs - timeoutMs / 3, `gone after ${ms} ms: too early for a ${timeoutMs} ms timeout`);
    assert.ok(ms <= timeoutMs + 2 * TICK_MS + COMMIT_SLACK_MS, `gone after ${ms} ms > ${timeoutMs} + 2 × ${TICK_MS} (+${COMMIT_SLACK_MS} commit)`);
  });
});
