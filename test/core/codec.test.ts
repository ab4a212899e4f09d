import assert from 'node:assert/strict';
import { Ids } from '../../src/core/acl.js';
import { decode, decodeMessage, encode, encodeMessage, encodeMessageAfter } from '../../src/core/codec.js';
import type { Txn, TxnOp } from '../../src/core/txn.js';
import { mulberry32 } from '../../src/testing/random.js';
import { isValidZabMessage } from '../../src/zab/messages.js';

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const ops: TxnOp[] = [
  { type: 'create', path: '/a', data: bytes(1, 2, 3), acl: [...Ids.OPEN_ACL_UNSAFE], ephemeralOwner: 0n, kind: 0, ttl: 0, pcv: 1, pseq: 1 },
  { type: 'setData', path: '/a', data: bytes(0xff), version: 2 },
  { type: 'delete', path: '/a', pcv: 2 },
  { type: 'error', code: 'NODEEXISTS', path: '/x', failedOp: 2, opCount: 5 },
  { type: 'closeSession', reason: 'expire', deletes: [{ type: 'delete', path: '/e1', pcv: 9 }] },
];
const txns: Txn[] = ops.map((op, i) => ({ zxid: (3n << 32n) | BigInt(i + 1), sessionId: 0x0123456789abcdefn, cxid: i, time: 1_763_776_000_123, op }));

describe('core/codec: messages carrying txns go in the binary form', () => {
  it('a PROPOSAL round-trips (txns, epoch, connection and sequence number) and is still a valid ZAB message', () => {
    const msg = { t: 'proposal', epoch: 3, txns, c: 17, s: 99 };
    const b = encodeMessage(msg);
    assert.equal(b[0], 0xc1);
    const back = decodeMessage(b);
    assert.deepStrictEqual(back, msg);
    assert.ok(isValidZabMessage(back));
    const framed = encodeMessageAfter(msg, 4);
    assert.deepStrictEqual(decodeMessage(framed.subarray(4)), msg);
    assert.deepStrictEqual(decodeMessage(new Uint8Array(b)), msg, 'from a plain Uint8Array too');
  });

  it('a REQUEST (requests a follower forwards) round-trips in the binary form and is still a valid ZAB message', () => {
    const reqs = [
      { sessionId: 0x0123456789abcdefn, cxid: 7, auth: [{ scheme: 'ip', id: '127.0.0.1' }], op: { type: 'create', path: '/q', data: bytes(1, 2), acl: [...Ids.OPEN_ACL_UNSAFE], mode: 3, ttl: 0 } },
      { sessionId: 5n, cxid: 8, auth: [], op: { type: 'setData', path: '/q', data: bytes(9), version: -1 } },
    ];
    const msg = { t: 'request', epoch: 4, reqs };
    const b = encodeMessage(msg);
    assert.deepEqual([b[0], b[1]], [0xc1, 2]);
    const back = decodeMessage(b);
    assert.deepStrictEqual(back, msg);
    assert.ok(isValidZabMessage(back));
    assert.ok(b.length < encode(msg).length);
    const odd = { t: 'request', epoch: 4, reqs: [{ ...reqs[0]!, op: { type: 'unknown-op' } }] };
    assert.notEqual(encodeMessage(odd)[0], 0xc1, 'requests the binary form cannot carry stay msgpack');
    assert.deepStrictEqual(decodeMessage(encodeMessage(odd)), odd);
  });

  it('is smaller than the msgpack map form', () => {
    const msg = { t: 'proposal', epoch: 3, txns: txns.slice(0, 1), c: 1, s: 1 };
    assert.ok(encodeMessage(msg).length < encode(msg).length);
  });

  it('messages without txns, with an empty list, or with a txns field that is not txns stay msgpack', () => {
    for (const msg of [{ t: 'commit', epoch: 1, zxid: 5n }, { t: 'proposal', epoch: 1, txns: [] }, { t: 'x', txns: [1, 'a'] }, { t: 'x', txns: 'no' }]) {
      const b = encodeMessage(msg);
      assert.notEqual(b[0], 0xc1);
      assert.deepStrictEqual(decodeMessage(b), decode(b));
      assert.deepStrictEqual(decodeMessage(b), msg);
    }
  });

  it('hostile binary messages throw (the frame is dropped); whatever decodes is checked by isValidZabMessage', () => {
    const random = mulberry32(11);
    const good = Buffer.from(encodeMessage({ t: 'proposal', epoch: 3, txns: txns.slice(0, 4), c: 1, s: 2 }));
    for (let n = 0; n < good.length; n++) assert.throws(() => decodeMessage(good.subarray(0, n)), `truncated at ${n}`);
    assert.throws(() => decodeMessage(Buffer.concat([good, bytes(0)])), 'trailing byte');
    const withHead = (v: unknown): Buffer => {
      const h = encode(v);
      return Buffer.concat([bytes(0xc1, 1, h.length), h, bytes(1, 2, 1, 0)]);
    };
    assert.throws(() => decodeMessage(withHead({ t: 'proposal', txns: [] })), 'a head that has txns already');
    assert.throws(() => decodeMessage(withHead([1, 2])), 'a head that is not an object');
    assert.throws(() => decodeMessage(bytes(0xc1, 3, 1, 0x80, 1, 0)), 'an unknown kind');
    assert.throws(() => decodeMessage(bytes(0xc1, 0, 1, 0x80, 1, 0)), 'kind 0');
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const s = Buffer.from(good);
      const flips = 1 + Math.floor(random() * 3);
      for (let k = 0; k < flips; k++) s[Math.floor(random() * s.length)] = Math.floor(random() * 256);
      let m: unknown;
      try {
        m = decodeMessage(s);
      } catch {
        continue;
      }
      if (isValidZabMessage(m)) accepted++;
    }
    assert.ok(accepted < 20_000);
  });
});
