// Templates in the console: every role reads a service's templates and a template's versions;
// an operator saves a new version (checked as the API's PUT checks, audited with the version
// before and after); the preview renders Korean and English, as JSON for the page's script and
// without JavaScript; viewers and support see no edit form and a forged save is refused; form
// fields naming another service change nothing; odd paths answer 404.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient, signedInAs } from '../../test/helpers/console-browser.js';
import { withTransaction } from '../db/pools.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { findTemplateVersion, saveTemplate } from '../db/stores/template-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';
import type { TemplateDefinition } from '../domain/template.js';
import type { ChannelProvider } from '../channels/channel-provider.js';
import { checkSmsText, smsText } from '../channels/sms/sms-text.js';

let db: TestDatabase;
let h: TestHerald;
let shop: number;
let bank: number;
const password = 'templates passphrase';
const clients = new Map<ConsoleRole, ConsoleClient>();

const greet: TemplateDefinition = {
  category: 'account',
  lane: 'transactional',
  params: { name: 'string' },
  fallbackLocale: 'en',
  variants: {
    sms: { en: { text: 'Hello {{ name }}' }, ko: { text: '{{ name }}님 안녕하세요' } },
    in_app: { en: { title: 'Hi', body: 'Hello {{ name }}' }, ko: { title: '안녕', body: '{{ name }}님' } },
  },
};

async function signedIn(role: ConsoleRole): Promise<ConsoleClient> {
  const known = clients.get(role);
  if (known !== undefined) return known;
  const client = await signedInAs(db.pool, h.herald.consoleUrl ?? '', role, password);
  clients.set(role, client);
  return client;
}

async function currentVersion(serviceId: number, key = 'greet'): Promise<number | undefined> {
  return (await findTemplateVersion(db.pool, serviceId, key))?.version;
}

/** The edit form's fields for greet as it is (opened on version `base`, 1 unless given), with `changes` applied. */
function greetForm(csrf: string, changes: Record<string, string>): Record<string, string> {
  return {
    _csrf: csrf,
    base_version: '1',
    category: 'account',
    lane: 'transactional',
    params: 'name:string',
    fallback_locale: 'en',
    'v|sms|en|text': 'Hello {{ name }}',
    'v|sms|ko|text': '{{ name }}님 안녕하세요',
    'v|in_app|en|title': 'Hi',
    'v|in_app|en|body': 'Hello {{ name }}',
    'v|in_app|en|url': '',
    'v|in_app|ko|title': '안녕',
    'v|in_app|ko|body': '{{ name }}님',
    'v|in_app|ko|url': '',
    ...changes,
  };
}

/** An SMS provider configured for at most one segment, refusing longer text as the SMS adapters do. */
const oneSegmentSms: ChannelProvider = {
  name: 'one-segment-sms',
  channel: 'sms',
  checkContent: (content) => checkSmsText(smsText(content), { maxSegments: 1 }),
  send: () => Promise.resolve({ kind: 'failed', reason: 'this test sends nothing' }),
  close: () => Promise.resolve(),
};

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['console'], providers: [oneSegmentSms] });
  shop = await ensureService(db.pool, 'shop');
  bank = await ensureService(db.pool, 'bank');
  await withTransaction(db.pool, async (client) => {
    await saveTemplate(client, shop, 'greet', greet);
    await saveTemplate(client, bank, 'greet', greet);
  });
});
after(async () => {
  await h.stop();
  await db.drop();
});

test('a viewer and support read templates but see no edit form, and a forged save is refused', async () => {
  for (const role of ['viewer', 'support'] as const) {
    const client = await signedIn(role);
    const list = await client.get('/templates?service=shop');
    assert.equal(list.status, 200);
    assert.match(list.text, /href="\/templates\/shop\/greet"/);
    const page = await client.get('/templates/shop/greet');
    assert.equal(page.status, 200);
    assert.match(page.text, /\{\{ name \}\}님 안녕하세요/);
    assert.doesNotMatch(page.text, /<form method="post" action="\/templates\/shop\/greet"/);
    assert.doesNotMatch(page.text, /Save/);
    const csrf = ConsoleClient.csrfOf(page.text);
    const forged = await client.request(
      'POST',
      '/templates/shop/greet',
      greetForm(csrf, { 'v|sms|en|text': 'Pwned {{ name }}' }),
    );
    assert.equal(forged.status, 403, forged.text);
    assert.equal(await currentVersion(shop), 1);
  }
});

