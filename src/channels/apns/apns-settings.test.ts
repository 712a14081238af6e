// The APNs provider entry's settings schema: its defaults, and what it refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Value } from 'typebox/value';
import { keyId, teamId, topic } from '../../../test/helpers/apns-setup.js';
import { ApnsSettings, apnsProductionUrl } from './apns-settings.js';

test('the settings schema: defaults, and what it refuses', () => {
  const entry = {
    type: 'apns',
    name: 'apns-prod',
    teamId,
    keyId,
    signingKey: { file: 'AuthKey_KEY1234567.p8' },
    apps: [topic],
  };
  const withDefaults = Value.Default(ApnsSettings, structuredClone(entry));
  assert.ok(Value.Check(ApnsSettings, withDefaults));
  assert.equal(withDefaults.url, apnsProductionUrl);
  assert.equal(withDefaults.expirationSeconds, 86_400);
  assert.ok(
    Value.Check(ApnsSettings, { ...entry, url: 'https://api.sandbox.push.apple.com', caFile: 'ca.pem' }),
  );
  assert.ok(!Value.Check(ApnsSettings, { ...entry, teamId: 'short' }));
  assert.ok(!Value.Check(ApnsSettings, { ...entry, keyId: 'key1234567' }));
  assert.ok(
    !Value.Check(ApnsSettings, { ...entry, signingKey: '-----BEGIN PRIVATE KEY-----' }),
    'never inline',
  );
  assert.ok(!Value.Check(ApnsSettings, { ...entry, url: 'http://api.push.apple.com' }));
  assert.ok(!Value.Check(ApnsSettings, { ...entry, extra: true }));
});
