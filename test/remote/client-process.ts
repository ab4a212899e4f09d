/**
 * A remote-session client in its own OS process (for kill -9 tests; not a test file itself).
 *   CONCLAVE_CLIENT='{"addresses":["127.0.0.1:1234"],"timeoutMs":2000,"ephemeral":"/owner"}'
 * connects, creates the ephemeral node, prints {"sessionId":"…","timeoutMs":…} and then only
 * keeps its session alive (heartbeats) until it is killed.
 */
import { connect, CreateMode } from '../../src/index.js';

const cfg = JSON.parse(process.env.CONCLAVE_CLIENT ?? '{}') as { addresses: string[]; timeoutMs: number; ephemeral: string };
const s = await connect(cfg.addresses, { sessionTimeoutMs: cfg.timeoutMs });
await s.create(cfg.ephemeral, String(process.pid), { mode: CreateMode.EPHEMERAL });
process.stdout.write(`${JSON.stringify({ sessionId: s.id.toString(), timeoutMs: s.timeoutMs, pid: process.pid })}\n`);
s.on('state', (st) => process.stdout.write(`${JSON.stringify({ state: st })}\n`));