test('an operator saves a new version; the history shows who, and the diff old → new', async () => {
  const operator = await signedIn('operator');
  const page = await operator.get('/templates/shop/greet');
  assert.match(page.text, /<form method="post" action="\/templates\/shop\/greet"/);
  assert.match(page.text, /name="base_version" value="1"/);
  const csrf = ConsoleClient.csrfOf(page.text);

  const refused = await operator.request(
    'POST',
    '/templates/shop/greet',
    greetForm(csrf, { 'v|sms|en|text': 'Hello {{ nobody }}' }),
  );
  assert.equal(refused.status, 400);
  assert.match(refused.text, /sms \/ en \/ text: /);
  assert.equal(await currentVersion(shop), 1, 'a refused save writes nothing');

  const saved = await operator.request(
    'POST',
    '/templates/shop/greet',
    greetForm(csrf, { 'v|sms|en|text': 'Welcome, {{ name }}!' }),
  );
  assert.equal(saved.status, 303, saved.text);
  assert.equal(saved.headers.get('location'), '/templates/shop/greet?saved=2');
  assert.equal(await currentVersion(shop), 2);
  assert.equal(await currentVersion(bank), 1, 'the other service keeps its template');

  const after = await operator.get('/templates/shop/greet?saved=2');
  assert.match(after.text, /Saved: version 2 is current/);
  assert.match(after.text, /operator@example\.com \(save\)/);
  assert.match(after.text, /Version 2 against version 1/);
  assert.match(after.text, /sms \/ en \/ text<\/td><td class="old"><pre>Hello \{\{ name \}\}<\/pre>/);
  assert.match(after.text, /<td class="new"><pre>Welcome, \{\{ name \}\}!<\/pre>/);

  const audit = await db.pool.query<{
    actor_name: string;
    target: string;
    before: { version: number };
    after: { version: number };
    client_address: string | null;
  }>(
    "SELECT actor_name, target, before, after, client_address FROM audit_log WHERE action = 'template.save'",
  );
  assert.equal(audit.rows.length, 1);
  const entry = audit.rows[0];
  assert.equal(entry?.actor_name, 'operator@example.com');
  assert.equal(entry.target, 'template:shop/greet');
  assert.equal(entry.before.version, 1);
  assert.equal(entry.after.version, 2);
  assert.ok(entry.client_address !== null);

  const stale = await operator.request(
    'POST',
    '/templates/shop/greet',
    greetForm(csrf, { 'v|sms|en|text': 'Overwriting {{ name }}' }),
  );
  assert.equal(stale.status, 409, 'a form opened on version 1 does not overwrite version 2');
  assert.match(stale.text, /the template changed since you opened it/);
  assert.match(stale.text, /name="base_version" value="2"/);
  assert.equal(await currentVersion(shop), 2);

  const same = await operator.request(
    'POST',
    '/templates/shop/greet',
    greetForm(csrf, { base_version: '2', 'v|sms|en|text': 'Welcome, {{ name }}!' }),
  );
  assert.equal(same.headers.get('location'), '/templates/shop/greet?unchanged=1');
  assert.equal(await currentVersion(shop), 2);
});

test('the preview renders Korean and English, as JSON for the script and as a page without it', async () => {
  const viewer = await signedIn('viewer');
  const page = await viewer.get('/templates/bank/greet');
  assert.match(page.text, /<script src="\/assets\/template-preview\.js"><\/script>/);
  const csrf = ConsoleClient.csrfOf(page.text);
  const preview = async (locale: string, params: string) => {
    const response = await viewer.send('/templates/bank/greet/preview', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ channel: 'sms', locale, params }),
    });
    assert.equal(response.status, 200);
    return (await response.json()) as {
      locale: string;
      parts: { text: string }[];
      limits: string[];
      notes: string[];
      errors: string[];
    };
  };
  const ko = await preview('ko-KR', '{"name": "김하나"}');
  assert.equal(ko.locale, 'ko');
  assert.deepEqual(ko.parts, [{ name: 'text', text: '김하나님 안녕하세요' }]);
  assert.match(ko.notes[0] ?? '', /1 SMS segment\(s\): UCS-2/);
  const en = await preview('en', '{"name": "Kim"}');
  assert.deepEqual(en.parts, [{ name: 'text', text: 'Hello Kim' }]);
  const bad = await preview('en', '{"name": 3}');
  assert.match(bad.errors[0] ?? '', /params\/name: must be a string/);
  assert.match((await preview('en', '{nope')).errors[0] ?? '', /not valid JSON/);
  const long = await preview('ko', JSON.stringify({ name: '김'.repeat(70) }));
  assert.match(long.limits[0] ?? '', /segment/, 'the configured SMS provider refuses two segments');
  assert.match(long.notes[0] ?? '', /2 SMS segment\(s\)/);
  assert.deepEqual(ko.limits, []);

  const noCsrf = await viewer.send('/templates/bank/greet/preview', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel: 'sms', locale: 'en', params: '{}' }),
  });
  assert.equal(noCsrf.status, 403);

  const withoutScript = await viewer.get(
    `/templates/bank/greet?channel=in_app&locale=ko&params=${encodeURIComponent('{"name":"김하나"}')}`,
  );
  assert.match(withoutScript.text, /Rendered in ko/);
  assert.match(withoutScript.text, /<pre>김하나님<\/pre>/);
  assert.equal((await viewer.get('/assets/template-preview.js')).status, 200);
});

