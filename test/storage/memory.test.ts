import { MemoryStorage } from '../../src/storage/memory.js';
import { storageCompliance } from './compliance.js';

// The in-memory "disk" is the object itself: reopening is opening the same object again.
storageCompliance('memory', {
  create: async () => new MemoryStorage(),
  reopen: async (closed) => closed,
  cleanup: async () => undefined,
});
