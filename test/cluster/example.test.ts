import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The embedded-cluster example (examples/embedded-cluster/run.ts), driven end to end: three member
 * processes over TCP, a config change seen by all, kill -9 of the leader while it holds the lock,
 * a new leader, the lock moving on, the killed member restarted and caught up, a graceful stop.
 */
const RUN = fileURLToPath(new URL('../../examples/embedded-cluster/run.ts', import.meta.url));

describe('examples/embedded-cluster (3 OS processes over TCP)', function () {
  this.timeout(120_000);

  it('runs its whole story and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUN], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    // run.ts kills its members on SIGTERM; SIGKILL only if it does not go.
    const limit = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, 100_000);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearTimeout(limit);
    assert.equal(code, 0, out);
    for (const step of [
      /all three agree: member \d leads/,
      /every member saw the change through its watch/,
      /kill -9 \d+ \(member \d: the leader, and it holds the lock\)/,
      /agree on a new leader: member \d/,
      /the lock moved on: member \d holds it/,
      /rejoined as a follower and caught up/,
      /\[run\] done/,
    ]) assert.match(out, step);
  });
});
