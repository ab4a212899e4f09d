import { randomUUID } from 'node:crypto';
import { KeeperError } from '../../core/errors.js';
import { CreateMode } from '../../core/createMode.js';
import type { Session } from '../session.js';
import type { Data } from '../types.js';
import {
  awaitConnected, childPath, checkAborted, Deadline, isCode, isConnected, isDead, sleep, waitFor, type WaitOptions,
} from './util.js';

/*
 * Curator's "protected" mode. A sequential create whose response is lost (CONNECTIONLOSS) may or
 * may not have created the node; creating again would leave an orphan — for a lock, an ephemeral
 * node that blocks every other contender for as long as the session lives. So the name carries a
 * GUID (`_c_<guid>-<name><seq>`), and after a lost response we look for our GUID among the
 * parent's children before creating again.
 */

export const PROTECTED_PREFIX = '_c_';
const GUID_LENGTH = 36;

/** `_c_<guid>-` */
export function protectedPrefix(guid: string): string {
  return `${PROTECTED_PREFIX}${guid}-`;
}

/** True when a child name was created in protected mode. */
export function isProtectedName(name: string): boolean {
  return name.startsWith(PROTECTED_PREFIX) && name.length > PROTECTED_PREFIX.length + GUID_LENGTH && name[PROTECTED_PREFIX.length + GUID_LENGTH] === '-';
}

/** The GUID of a protected name, or undefined. */
export function protectedGuid(name: string): string | undefined {
  return isProtectedName(name) ? name.slice(PROTECTED_PREFIX.length, PROTECTED_PREFIX.length + GUID_LENGTH) : undefined;
}

/** The name without its protection prefix (`_c_<guid>-lock-0000000001` → `lock-0000000001`). */
export function unprotectedName(name: string): string {
  return isProtectedName(name) ? name.slice(PROTECTED_PREFIX.length + GUID_LENGTH + 1) : name;
}

export interface ProtectedCreateOptions extends WaitOptions {
  data?: Data;
  /** Default EPHEMERAL_SEQUENTIAL. */
  mode?: CreateMode;
  /** Use this GUID instead of a fresh one (to find a node again across calls). */
  guid?: string;
}

export interface ProtectedNode {
  /** Full path of the created node. */
  path: string;
  /** Its child name. */
  name: string;
  guid: string;
}

/** Upper bound on create attempts; each one either succeeds, finds the node, or follows a CONNECTIONLOSS. */
const MAX_ATTEMPTS = 1000;

/**
 * Creates `parent/_c_<guid>-<name>` (sequential by default) exactly once, even across lost
 * responses. Missing parents are created as PERSISTENT nodes. Resolves null when the deadline
 * passes while the outcome is unknown (a node that may exist is then deleted in the background as
 * soon as the session reconnects, so that nothing is left behind).
 */
export async function createProtected(session: Session, parent: string, name: string, options: ProtectedCreateOptions = {}): Promise<ProtectedNode | null> {
  const deadline = new Deadline(options.timeoutMs);
  const signal = options.signal;
  const guid = options.guid ?? randomUUID();
  const prefix = protectedPrefix(guid);
  const mode = options.mode ?? CreateMode.EPHEMERAL_SEQUENTIAL;
  const what = `protected create under ${parent}`;
  let uncertain = false;
  const giveUp = (): null => {
    if (uncertain) void deleteProtectedEventually(session, parent, prefix);
    return null;
  };
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    try {
      checkAborted(signal);
    } catch (e) {
      giveUp();
      throw e;
    }
    if (uncertain) {
      // Did the lost create happen? Look for our GUID before creating again.
      try {
        if (!(await awaitConnected(session, deadline, signal, what))) return giveUp();
        // Catch up with the leader first: a create committed in the old epoch is then visible here.
        await session.sync(parent);
        const found = await findProtected(session, parent, prefix);
        if (found) return { path: childPath(parent, found), name: found, guid };
        uncertain = false;
      } catch (e) {
        if (isCode(e, 'CONNECTIONLOSS')) continue;
        if (isCode(e, 'NONODE')) {
          uncertain = false; // the parent is gone, so is any node of ours
        } else {
          giveUp();
          throw e;
        }
      }
    } else if (!isConnected(session.state)) {
      if (!(await awaitConnected(session, deadline, signal, what))) return null;
    }
    try {
      const path = await session.create(childPath(parent, prefix + name), options.data, { mode, parents: true });
      return { path, name: path.slice(path.lastIndexOf('/') + 1), guid };
    } catch (e) {
      if (!isCode(e, 'CONNECTIONLOSS')) {
        giveUp();
        throw e;
      }
      uncertain = true;
      if (deadline.expired) return giveUp();
      await sleep(Math.min(100, 2 ** Math.min(attempt, 6)));
    }
  }
  giveUp();
  throw new KeeperError('CONNECTIONLOSS', parent, `${what}: no outcome after ${MAX_ATTEMPTS} attempts`);
}

/** The child of `parent` whose name starts with `prefix`, if any. */
export async function findProtected(session: Session, parent: string, prefix: string): Promise<string | undefined> {
  const children = await session.getChildren(parent);
  return children.find((c) => c.startsWith(prefix));
}

/**
 * Deletes every child of `parent` whose name starts with `prefix`, now or once the session is
 * connected again (Curator's FindAndDeleteProtectedNodeInBackground). Ends when the session ends.
 */
export async function deleteProtectedEventually(session: Session, parent: string, prefix: string): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    if (isDead(session.state)) return;
    if (!isConnected(session.state)) {
      try {
        await waitFor(session, undefined, new Deadline(), undefined, 'orphan cleanup');
      } catch {
        return;
      }
      continue;
    }
    try {
      const children = await session.getChildren(parent);
      for (const c of children) {
        if (!c.startsWith(prefix)) continue;
        try {
          await session.delete(childPath(parent, c));
        } catch (e) {
          if (!isCode(e, 'NONODE')) throw e;
        }
      }
      return;
    } catch (e) {
      if (isCode(e, 'NONODE')) return;
      if (!isCode(e, 'CONNECTIONLOSS')) return;
      await sleep(Math.min(200, 10 * (attempt + 1)));
    }
  }
}
