import assert from 'node:assert/strict';
import { CreateMode } from '../../src/core/createMode.js';
import { Core, create, del, multi, ok, set, setAcl } from './harness.js';

const S1 = 0x100n;
const S2 = 0x200n;

/** Notifications of the last txn as compact `type path @session` strings, sorted. */
function fired(c: Core): string[] {
  return c.notes.map((n) => `${n.type} ${n.path} @${n.sessionId.toString(16)}`).sort();
}

describe('core/watches: the trigger table (SPEC §2, ZooKeeper DataTree/WatchManager)', () => {
  let c: Core;
  beforeEach(() => {
    c = new Core();
    c.openSession(S1);
    c.openSession(S2);
    ok(c.run(S1, create('/p')));
    ok(c.run(S1, create('/p/n', 'x')));
  });

  it('setData fires data watches (getData/exists) on the node', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('child', '/p/n', S1);
    c.watches.add('child', '/p', S2);
    c.watches.add('data', '/p', S2);
    ok(c.run(S1, set('/p/n', 'y')));
    assert.deepEqual(fired(c), ['NodeDataChanged /p/n @100']);
    // The child watch on the node and both watches on the parent are untouched.
    assert.ok(c.watches.has('child', '/p/n', S1));
    assert.ok(c.watches.has('child', '/p', S2));
    assert.ok(c.watches.has('data', '/p', S2));
  });

  it('a child\'s data change does NOT fire the parent\'s child watch', () => {
    c.watches.add('child', '/p', S1);
    ok(c.run(S1, set('/p/n', 'z')));
    assert.deepEqual(fired(c), []);
    assert.ok(c.watches.has('child', '/p', S1));
  });

  it('create fires exists (data) watches on the node and child watches on the parent', () => {
    c.watches.add('data', '/p/m', S1); // exists() on a missing node
    c.watches.add('child', '/p', S2);
    c.watches.add('data', '/p', S2); // not fired: the parent's data did not change
    ok(c.run(S1, create('/p/m')));
    assert.deepEqual(fired(c), ['NodeChildrenChanged /p @200', 'NodeCreated /p/m @100']);
    assert.ok(c.watches.has('data', '/p', S2));
  });

  it('delete fires data, exists and child watches on the node and child watches on the parent', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('child', '/p/n', S2);
    c.watches.add('child', '/p', S1);
    ok(c.run(S1, del('/p/n')));
    assert.deepEqual(fired(c), ['NodeChildrenChanged /p @100', 'NodeDeleted /p/n @100', 'NodeDeleted /p/n @200']);
  });

  it('a session holding both a data and a child watch on a deleted node gets one NodeDeleted', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('child', '/p/n', S1);
    ok(c.run(S1, del('/p/n')));
    assert.deepEqual(fired(c), ['NodeDeleted /p/n @100']);
    assert.equal(c.watches.size, 0);
  });

  it('setACL fires nothing', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('child', '/p', S1);
    ok(c.run(S1, setAcl('/p/n', [{ perms: 31, scheme: 'world', id: 'anyone' }])));
    assert.deepEqual(fired(c), []);
  });

  it('a failed write fires nothing', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('child', '/p', S1);
    c.run(S1, set('/p/n', 'y', 42));
    c.run(S1, create('/p/n'));
    c.run(S1, del('/p'));
    assert.deepEqual(fired(c), []);
    assert.equal(c.watches.size, 2);
  });

  it('one-time watches are removed when fired and do not fire again', () => {
    c.watches.add('data', '/p/n', S1);
    ok(c.run(S1, set('/p/n', '1')));
    assert.equal(fired(c).length, 1);
    assert.equal(c.watches.has('data', '/p/n', S1), false);
    ok(c.run(S1, set('/p/n', '2')));
    assert.deepEqual(fired(c), []);
  });

  it('registering the same watch twice keeps one registration', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('data', '/p/n', S1);
    assert.equal(c.watches.size, 1);
    ok(c.run(S1, set('/p/n', '1')));
    assert.deepEqual(fired(c), ['NodeDataChanged /p/n @100']);
  });

  it('a multi fires the events of all its ops, with the multi\'s zxid', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('child', '/p', S2);
    c.watches.add('data', '/q', S2);
    const z = c.nextZxid;
    ok(c.run(S1, multi(set('/p/n', 'v'), create('/q'), create('/p/x'))));
    assert.deepEqual(fired(c), ['NodeChildrenChanged /p @200', 'NodeCreated /q @200', 'NodeDataChanged /p/n @100']);
    for (const n of c.notes) assert.equal(n.zxid, z);
  });

  it('a failed multi fires nothing', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('child', '/p', S2);
    c.run(S1, multi(set('/p/n', 'v'), create('/p/x'), del('/nope')));
    assert.deepEqual(fired(c), []);
  });

  it('closeSession fires NodeDeleted for its ephemerals and NodeChildrenChanged on their parents', () => {
    ok(c.run(S1, create('/p/e', '', { mode: CreateMode.EPHEMERAL })));
    c.watches.add('data', '/p/e', S2);
    c.watches.add('child', '/p', S2);
    c.closeSession(S1);
    assert.deepEqual(fired(c), ['NodeChildrenChanged /p @200', 'NodeDeleted /p/e @200']);
  });

  it('removeSession drops every watch of the session', () => {
    c.watches.add('data', '/p/n', S1);
    c.watches.add('child', '/p', S1);
    c.watches.add('persistent', '/p', S1);
    c.watches.add('recursive', '/', S1);
    c.watches.add('data', '/p/n', S2);
    c.watches.removeSession(S1);
    assert.equal(c.watches.size, 1);
    ok(c.run(S1, set('/p/n', 'q')));
    assert.deepEqual(fired(c), ['NodeDataChanged /p/n @200']);
  });
});

