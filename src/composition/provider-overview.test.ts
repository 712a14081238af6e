// The console's overview of the providers: fallback chains, limits with their defaults, and every
// credential (nested ones too) reduced to set or not set, without the variable or file it names.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load-config.js';
import { providerOverview } from './provider-overview.js';

let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'herald-overview-'));
  const providers = [
    {
      type: 'twilio',
      name: 'twilio',
      accountSid: `AC${'0'.repeat(32)}`,
      authToken: { env: 'CANARY_TWILIO_VARIABLE' },
      from: '+15550001111',
      fallback: 'gateway',
      ratePerSecond: 5,
    },
    {
      type: 'sms_gateway',
      name: 'gateway',
      url: 'https://sms.example.com/send',
      format: 'json',
      headers: { Authorization: { file: 'canary-gateway-file.txt' }, 'X-Plain': 'plain' },
      secrets: { token: { env: 'CANARY_SECRET_VARIABLE' } },
      body: { to: '{{to}}', text: '{{text}}' },
      fallback: 'twilio',
      concurrency: 3,
    },
    {
      type: 'ses',
      name: 'ses',
      region: 'eu-west-1',
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKey: { env: 'CANARY_SES_VARIABLE' },
      from: 'Herald <noreply@example.com>',
    },
  ];
  await writeFile(join(dir, 'herald.json'), JSON.stringify({ providers }));
});
after(async () => {
  await rm(dir, { recursive: true });
});

test('each provider with its fallbacks, limits and credentials as set or not set, and no credential reference', () => {
  const overview = providerOverview(
    loadConfig({
      HERALD_CONFIG_FILE: join(dir, 'herald.json'),
      WORKER_CONCURRENCY: '10',
      PROVIDER_MAX_SLOT_SHARE: '0.5',
      WEBHOOK_RATE_PER_SECOND: '9',
    }),
  );
  const byName = new Map(overview.providers.map((p) => [p.name, p]));
  assert.deepEqual([...byName.keys()], ['webhook', 'slack', 'twilio', 'gateway', 'ses']);
  assert.deepEqual(byName.get('twilio')?.fallbacks, ['gateway'], 'a loop stops where it started');
  assert.deepEqual(byName.get('gateway')?.fallbacks, ['twilio']);
  assert.equal(byName.get('twilio')?.ratePerSecond, 5);
  assert.deepEqual(
    [byName.get('twilio')?.concurrency, byName.get('twilio')?.concurrencyIsDefault],
    [5, true],
  );
  assert.deepEqual(
    [byName.get('gateway')?.concurrency, byName.get('gateway')?.concurrencyIsDefault],
    [3, false],
  );
  assert.equal(byName.get('webhook')?.ratePerSecond, 9);
  assert.equal(byName.get('slack')?.ratePerSecond, undefined);
  assert.deepEqual(byName.get('twilio')?.credentials, [{ field: 'authToken', set: true }]);
  assert.deepEqual(byName.get('gateway')?.credentials, [
    { field: 'headers.Authorization', set: true },
    { field: 'secrets.token', set: true },
  ]);
  assert.deepEqual(byName.get('ses')?.credentials, [
    { field: 'secretAccessKey', set: true },
    { field: 'callbackPassword', set: false },
  ]);
  assert.doesNotMatch(JSON.stringify(overview), /CANARY/i);
});
