// Services and keys in the console: an admin creates a key (and its service), shown once and
// never audited; revokes it; rotates a webhook secret. Other roles are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient, signedInAs } from '../../test/helpers/console-browser.js';
import { findCallerByKey, getServiceSettings } from '../db/stores/api-key-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';

let db: TestDatabase;
let h: TestHerald;
const password = 'services passphrase';

function signedIn(role: ConsoleRole): Promise<ConsoleClient> {
  return signedInAs(db.pool, h.herald.consoleUrl ?? '', role, password);
}

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['console'] });
});
after(async () => {
  await h.stop();
  await db.drop();
});

test('an admin creates a key for a new service, revokes it, and rotates the webhook secret', async () => {
  const admin = await signedIn('admin');
  const page = await admin.get('/services');
  const csrf = ConsoleClient.csrfOf(page.text);
  const body = new URLSearchParams({ _csrf: csrf, service: 'billing', label: 'ci' });
  body.append('permissions', 'send');
  body.append('permissions', 'notifications:read');
  const created = await admin.request('POST', '/keys', body);
  assert.equal(created.status, 201, created.text);
  const text = created.text;
  const key = /<code class="secret">([^<]+)<\/code>/.exec(text)?.[1] ?? '';
  const caller = await findCallerByKey(db.pool, key);
  assert.ok(caller !== undefined, 'the key works');
  assert.deepEqual(caller.permissions, ['notifications:read', 'send']);
  assert.equal(caller.serviceName, 'billing');

  const keyId = caller.keyId;
  const revoked = await admin.request('POST', `/keys/${String(keyId)}/revoke`, { _csrf: csrf });
  assert.equal(revoked.status, 303);
  assert.equal(await findCallerByKey(db.pool, key), undefined);

  const before = await getServiceSettings(db.pool, caller.serviceId);
  const rotated = await admin.request('POST', `/services/${String(caller.serviceId)}/webhook-secret`, {
    _csrf: csrf,
  });
  assert.equal(rotated.status, 200);
  const after = await getServiceSettings(db.pool, caller.serviceId);
  assert.notEqual(after.webhookSecret, before.webhookSecret);
  assert.ok(rotated.text.includes(after.webhookSecret), 'the new secret is shown once');

  const audit = await db.pool.query<{ action: string; row: string }>(
    "SELECT action, row_to_json(a)::text AS row FROM audit_log a WHERE action LIKE 'api_key.%' OR action LIKE 'service.%' ORDER BY id",
  );
  assert.deepEqual(
    audit.rows.map((r) => r.action),
    ['api_key.create', 'api_key.revoke', 'service.rotate_webhook_secret'],
  );
  for (const r of audit.rows) {
    assert.ok(!r.row.includes(key), 'no key in the audit log');
    assert.ok(!r.row.includes(after.webhookSecret), 'no secret in the audit log');
  }
});

test('an operator sees no Services link and is refused every services action', async () => {
  const operator = await signedIn('operator');
  const home = await operator.get('/');
  assert.doesNotMatch(home.text, /href="\/services"/);
  assert.equal((await operator.get('/services')).status, 403);
  const csrf = ConsoleClient.csrfOf(home.text);
  assert.equal(
    (await operator.request('POST', '/keys', { _csrf: csrf, service: 'evil', permissions: 'admin' })).status,
    403,
  );
  const services = await db.pool.query("SELECT 1 FROM services WHERE name = 'evil'");
  assert.equal(services.rowCount, 0);
});
