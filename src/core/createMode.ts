/** Create modes with ZooKeeper's numeric values. */
export const CreateMode = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
  CONTAINER: 4,
  PERSISTENT_WITH_TTL: 5,
  PERSISTENT_SEQUENTIAL_WITH_TTL: 6,
} as const;

export type CreateMode = (typeof CreateMode)[keyof typeof CreateMode];

export function isValidMode(m: unknown): m is CreateMode {
  return typeof m === 'number' && Number.isInteger(m) && m >= 0 && m <= 6;
}
export function isSequential(m: CreateMode): boolean {
  return m === 2 || m === 3 || m === 6;
}
export function isEphemeralMode(m: CreateMode): boolean {
  return m === 1 || m === 3;
}
export function isTtlMode(m: CreateMode): boolean {
  return m === 5 || m === 6;
}
export function isContainerMode(m: CreateMode): boolean {
  return m === 4;
}

/** Largest TTL ZooKeeper accepts (40 bits of milliseconds). */
export const MAX_TTL_MS = 0xff_ffff_ffff;
