import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleCapabilities, consoleRoles, isConsoleRole, roleAllows } from './console-roles.js';

test('an admin may do everything; every other role may read', () => {
  for (const capability of consoleCapabilities) assert.equal(roleAllows('admin', capability), true);
  for (const role of consoleRoles) assert.equal(roleAllows(role, 'read'), true, role);
});

test('a viewer changes nothing; support looks up but never writes; operators never manage people', () => {
  for (const capability of consoleCapabilities.filter((c) => c !== 'read'))
    assert.equal(roleAllows('viewer', capability), false, capability);
  assert.equal(roleAllows('support', 'support:lookup'), true);
  assert.equal(roleAllows('support', 'templates:write'), false);
  assert.equal(roleAllows('operator', 'templates:write'), true);
  assert.equal(roleAllows('operator', 'console_users:manage'), false);
  assert.equal(roleAllows('operator', 'services:manage'), false);
});

test('only the four roles are roles', () => {
  assert.equal(isConsoleRole('operator'), true);
  assert.equal(isConsoleRole('root'), false);
  assert.equal(isConsoleRole('constructor'), false);
});
