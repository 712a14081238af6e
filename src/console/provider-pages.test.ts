// The providers page: every role sees the providers as configured, per channel, with their
// fallbacks, limits and the breaker settings; a credential shows only as set or not set, and its
// value, variable or file is nowhere in the page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { signedInAs } from '../../test/helpers/console-browser.js';

let db: TestDatabase;
let h: TestHerald;
let dir: string;
const secret = 'canary-smtp-password-5f1c9e';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'herald-providers-'));
  await writeFile(join(dir, 'smtp-password.txt'), secret);
  await writeFile(
    join(dir, 'herald.json'),
    JSON.stringify({
      providers: [
        {
          type: 'smtp',
          name: 'relay',
          host: '127.0.0.1',
          port: 2525,
          user: 'mailer',
          password: { file: 'smtp-password.txt' },
          from: 'Herald <noreply@example.com>',
          fallback: 'backup',
          concurrency: 7,
          ratePerSecond: 12.5,
        },
        { type: 'smtp', name: 'backup', host: '127.0.0.1', port: 2526, from: 'Herald <noreply@example.com>' },
      ],
    }),
  );
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    roles: ['console'],
    env: { HERALD_CONFIG_FILE: join(dir, 'herald.json'), PROVIDER_BREAKER_MIN_CALLS: '33' },
  });
});
after(async () => {
  await h.stop();
  await db.drop();
  await rm(dir, { recursive: true });
});

test('a viewer sees each channel’s providers, fallbacks, limits and breaker; credentials only as set or not', async () => {
  const viewer = await signedInAs(db.pool, h.herald.consoleUrl ?? '', 'viewer', 'providers passphrase');
  const page = await viewer.get('/providers');
  assert.equal(page.status, 200);
  const row = (name: string) =>
    new RegExp(`<tr data-provider="${name}">([\\s\\S]*?)</tr>`).exec(page.text)?.[1] ?? '';
  assert.match(row('relay'), /<td>smtp<\/td><td>backup<\/td><td>7<\/td><td>12.5\/s per provider<\/td>/);
  assert.match(row('relay'), /<li>password: set<\/li>/);
  assert.match(row('backup'), /<td>none<\/td><td>\d+ \(default\)<\/td><td>no limit<\/td>/);
  assert.match(row('backup'), /<li>password: not set<\/li>/);
  assert.match(row('webhook'), /<td>webhook<\/td>/);
  assert.match(page.text, /<dd>33 calls in the window<\/dd>/);
  assert.match(page.text, /<h2>email<\/h2>/);
  for (const hidden of [secret, 'smtp-password.txt'])
    assert.ok(!page.text.includes(hidden), `${hidden} is not in the page`);
});
