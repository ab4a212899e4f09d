import { StorageError } from '../../storage/errors.js';
import { LevelStorage } from '../../storage/level.js';
import type { StorageState } from '../../storage/types.js';
import { out } from '../render.js';

/**
 * Opens a data directory for inspection: read-only (nothing is repaired or removed), damage found
 * on the way is printed as `# damage:` lines. A running member's directory is locked.
 */
export async function openForDump(dir: string): Promise<{ storage: LevelStorage; state: StorageState }> {
  const storage = new LevelStorage(dir, { readOnly: true });
  let state: StorageState;
  try {
    state = await storage.open();
  } catch (e) {
    if (e instanceof StorageError && e.code === 'LOCKED') {
      throw new StorageError('LOCKED', `${dir} is in use by a running member (LevelDB lock); stop it first, or dump a copy of the directory`);
    }
    throw e;
  }
  for (const d of state.damage ?? []) out(`# damage: ${d.kind} at ${d.where}: ${d.detail} (${d.action})`);
  return { storage, state };
}
