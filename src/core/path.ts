import { KeeperError } from './errors.js';

/** Root of the tree. */
export const ROOT = '/';
/** The reserved system subtree, like ZooKeeper's `/zookeeper`. */
export const SYSTEM_PATH = '/zookeeper';

/**
 * Validates an absolute znode path exactly as ZooKeeper's PathUtils does, plus a length bound.
 * Throws BADARGUMENTS with the reason; returns nothing on success.
 * `sequential` allows a trailing '/' (the name is completed by the counter).
 */
export function validatePath(path: unknown, sequential = false): asserts path is string {
  if (typeof path !== 'string') throw new KeeperError('BADARGUMENTS', undefined, 'path must be a string');
  const n = path.length;
  if (n === 0) throw new KeeperError('BADARGUMENTS', path, 'path must not be empty');
  if (n > 4096) throw new KeeperError('BADARGUMENTS', path.slice(0, 64) + '…', 'path is longer than 4096 characters');
  if (path.charCodeAt(0) !== 47) throw new KeeperError('BADARGUMENTS', path, 'path must start with / (relative paths are not allowed)');
  if (n === 1) return; // root
  if (path.charCodeAt(n - 1) === 47 && !sequential) {
    throw new KeeperError('BADARGUMENTS', path, 'path must not end with /');
  }
  let segStart = 1;
  for (let i = 1; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : 47;
    if (c === 47) {
      const len = i - segStart;
      if (len === 0) {
        if (i === n && sequential) break;
        throw new KeeperError('BADARGUMENTS', path, 'empty path segment (//)');
      }
      if (len <= 2 && path.charCodeAt(segStart) === 46 && (len === 1 || path.charCodeAt(segStart + 1) === 46)) {
        throw new KeeperError('BADARGUMENTS', path, '. and .. segments are not allowed');
      }
      segStart = i + 1;
      continue;
    }
    if (c === 0) throw new KeeperError('BADARGUMENTS', path, 'NUL character in path');
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff0 && c <= 0xffff)) {
      throw new KeeperError('BADARGUMENTS', path, `invalid character \\u${c.toString(16).padStart(4, '0')} in path`);
    }
  }
}

/** The parent of a valid non-root path. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === 0 ? ROOT : path.slice(0, i);
}

/** The last segment of a valid non-root path. */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Joins a parent path and a child name. */
export function childPath(parent: string, name: string): string {
  return parent === ROOT ? ROOT + name : parent + '/' + name;
}

/** True when `path` is `root` or lies beneath it. */
export function isUnder(path: string, root: string): boolean {
  if (root === ROOT) return true;
  return path === root || (path.startsWith(root) && path.charCodeAt(root.length) === 47);
}

/** Formats a sequential suffix: 10 digits, zero padded, as ZooKeeper does. */
export function sequenceSuffix(n: number): string {
  return n.toString().padStart(10, '0');
}
