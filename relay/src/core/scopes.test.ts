import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasScope, matchesGlob, vmAllowed } from './scopes.js';

test('admin implies every scope; others only their own', () => {
  assert.equal(hasScope({ scopes: ['admin'] }, 'power'), true);
  assert.equal(hasScope({ scopes: ['consoles:read'] }, 'consoles:write'), false);
  assert.equal(hasScope({ scopes: ['consoles:read', 'vnc'] }, 'vnc'), true);
});

test('VM globs: * any run, ? one character, everything else literal (dots too)', () => {
  assert.equal(matchesGlob('web-1', 'web-*'), true);
  assert.equal(matchesGlob('web-', 'web-*'), true);
  assert.equal(matchesGlob('db-web-1', 'web-*'), false);
  assert.equal(matchesGlob('web-12', 'web-?'), false);
  assert.equal(matchesGlob('web-1', 'web-?'), true);
  assert.equal(matchesGlob('a.b', 'a.b'), true);
  assert.equal(matchesGlob('axb', 'a.b'), false, 'a dot is a dot, not a regex wildcard');
  assert.equal(vmAllowed({ scopes: [] }, 'anything'), true, 'no list: every VM');
  assert.equal(vmAllowed({ scopes: [], virtualMachines: ['web-*', 'db-1'] }, 'db-1'), true);
  assert.equal(vmAllowed({ scopes: [], virtualMachines: ['web-*', 'db-1'] }, 'db-2'), false);
});
