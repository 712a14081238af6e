import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdsAny, parsePermissions, permissions } from './permissions.js';

test('--roles lists: permissions, the sender and all aliases, sorted and without repeats', () => {
  assert.deepEqual(parsePermissions('sender'), ['send', 'notifications:read']);
  assert.deepEqual(parsePermissions('all'), [...permissions]);
  assert.deepEqual(parsePermissions('admin, send,sender'), ['send', 'notifications:read', 'admin']);
  assert.deepEqual(parsePermissions('users:write,users:read'), ['users:read', 'users:write']);
});

test('an empty list or an unknown name is refused (the old role names admin and support are permissions)', () => {
  for (const list of ['', ',', 'sender,root', 'users', 'Send'])
    assert.equal(parsePermissions(list), undefined);
  assert.deepEqual(parsePermissions('support'), ['support']);
});

test('holdsAny', () => {
  assert.equal(holdsAny(['send'], ['send', 'admin']), true);
  assert.equal(holdsAny(['send'], ['admin']), false);
  assert.equal(holdsAny([], permissions), false);
});
