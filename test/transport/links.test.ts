import assert from 'node:assert/strict';
import { LinkTransport, parseLinkInfo, type Channel, type ChannelTag, type DialOutcome, type LinkInfo } from '../../src/transport/links.js';
import type { PeerAddresses, PeerMessage } from '../../src/transport/types.js';
import { record } from './compliance.js';

/** A channel that records whether the link closed it. */
class FakeChannel implements Channel {
  closed = false;
  constructor(readonly peer: number) {}
  send(_msg: PeerMessage): void {}
  queued(): number {
    return 0;
  }
  close(): void {
    this.closed = true;
  }
}

/**
 * The shared link logic with the wire taken out: dials never complete (so nothing but the test
 * establishes channels), and the handshake outcomes are driven by hand.
 */
class HandDriven extends LinkTransport {
  readonly kind = 'hand';
  dials = 0;
  listen(): Promise<string> {
    return Promise.resolve('hand');
  }
  protected async shutdown(): Promise<void> {}
  protected configure(_self: number, _peers: PeerAddresses): void {}
  protected dial(_peer: number): Promise<DialOutcome> {
    this.dials++;
    return new Promise(() => undefined);
  }
  get inc(): string {
    return this.incarnation;
  }
  hello(peer: number): Required<LinkInfo> | undefined {
    return this.helloInfo(peer);
  }
  establish(ch: Channel, tag: ChannelTag | undefined, remoteInc: string | undefined): boolean {
    return this.established(ch, tag, remoteInc);
  }
  poke(peer: number, info: LinkInfo): void {
    this.poked(peer, info);
  }
}

const peers: PeerAddresses = new Map([[1, 'a'], [2, 'b']]);

describe('links: telling a stale poke from a real one', () => {
  let lower: HandDriven;
  let higher: HandDriven;
  beforeEach(async () => {
    lower = new HandDriven({});
    higher = new HandDriven({});
    await lower.start(1, peers);
    await higher.start(2, peers);
  });
  afterEach(async () => {
    await lower.stop();
    await higher.stop();
  });

  /** Member 1 dials member 2's data channel and both sides adopt it; member 1's end and the tag. */
  function connect(): { ch: FakeChannel; tag: ChannelTag } {
    const info = lower.hello(2)!;
    const tag = { inc: lower.inc, ch: info.ch };
    assert.ok(higher.establish(new FakeChannel(1), tag, lower.inc));
    const ch = new FakeChannel(2);
    assert.ok(lower.establish(ch, tag, higher.inc));
    return { ch, tag };
  }

  it('keeps the channel on a poke that the same incarnation sent before it adopted the channel', () => {
    const before = higher.hello(1)!; // member 2 pokes: it has no channel yet
    assert.equal(before.lost, null);
    const { ch } = connect(); // member 1's data channel overtakes the poke
    const r = record(lower);
    lower.poke(2, before);
    assert.equal(ch.closed, false);
    assert.deepEqual(lower.connected(), [2]);
    assert.deepEqual(r.log, []);
  });

  it('drops it on a poke from another incarnation (the peer restarted: the channel is half-open)', async () => {
    const { ch } = connect();
    const r = record(lower);
    await higher.stop();
    await higher.start(2, peers); // a new incarnation, which never saw the channel
    lower.poke(2, higher.hello(1)!);
    assert.equal(ch.closed, true);
    assert.deepEqual(lower.connected(), []);
    assert.deepEqual(r.log, ['down:2']);
  });

  it('drops it on a poke that names it as lost', () => {
    const { ch, tag } = connect();
    const r = record(lower);
    lower.poke(2, { inc: higher.inc, lost: tag });
    assert.equal(ch.closed, true);
    assert.deepEqual(r.log, ['down:2']);
  });

  it('drops it on a poke without link fields (a peer that sends none: its pokes always count)', () => {
    const { ch } = connect();
    lower.poke(2, {});
    assert.equal(ch.closed, true);
  });

  it('a poke names the last channel its sender had, and is not sent while one is up', () => {
    assert.equal(higher.hello(1)!.lost, null, 'nothing had yet');
    const tag = { inc: lower.inc, ch: lower.hello(2)!.ch };
    const atHigher = new FakeChannel(1);
    higher.establish(atHigher, tag, lower.inc);
    assert.equal(higher.hello(1), undefined);
    // The channel closes on member 2's side (as its transport reports it): the next poke names it.
    (higher as unknown as { channelClosed(c: Channel): void }).channelClosed(atHigher);
    assert.deepEqual(higher.hello(1)!.lost, tag);
    assert.equal(lower.hello(2)!.lost, null, 'the lower id names no lost channel: it dials the data channel itself');
  });
});

describe('links: parseLinkInfo', () => {
  it('accepts absent fields and well-formed ones', () => {
    assert.deepEqual(parseLinkInfo({ t: 'hello' }), {});
    assert.deepEqual(parseLinkInfo({ inc: 'ab12', ch: 3, lost: { inc: 'cd', ch: 0 } }), { inc: 'ab12', ch: 3, lost: { inc: 'cd', ch: 0 } });
    assert.deepEqual(parseLinkInfo({ inc: 'ab12', ch: 3, lost: null }), { inc: 'ab12', ch: 3, lost: null });
  });
  it('says what is malformed', () => {
    for (const [msg, re] of [
      [{ inc: '' }, /incarnation/],
      [{ inc: 'x'.repeat(33) }, /incarnation/],
      [{ inc: 5 }, /incarnation/],
      [{ ch: -1 }, /channel number/],
      [{ ch: 1.5 }, /channel number/],
      [{ ch: 2 ** 60 }, /channel number/],
      [{ lost: 'x' }, /lost channel/],
      [{ lost: { inc: 'a' } }, /lost channel/],
      [{ lost: { inc: 'a', ch: 'b' } }, /lost channel/],
      [{ lost: [1, 2] }, /lost channel/],
    ] as const) {
      const r = parseLinkInfo(msg as Record<string, unknown>);
      assert.equal(typeof r, 'string', JSON.stringify(msg));
      assert.match(r as string, re);
    }
  });
});
