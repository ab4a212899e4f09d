import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Runs test/transport/peer.ts in a child process (see there). */

const PEER_SCRIPT = fileURLToPath(new URL('./peer.ts', import.meta.url));

function spawnPeer(config: Record<string, unknown>): { child: ChildProcess; lines: AsyncIterator<string>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', PEER_SCRIPT], {
    env: { ...process.env, CONCLAVE_PEER: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const rl = createInterface({ input: child.stdout! });
  return { child, lines: rl[Symbol.asyncIterator](), stderr: () => err };
}

async function nextJson(lines: AsyncIterator<string>, stderr: () => string, timeoutMs: number): Promise<Record<string, unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`child peer said nothing within ${timeoutMs} ms; stderr: ${stderr()}`)), timeoutMs);
  });
  try {
    const r = await Promise.race([lines.next(), timeout]);
    if (r.done) throw new Error(`child peer exited; stderr: ${stderr()}`);
    return JSON.parse(r.value) as Record<string, unknown>;
  } finally {
    clearTimeout(timer);
  }
}

export interface EchoPeer {
  address: string;
  start(peers: Map<number, string>): void;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

/** A member that echoes { t: 'echo', n } for every message, in another process (so SIGSTOP freezes only it). */
export async function echoPeer(config: Record<string, unknown>): Promise<EchoPeer> {
  const { child, lines, stderr } = spawnPeer({ ...config, mode: 'echo' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let frozen = false;
  try {
    const ready = await nextJson(lines, stderr, 20_000);
    return {
      address: String(ready.ready),
      start: (peers) => child.stdin!.write(`${JSON.stringify([...peers])}\n`),
      freeze: () => {
        frozen = true;
        child.kill('SIGSTOP');
      },
      thaw: () => {
        frozen = false;
        child.kill('SIGCONT');
      },
      close: async () => {
        if (frozen) child.kill('SIGCONT');
        child.stdin!.end();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      },
    };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
}

/** Runs the lifecycle mode and returns ms from "stopped" to the child's natural exit. */
export async function lifecycleExitMs(config: Record<string, unknown>): Promise<number> {
  const { child, lines, stderr } = spawnPeer({ ...config, mode: 'lifecycle' });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const msg = await nextJson(lines, stderr, 40_000);
    if (msg.stopped !== true) throw new Error(`unexpected ${JSON.stringify(msg)}`);
    const t0 = Date.now();
    const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(hard);
    if (code !== 0) throw new Error(`child exited with ${String(code)} (killed: it did not exit by itself within 10 s); stderr: ${stderr()}`);
    return Date.now() - t0;
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