test("the preview renders the edit form's unsaved text, checked as a save would check it, and saves nothing", async () => {
  const operator = await signedIn('operator');
  const page = await operator.get('/templates/bank/greet');
  const csrf = ConsoleClient.csrfOf(page.text);
  const draft = async (changes: Record<string, string>, locale = 'ko') => {
    const fields: Record<string, string> = greetForm(csrf, changes);
    delete fields['_csrf'];
    const response = await operator.send('/templates/bank/greet/preview', {
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ channel: 'sms', locale, params: '{"name": "김하나"}', draft: fields }),
    });
    assert.equal(response.status, 200);
    return (await response.json()) as { parts: { text: string }[]; limits: string[]; errors: string[] };
  };
  const typed = await draft({ 'v|sms|ko|text': '[은행] {{ name }}님, 이체가 완료되었습니다' });
  assert.deepEqual(typed.parts, [{ name: 'text', text: '[은행] 김하나님, 이체가 완료되었습니다' }]);
  assert.deepEqual(typed.limits, []);
  const tooLong = await draft({ 'v|sms|ko|text': `{{ name }}님 ${'가'.repeat(80)}` });
  assert.match(
    tooLong.limits[0] ?? '',
    /segment/,
    `the provider limit, as the text is typed: ${JSON.stringify(tooLong)}`,
  );
  const broken = await draft({ 'v|sms|en|text': 'Hello {{ nobody }}' }, 'en');
  assert.match(broken.errors[0] ?? '', /sms \/ en \/ text: /, 'what a save would refuse');
  assert.equal(await currentVersion(bank), 1, 'a preview saves nothing');
});

test('form fields that name another service are refused, and change no template', async () => {
  const operator = await signedIn('operator');
  const page = await operator.get('/templates/shop/greet');
  const csrf = ConsoleClient.csrfOf(page.text);
  const crafted = await operator.request(
    'POST',
    '/templates/shop/greet',
    greetForm(csrf, { base_version: '2', service: 'bank', 'v|sms|en|text': 'Crafted {{ name }}' }),
  );
  assert.equal(crafted.status, 400);
  assert.match(crafted.text, /service: is not a field of this form/);
  assert.equal(await currentVersion(shop), 2);
  assert.equal(await currentVersion(bank), 1);
  const bankGreet = await findTemplateVersion(db.pool, bank, 'greet');
  assert.equal(bankGreet?.variants.sms?.['en']?.text, 'Hello {{ name }}');
});

test('paths with odd characters, reserved or unknown keys answer 404, never 500', async () => {
  const operator = await signedIn('operator');
  const csrf = ConsoleClient.csrfOf((await operator.get('/templates')).text);
  const paths = [
    '/templates/shop/..%2F..%2Fetc',
    '/templates/shop/%3Cscript%3E',
    '/templates/shop/Greet%20X',
    '/templates/shop/%E2%80%AEgreet',
    '/templates/shop/imports',
    '/templates/nosuch/greet',
    '/templates/SHOP/greet',
    `/templates/shop/${'a'.repeat(300)}`,
  ];
  for (const path of paths) {
    assert.equal((await operator.get(path)).status, 404, path);
    const posted = await operator.request('POST', path, greetForm(csrf, {}));
    assert.equal(posted.status, 404, `POST ${path}`);
  }
  const nul = await operator.get('/templates/shop/gr%00eet');
  assert.ok(nul.status >= 400 && nul.status < 500, String(nul.status));
});
