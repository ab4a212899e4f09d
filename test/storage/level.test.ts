import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStorage } from '../../src/storage/level.js';
import type { Storage } from '../../src/storage/types.js';
import { storageCompliance } from './compliance.js';

const dirs: string[] = [];

storageCompliance('leveldb', {
  create: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-level-'));
    dirs.push(dir);
    return new LevelStorage(dir);
  },
  reopen: async (closed: Storage) => new LevelStorage((closed as LevelStorage).directory),
  cleanup: async () => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  },
});
