import assert from 'node:assert/strict';
import { KeeperError } from '../../src/core/errors.js';
import { validateRequestOp } from '../../src/core/request.js';

const MiB = 1024 * 1024;
const open = [{ perms: 31, scheme: 'world', id: 'anyone' }];

function refused(op: unknown, code = 'BADARGUMENTS', max = MiB): KeeperError {
  let err: unknown;
  try {
    validateRequestOp(op, max);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof KeeperError, `expected ${code} for ${JSON.stringify(op, (_k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v))}`);
  assert.equal(err.code, code);
  return err;
}

const create = (o: Record<string, unknown> = {}) => ({ type: 'create', path: '/a', data: new Uint8Array(0), acl: open, mode: 0, ttl: 0, ...o });

describe('core/request: every write is validated before prep (SPEC §1)', () => {
  for (const path of ['', 'a', '/a/', '//', '/a//b', '/.', '/a/..', '/a\u0000b', '/a\u0007', 42, null]) {
    it(`refuses path ${JSON.stringify(path)} for create, delete, setData, setACL and check`, () => {
      refused(create({ path }));
      refused({ type: 'delete', path, version: -1 });
      refused({ type: 'setData', path, data: new Uint8Array(0), version: -1 });
      refused({ type: 'setACL', path, acl: open, version: -1 });
      refused({ type: 'check', path, version: -1 });
    });
  }

  it('allows a trailing slash for sequential creates only', () => {
    validateRequestOp(create({ path: '/q/', mode: 2 }), MiB);
    validateRequestOp(create({ path: '/q/', mode: 3 }), MiB);
    refused(create({ path: '/q/', mode: 0 }));
    refused(create({ path: '/q/', mode: 1 }));
  });

  it('data up to maxDataBytes is fine, one byte more is BADARGUMENTS', () => {
    validateRequestOp(create({ data: new Uint8Array(MiB) }), MiB);
    validateRequestOp({ type: 'setData', path: '/a', data: new Uint8Array(MiB), version: -1 }, MiB);
    refused(create({ data: new Uint8Array(MiB + 1) }));
    refused({ type: 'setData', path: '/a', data: new Uint8Array(MiB + 1), version: -1 });
    refused({ type: 'setData', path: '/a', data: new Uint8Array(11), version: -1 }, 'BADARGUMENTS', 10);
  });

  it('data must be bytes', () => {
    refused(create({ data: 42 }));
    refused(create({ data: 'text' })); // the session converts strings; a raw request must carry bytes
    refused({ type: 'setData', path: '/a', data: [1, 2], version: -1 });
  });

  it('versions must be integers (-1 = any)', () => {
    for (const version of ['1', 1.5, NaN, null, undefined, 2 ** 31]) {
      refused({ type: 'setData', path: '/a', data: new Uint8Array(0), version });
      refused({ type: 'delete', path: '/a', version });
      refused({ type: 'check', path: '/a', version });
      refused({ type: 'setACL', path: '/a', acl: open, version });
    }
  });

  it('modes must be CreateMode values', () => {
    for (const mode of [-1, 7, 1.5, '0', null]) refused(create({ mode }));
  });

  it('ttl only with the TTL modes, and within 1 .. 2^40-1 ms', () => {
    validateRequestOp(create({ mode: 5, ttl: 1000 }), MiB);
    validateRequestOp(create({ mode: 6, ttl: 1 }), MiB);
    refused(create({ mode: 5, ttl: 0 }));
    refused(create({ mode: 5, ttl: -5 }));
    refused(create({ mode: 5, ttl: 2 ** 40 }));
    refused(create({ mode: 0, ttl: 1000 }));
  });

  it('an ACL that is not an array is a bad argument (an array with bad entries is INVALIDACL, in prep)', () => {
    refused(create({ acl: 'world:anyone' }));
    refused({ type: 'setACL', path: '/a', acl: { perms: 31 }, version: -1 });
  });

  it('the reserved /zookeeper subtree is not writable', () => {
    refused(create({ path: '/zookeeper' }));
    refused(create({ path: '/zookeeper/x' }));
    refused({ type: 'setData', path: '/zookeeper', data: new Uint8Array(0), version: -1 });
    refused({ type: 'delete', path: '/zookeeper/quota', version: -1 });
    refused({ type: 'setACL', path: '/zookeeper', acl: open, version: -1 });
    validateRequestOp(create({ path: '/zookeeperx' }), MiB);
  });

  it('the root cannot be deleted', () => {
    refused({ type: 'delete', path: '/', version: -1 });
  });

  it('a bad op inside a multi is refused with per-op results', () => {
    const e = refused({ type: 'multi', ops: [create(), { type: 'delete', path: 'rel', version: -1 }, create({ path: '/b' })] });
    assert.deepEqual(e.results, [
      { type: 'error', code: 'OK' },
      { type: 'error', code: 'BADARGUMENTS' },
      { type: 'error', code: 'RUNTIMEINCONSISTENCY' },
    ]);
  });

  it('a multi is refused when its ops are not an array, unknown, or carry too much data together', () => {
    refused({ type: 'multi', ops: 'x' });
    refused({ type: 'multi', ops: [{ type: 'setACL', path: '/a', acl: open, version: -1 }] });
    refused({ type: 'multi', ops: [create({ data: new Uint8Array(600 * 1024) }), create({ path: '/b', data: new Uint8Array(600 * 1024) })] });
  });

  it('unknown request shapes are refused', () => {
    refused(null);
    refused('create');
    refused({ type: 'nope' });
  });
});
