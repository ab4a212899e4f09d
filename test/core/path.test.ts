import assert from 'node:assert/strict';
import { KeeperError } from '../../src/core/errors.js';
import { validatePath, parentOf, basename } from '../../src/core/path.js';

describe('core/path: znode path validation (SPEC §1)', () => {
  for (const bad of ['', 'a', 'a/b', '/a/', '//', '/a//b', '/.', '/..', '/a/./b', '/a/../b', '/a\u0000b', '/a\u0001', '/a\u007f']) {
    it(`refuses ${JSON.stringify(bad)} with BADARGUMENTS`, () => {
      assert.throws(() => validatePath(bad), (e: unknown) => e instanceof KeeperError && e.code === 'BADARGUMENTS');
    });
  }
  for (const good of ['/', '/a', '/a/b', '/a.b', '/..a', '/a/...', '/ü', '/a-0000000001']) {
    it(`accepts ${JSON.stringify(good)}`, () => validatePath(good));
  }
  it('refuses non-strings', () => {
    assert.throws(() => validatePath(42 as unknown as string), (e: unknown) => e instanceof KeeperError && e.code === 'BADARGUMENTS');
  });
  it('allows a trailing slash only for sequential creates', () => {
    validatePath('/q/', true);
    assert.throws(() => validatePath('/q/'));
  });
  it('splits parent and name', () => {
    assert.equal(parentOf('/a/b/c'), '/a/b');
    assert.equal(parentOf('/a'), '/');
    assert.equal(basename('/a/b/c'), 'c');
  });
});
