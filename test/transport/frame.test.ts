import assert from 'node:assert/strict';
import { decodePayload, encodeFrame, FrameDecoder, FrameError, isPeerMessage } from '../../src/transport/frame.js';
import { mulberry32 as seeded } from '../../src/testing/random.js';


function drain(d: FrameDecoder): unknown[] {
  const out: unknown[] = [];
  for (let p = d.next(); p !== null; p = d.next()) out.push(decodePayload(p));
  return out;
}

describe('transport/frame: length-prefixed msgpack frames', () => {
  it('decodes a stream of frames fed one byte at a time and in random chunks', () => {
    const r = seeded(1);
    const msgs = Array.from({ length: 300 }, (_, i) => ({ t: 'm', i, z: BigInt(i) << 40n, b: new Uint8Array(Math.floor(r() * (i % 50 === 0 ? 100_000 : 300))) }));
    const stream = Buffer.concat(msgs.map((m) => encodeFrame(m)));
    for (const cut of ['bytes', 'random']) {
      const d = new FrameDecoder();
      const got: unknown[] = [];
      for (let i = 0; i < stream.length; ) {
        const n = cut === 'bytes' && i < 5000 ? 1 : 1 + Math.floor(r() * 70_000);
        d.push(stream.subarray(i, i + n));
        got.push(...drain(d));
        i += n;
      }
      assert.equal(got.length, msgs.length, cut);
      got.forEach((g, i) => {
        const m = g as (typeof msgs)[number];
        assert.equal(m.i, i);
        assert.equal(m.z, BigInt(i) << 40n);
        assert.equal(m.b.length, msgs[i]!.b.length);
      });
      assert.equal(d.bufferedBytes, 0);
      assert.equal(d.midFrame, false);
    }
  });

  it('rejects a length above the maximum as soon as the header arrives, without waiting for the payload', () => {
    const d = new FrameDecoder(1024);
    d.push(Buffer.from([0x00, 0x00, 0x04]));
    assert.equal(d.next(), null);
    assert.equal(d.midFrame, true);
    d.push(Buffer.from([0x01]));
    assert.throws(() => d.next(), (e: unknown) => e instanceof FrameError && e.reason === 'oversize');
    d.push(Buffer.alloc(10));
    assert.throws(() => d.next(), FrameError, 'a decoder that lost sync stays failed');
    assert.equal(d.bufferedBytes, 0, 'nothing kept after the failure');
  });

  it('applies a changed maximum from the next frame on (small during a handshake, large after)', () => {
    const d = new FrameDecoder(100);
    d.push(Buffer.concat([encodeFrame({ t: 'hello' }), encodeFrame({ t: 'big', b: new Uint8Array(500) })]));
    assert.deepEqual(decodePayload(d.next()!), { t: 'hello' });
    d.maxFrameBytes = 10_000;
    assert.equal((decodePayload(d.next()!) as { b: Uint8Array }).b.length, 500);
  });

  it('returns payloads in their own buffers, never views of the pushed chunks', () => {
    const d = new FrameDecoder();
    const chunk = Buffer.concat([encodeFrame({ t: 'a', b: new Uint8Array([1, 2, 3]) }), encodeFrame({ t: 'b' })]);
    d.push(chunk);
    const p = d.next()!;
    assert.notEqual(p.buffer, chunk.buffer);
    assert.equal(p.byteLength, p.buffer.byteLength, 'not a slice of a pooled slab');
    const q = d.next()!;
    assert.equal(q.byteLength, q.buffer.byteLength);
  });

  it('reports undecodable payloads, empty frames, and non-messages without throwing anything else', () => {
    assert.throws(() => decodePayload(new Uint8Array(0)), (e: unknown) => e instanceof FrameError && e.reason === 'decode');
    // 0xc1 (never used by msgpack) starts the binary form of a message carrying txns: alone, or
    // with an unknown version or a truncated head, it is undecodable.
    assert.throws(() => decodePayload(Buffer.from([0xc1])), FrameError);
    assert.throws(() => decodePayload(Buffer.from([0xc1, 0x09, 0x01, 0x80])), FrameError);
    assert.throws(() => decodePayload(Buffer.from([0xc1, 0x01, 0x05, 0x80])), FrameError);
    assert.throws(() => decodePayload(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])), FrameError, 'a huge array claim');
    assert.throws(() => decodePayload(Buffer.from([0x92, 0x01, 0x02, 0x03])), FrameError, 'trailing bytes');
    for (const v of [null, 1, 'x', [1], new Uint8Array(3), {}, { t: 5 }]) assert.equal(isPeerMessage(v), false, String(v));
    assert.equal(isPeerMessage({ t: 'vote' }), true);
  });

  it('refuses to encode what cannot be sent', () => {
    assert.throws(() => encodeFrame({ t: 'x', b: new Uint8Array(200) }, 100), (e: unknown) => e instanceof FrameError && e.reason === 'oversize');
    assert.throws(() => encodeFrame({ t: 'x', n: 2n ** 64n }), (e: unknown) => e instanceof FrameError && e.reason === 'encode');
    const f = encodeFrame({ t: 'ok' });
    assert.equal(f.readUInt32BE(0), f.length - 4);
  });
});