describe('core/watches: persistent and persistent-recursive watches (SPEC §2 beyond, ZooKeeper 3.6 addWatch)', () => {
  let c: Core;
  beforeEach(() => {
    c = new Core();
    c.openSession(S1);
    ok(c.run(S1, create('/p')));
  });

  it('a persistent watch fires on every change of its node, including NodeChildrenChanged, and stays', () => {
    c.watches.add('persistent', '/p', S1);
    ok(c.run(S1, set('/p', 'a')));
    assert.deepEqual(fired(c), ['NodeDataChanged /p @100']);
    ok(c.run(S1, create('/p/c')));
    assert.deepEqual(fired(c), ['NodeChildrenChanged /p @100']);
    ok(c.run(S1, set('/p/c', 'x'))); // not its node
    assert.deepEqual(fired(c), []);
    ok(c.run(S1, del('/p/c')));
    assert.deepEqual(fired(c), ['NodeChildrenChanged /p @100']);
    ok(c.run(S1, del('/p')));
    assert.deepEqual(fired(c), ['NodeDeleted /p @100']);
    ok(c.run(S1, create('/p')));
    assert.deepEqual(fired(c), ['NodeCreated /p @100']);
    assert.ok(c.watches.has('persistent', '/p', S1));
  });

  it('a recursive watch fires for the node and every descendant, never NodeChildrenChanged', () => {
    c.watches.add('recursive', '/p', S1);
    ok(c.run(S1, create('/p/a')));
    assert.deepEqual(fired(c), ['NodeCreated /p/a @100']);
    ok(c.run(S1, create('/p/a/b')));
    assert.deepEqual(fired(c), ['NodeCreated /p/a/b @100']);
    ok(c.run(S1, set('/p/a/b', 'x')));
    assert.deepEqual(fired(c), ['NodeDataChanged /p/a/b @100']);
    ok(c.run(S1, set('/p', 'x')));
    assert.deepEqual(fired(c), ['NodeDataChanged /p @100']);
    ok(c.run(S1, del('/p/a/b')));
    assert.deepEqual(fired(c), ['NodeDeleted /p/a/b @100']);
    ok(c.run(S1, create('/pq'))); // a sibling with a common string prefix is not below /p
    assert.deepEqual(fired(c), []);
    assert.ok(c.watches.has('recursive', '/p', S1));
  });

  it('a recursive watch on / sees everything', () => {
    c.watches.add('recursive', '/', S1);
    ok(c.run(S1, create('/x')));
    assert.deepEqual(fired(c), ['NodeCreated /x @100']);
  });

  it('one-time and persistent watches of one session on one path give one notification', () => {
    c.watches.add('data', '/p', S1);
    c.watches.add('persistent', '/p', S1);
    c.watches.add('recursive', '/', S1);
    ok(c.run(S1, set('/p', 'v')));
    assert.deepEqual(fired(c), ['NodeDataChanged /p @100']);
    assert.equal(c.watches.has('data', '/p', S1), false);
    assert.ok(c.watches.has('persistent', '/p', S1));
  });

  it('removing a persistent watch stops it', () => {
    c.watches.add('persistent', '/p', S1);
    assert.equal(c.watches.remove('persistent', '/p', S1), true);
    assert.equal(c.watches.remove('persistent', '/p', S1), false);
    ok(c.run(S1, set('/p', 'v')));
    assert.deepEqual(fired(c), []);
  });
});

describe('core/watches: reports (wchs/wchc/wchp)', () => {
  it('counts registrations, paths and sessions', () => {
    const c = new Core();
    c.watches.add('data', '/a', S1);
    c.watches.add('child', '/a', S1);
    c.watches.add('data', '/b', S2);
    assert.equal(c.watches.size, 3);
    assert.equal(c.watches.pathCount, 2);
    assert.equal(c.watches.sessionCount, 2);
    assert.deepEqual([...c.watches.bySessionReport()], [[S1, ['/a']], [S2, ['/b']]]);
    assert.deepEqual([...c.watches.byPathReport()], [['/a', [S1]], ['/b', [S2]]]);
  });
});
