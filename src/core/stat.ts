/** The metadata ZooKeeper keeps on every znode. */
export interface Stat {
  /** zxid of the txn that created the node. */
  czxid: bigint;
  /** zxid of the txn that last changed the node's data. */
  mzxid: bigint;
  /** zxid of the txn that last added or removed a child. */
  pzxid: bigint;
  /** Creation time, ms since the epoch (the leader's clock, carried in the txn). */
  ctime: number;
  /** Last data change time, ms since the epoch. */
  mtime: number;
  /** Number of data changes. */
  version: number;
  /** Number of child changes (creates and deletes of children). */
  cversion: number;
  /** Number of ACL changes. */
  aversion: number;
  /** Session id owning this ephemeral node, 0n otherwise. */
  ephemeralOwner: bigint;
  /** Length of the data in bytes. */
  dataLength: number;
  /** Number of children. */
  numChildren: number;
}

/** A fresh copy of a Stat (callers never hold a reference into the tree). */
export function copyStat(s: Stat): Stat {
  return {
    czxid: s.czxid, mzxid: s.mzxid, pzxid: s.pzxid, ctime: s.ctime, mtime: s.mtime,
    version: s.version, cversion: s.cversion, aversion: s.aversion,
    ephemeralOwner: s.ephemeralOwner, dataLength: s.dataLength, numChildren: s.numChildren,
  };
}
