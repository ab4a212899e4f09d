import assert from 'node:assert/strict';
import { Ids } from '../../src/core/acl.js';
import { isCarved, SlabAllocator } from '../../src/core/slab.js';
import { DataTree } from '../../src/core/tree.js';
import type { Txn, TxnOp } from '../../src/core/txn.js';
import { decodeTxnList, encodeTxnList } from '../../src/core/txnCodec.js';

describe('core/slab: carved values do not pin dead neighbours past a snapshot', () => {
  it('SlabAllocator carves small values from shared slabs, gives large ones their own buffer; copies are equal and independent', () => {
    const a = new SlabAllocator();
    const x = a.copy(new Uint8Array([1, 2, 3]));
    const y = a.copy(new Uint8Array([4, 5]));
    assert.equal(x.buffer, y.buffer);
    assert.ok(isCarved(x) && isCarved(y));
    assert.deepEqual([...x], [1, 2, 3]);
    assert.deepEqual([...y], [4, 5]);
    const big = a.alloc(4096);
    assert.equal(big.buffer.byteLength, 4096);
    assert.equal(isCarved(big), false);
    assert.equal(isCarved(new Uint8Array(0)), false);
    assert.equal(isCarved(new Uint8Array(10)), false);
    assert.equal(isCarved(Buffer.from('abc')), true, "Node's Buffer pool shares too");
  });

  it('a long-lived value decoded between updates of a hot node pins a slab each until a snapshot pass makes them dense', () => {
    const tree = new DataTree();
    let z = 0;
    // Through the wire form, as a follower gets every txn.
    const apply = (op: TxnOp): void => {
      const t: Txn = { zxid: BigInt(++z), sessionId: 0n, cxid: 0, time: 1, op };
      for (const d of decodeTxnList(encodeTxnList([t]))) tree.apply(d, false);
    };
    const create = (path: string, n: number): TxnOp => ({
      type: 'create', path, data: new Uint8Array(100).fill(n), acl: [...Ids.OPEN_ACL_UNSAFE], ephemeralOwner: 0n, kind: 0, ttl: 0, pcv: z + 1, pseq: z + 1,
    });
    apply(create('/hot', 0));
    apply(create('/rare', 0));
    const RARE = 1000;
    let version = 0;
    for (let i = 0; i < RARE; i++) {
      apply(create(`/rare/n${i}`, i & 0xff));
      for (let k = 0; k < 80; k++) apply({ type: 'setData', path: '/hot', data: new Uint8Array(100).fill(k), version: ++version });
    }
    const buffers = (): number => new Set(Array.from({ length: RARE }, (_, i) => tree.get(`/rare/n${i}`)!.data.buffer)).size;
    assert.ok(buffers() > RARE * 0.9, `${buffers()} slabs held by ${RARE} values before`);
    const digest = tree.digest();
    let records = 0;
    for (const r of tree.records()) {
      records++;
      assert.equal(r.data, tree.get(r.path)!.data);
    }
    assert.ok(records > RARE);
    assert.ok(buffers() <= Math.ceil((RARE * 104) / 8192) + 1, `${buffers()} slabs after the pass`);
    assert.equal(tree.digest(), digest, 'same bytes');
    for (let i = 0; i < RARE; i += 97) assert.deepEqual([...tree.get(`/rare/n${i}`)!.data], new Array(100).fill(i & 0xff));

    // The next pass leaves values in dense slabs alone while those slabs stay at least half live...
    const held = Array.from({ length: RARE }, (_, i) => tree.get(`/rare/n${i}`)!.data);
    const drain = (): void => {
      for (const _ of tree.records()) {
        // the pass itself
      }
    };
    drain();
    assert.ok(held.every((d, i) => tree.get(`/rare/n${i}`)!.data === d), 'no value moved');
    // ...and the pass after the one that found a slab less than half live moves its survivors.
    const perSlab = new Map<ArrayBufferLike, number[]>();
    held.forEach((d, i) => perSlab.set(d.buffer, [...(perSlab.get(d.buffer) ?? []), i]));
    const [slab, members] = [...perSlab].find(([, m]) => m.length >= 40)!;
    const keep = members.slice(0, Math.floor(members.length / 3)); // a third stays: under half live
    for (const i of members.slice(keep.length)) apply({ type: 'delete', path: `/rare/n${i}`, pcv: z + 1 } as TxnOp);
    const others = [...perSlab].filter(([b]) => b !== slab).flatMap(([, m]) => m);
    drain(); // counts what is left in each slab
    assert.ok(keep.every((i) => tree.get(`/rare/n${i}`)!.data === held[i]), 'one pass counts before anything moves');
    drain();
    assert.ok(keep.every((i) => tree.get(`/rare/n${i}`)!.data.buffer !== slab), 'survivors of a mostly dead slab moved');
    assert.ok(others.every((i) => tree.get(`/rare/n${i}`)!.data === held[i]), 'values in live slabs stayed');
    assert.ok(keep.every((i) => tree.get(`/rare/n${i}`)!.data.every((b) => b === (i & 0xff))), 'same bytes');
  });
});
