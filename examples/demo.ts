/**
 * The main demo (`npm run demo`): a 3-member ensemble embedded in this one process, over the
 * in-memory transport, each member durable in its own LevelDB directory. It elects a leader,
 * replicates writes, delivers watches, registers workers as ephemeral-sequential nodes, survives
 * the crash of its leader, expires the sessions of the crashed member, and restarts it from disk.
 * Then the Curator-style recipes run on a second ensemble (examples/recipes-demo.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { CreateMode, startMember, type Member, type Session } from '../src/index.js';
import { memoryNetwork } from '../src/transport/memory.js';
import { runRecipesDemo } from './recipes-demo.js';

const t0 = performance.now();
const log = (msg: string): void => console.log(`[${((performance.now() - t0) / 1000).toFixed(3)}s] ${msg}`);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const root = mkdtempSync(join(os.tmpdir(), 'conclave-demo-'));
const ensemble = { 1: 'member-1', 2: 'member-2', 3: 'member-3' };
const net = memoryNetwork();
const start = (id: number): Promise<Member> =>
  startMember({ id, ensemble, transport: net.transport(id), storage: join(root, `m${id}`), tickMs: 50, logLevel: 'warn' });

log(`starting 3 members (LevelDB under ${root})`);
const members = new Map<number, Member>();
for (const m of await Promise.all([1, 2, 3].map(start))) members.set(m.id, m);
await Promise.all([...members.values()].map((m) => m.ready(10_000)));
const leader = [...members.values()].find((m) => m.state === 'leading')!;
log(`leader elected: member ${leader.id}; followers: ${[...members.values()].filter((m) => m !== leader).map((m) => m.id).join(', ')}`);

// One session per member, as three parts of an application would have.
const sessions = new Map<number, Session>();
for (const [id, m] of members) sessions.set(id, await m.session({ sessionTimeoutMs: 1500 }));
const s1 = sessions.get(1)!;
const s2 = sessions.get(2)!;
const s3 = sessions.get(3)!;

// Configuration with a watch: a write on one member is seen on another.
await s1.create('/app/config', 'color=blue', { parents: true });
const changed = new Promise<string>((resolve) => {
  void s3.getData('/app/config', { watch: (e) => resolve(`${e.type} ${e.path}`) });
});
const st = await s2.setData('/app/config', 'color=green', { version: 0 });
log(`member 2 changed /app/config (version ${st.version}, mzxid 0x${st.mzxid.toString(16)}); member 3's watch fired: ${await changed}`);
await s3.sync('/app/config');
log(`member 3 reads after sync: "${text((await s3.getData('/app/config')).data)}"`);

// Optimistic concurrency: a stale version is refused.
try {
  await s1.setData('/app/config', 'color=red', { version: 0 });
} catch (e) {
  log(`stale write refused as it should be: ${(e as Error).message}`);
}

// Workers register as ephemeral-sequential nodes; a child watch sees membership change.
await s1.create('/app/workers', '');
for (const [id, s] of sessions) {
  const p = await s.create('/app/workers/w-', `worker on member ${id}`, { mode: CreateMode.EPHEMERAL_SEQUENTIAL });
  log(`registered ${p}`);
}
// An atomic multi: the config and a counter move together, or not at all.
const results = await s1.multi([
  { type: 'check', path: '/app/config', version: 1 },
  { type: 'create', path: '/app/deployments', data: new TextEncoder().encode('1'), acl: [{ perms: 31, scheme: 'world', id: 'anyone' }], mode: 0, ttl: 0 },
]);
log(`multi committed atomically: ${results.map((r) => r.type).join(' + ')}`);

// Crash the leader. The others elect a new one; writes resume.
const victim = leader.id;
const survivor = [...members.values()].find((m) => m.id !== victim)!;
const watchWorkers = new Promise<void>((resolve) => {
  let done = false;
  const check = async (): Promise<void> => {
    if (done) return;
    const kids = await sessions.get(survivor.id)!.getChildren('/app/workers', { watch: () => void check().catch(() => undefined) });
    if (kids.length === 2) {
      done = true;
      resolve();
    }
  };
  void check();
});
log(`crashing the leader (member ${victim}) without a goodbye...`);
const tc = performance.now();
await members.get(victim)!.halt();
members.delete(victim);
const sv = sessions.get(survivor.id)!;
for (;;) {
  try {
    await sv.create('/app/after-failover', `written while member ${victim} is down`);
    break;
  } catch {
    await sleep(2);
  }
}
const newLeader = [...members.values()].find((m) => m.state === 'leading');
log(`new leader: member ${newLeader?.id}; first write committed ${(performance.now() - tc).toFixed(0)} ms after the crash`);
log(`config survived: "${text((await sv.getData('/app/config')).data)}"`);

// The crashed member's session is expired by the new leader: its worker node disappears.
await watchWorkers;
log(`the crashed member's session expired; workers now: ${(await sv.getChildren('/app/workers')).join(', ')}`);

// Restart the crashed member from its LevelDB directory: it recovers and catches up.
const back = await start(victim);
members.set(victim, back);
await back.ready(10_000);
const sb = await back.session();
await sb.sync('/');
log(`member ${victim} restarted from disk as ${back.state}; it sees /app/after-failover = "${text((await sb.getData('/app/after-failover')).data)}"`);
log(`replicas identical: ${new Set([...members.values()].map((m) => m.tree.digest())).size === 1}`);

const mntr = await newLeader!.admin('mntr');
log(`leader mntr: znodes=${String(mntr.zk_znode_count)} sessions=${String(mntr.zk_global_sessions)} synced_followers=${String(mntr.zk_synced_followers)} last_zxid=${String(mntr.zk_last_zxid)}`);

for (const m of members.values()) await m.stop();
rmSync(root, { recursive: true, force: true });
log('all members stopped');

log('--- recipes on a fresh in-memory ensemble: election, locks, read-write lock, cache, queue, discovery, config ---');
await runRecipesDemo(log);
log('done');
