// The OpenAPI documents are the contract: every operation of both roles is called here against
// a real Herald, and every answer (success and problem alike) is checked against the document the
// server itself serves: its status is documented, its content type is one the operation lists,
// and its body validates against the schema. The run fails if an operation was never reached
// with a success status, so a new route cannot ship undocumented. The documents also pass
// `redocly lint` (its recommended rules). Besides this test, every test that starts Herald runs
// with RESPONSE_VALIDATION on, so each answer any test sees is checked as it leaves.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import openapiTS, { astToString } from 'openapi-typescript';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import Ajv2020 from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { acmeSmsProvider, SmsGatewayStandIn } from '../stand-ins/sms-gateway.js';
import { UnsubscribeTokens } from '../../src/api/unsubscribe/unsubscribe-token.js';
import { TrackingLinks } from '../../src/templates/tracking-links.js';
import { templateCsv } from '../helpers/template-workbook.js';
import { packageRoot } from '../../src/db/package-root.js';

interface Operation {
  operationId?: string;
  responses: Record<string, { content?: Record<string, { schema?: object }> }>;
}
interface Document {
  info: { title: string };
  paths: Record<string, Record<string, Operation>>;
  components: object;
}

const unsubscribeSecret = 'u'.repeat(40);
const trackingSecret = 't'.repeat(40);

let db: TestDatabase;
let h: TestHerald;
let gateway: SmsGatewayStandIn;
let dir: string;
const documents = new Map<string, Document>();
/** `<title> <METHOD> <path template>` of every operation answered with a 2xx. */
const reached = new Set<string>();
const ajv = new Ajv2020.default({ strict: false, allErrors: true });
ajvFormats.default(ajv);

/** The operation of a request, by matching its path against the document's templates. */
function operationOf(doc: Document, method: string, url: string): { template: string; op: Operation } {
  const path = new URL(url).pathname;
  const matches = Object.entries(doc.paths)
    .filter(([template]) => {
      const pattern = template.replace(/\{\w+\}/g, '[^/]+');
      return new RegExp(`^${pattern}$`).test(path);
    })
    // A literal segment wins over a parameter (inbox/count over inbox/{notificationId}).
    .sort(([a], [b]) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0));
  for (const [template, item] of matches) {
    const op = item[method.toLowerCase()];
    if (op !== undefined) return { template, op };
  }
  throw new Error(`${doc.info.title} documents no ${method} ${path}`);
}

/** Calls Herald and checks the answer against the document of the server called. */
async function call(
  base: string,
  method: string,
  path: string,
  init: { body?: unknown; raw?: { type: string; bytes: Buffer }; token?: string | null } = {},
): Promise<{ status: number; body: any; type: string }> {
  const doc = documents.get(base);
  assert.ok(doc !== undefined, `no document for ${base}`);
  const headers: Record<string, string> = {};
  const token = init.token === undefined ? h.apiKey : init.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  let body: string | Buffer | undefined;
  if (init.raw !== undefined) {
    headers['content-type'] = init.raw.type;
    body = init.raw.bytes;
  } else if (init.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.body);
  }
  const url = `${base}${path}`;
  const response = await fetch(url, {
    method,
    headers,
    redirect: 'manual',
    ...(body === undefined ? {} : { body }),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const { template, op } = operationOf(doc, method, url);
  const where = `${method} ${template} → ${String(response.status)}`;
  const documented = op.responses[String(response.status)] ?? op.responses[`${String(response.status)[0]}XX`];
  assert.ok(documented !== undefined, `${where}: status not documented`);
  const type = (response.headers.get('content-type') ?? '').split(';')[0] ?? '';
  let parsed: unknown;
  if (bytes.length === 0) assert.equal(documented.content, undefined, `${where}: documented with a body`);
  else {
    const media = documented.content?.[type];
    assert.ok(media !== undefined, `${where}: content type ${type} not documented`);
    parsed = type.endsWith('json') ? JSON.parse(bytes.toString('utf8')) : bytes;
    if (type.endsWith('json')) {
      const validate = ajv.compile({ ...media.schema, components: doc.components });
      assert.ok(validate(parsed), `${where}: ${ajv.errorsText(validate.errors)}\n${bytes.toString('utf8')}`);
    }
  }
  if (response.status < 400) reached.add(`${doc.info.title} ${method} ${template}`);
  return { status: response.status, body: parsed, type };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'herald-contract-'));
  gateway = new SmsGatewayStandIn();
  await gateway.start();
  writeFileSync(join(dir, 'herald.json'), JSON.stringify({ providers: [acmeSmsProvider(gateway, dir)] }));
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    env: {
      HERALD_CONFIG_FILE: join(dir, 'herald.json'),
      UNSUBSCRIBE_SECRET: unsubscribeSecret,
      TRACKING_URL: 'http://127.0.0.1:9',
      TRACKING_SECRET: trackingSecret,
    },
  });
  for (const base of [h.herald.apiUrl ?? '', h.herald.queryUrl ?? '']) {
    const response = await fetch(`${base}/openapi.json`);
    documents.set(base, (await response.json()) as Document);
  }
  gateway.receiptUrl = `${h.herald.apiUrl ?? ''}/v1/callbacks/acme-sms`;
});

after(async () => {
  await h.stop();
  await db.drop();
  await gateway.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the OpenAPI documents as the contract', () => {
  test('every api operation answers as documented, successes and problems alike', async () => {
    const api = h.herald.apiUrl ?? '';
    await call(api, 'GET', '/healthz', { token: null });
    await call(api, 'GET', '/readyz', { token: null });
    await call(api, 'GET', '/v1/service');
    await call(api, 'PUT', '/v1/service/webhook', { body: { url: 'http://127.0.0.1:9/hook' } });
    await call(api, 'PUT', '/v1/service/chat', { body: { url: null } });
    await call(api, 'POST', '/v1/service/webhook/rotate-secret');

    await call(api, 'PUT', '/v1/users/ana', { body: { email: 'ana@example.com', phone: '+14155550100' } });
    await call(api, 'POST', '/v1/users/bulk', { body: { users: [{ id: 'ben' }, { id: 'cleo' }] } });
    const device = await call(api, 'POST', '/v1/users/ana/devices', {
      body: { platform: 'ios', app_id: 'com.example.shop', token: 'a'.repeat(64) },
    });
    assert.equal(device.status, 201);
    await call(api, 'PUT', '/v1/users/ben/devices', {
      body: { devices: [{ platform: 'android', app_id: 'com.example.shop', token: 'fcm-token-1' }] },
    });
    await call(api, 'GET', '/v1/users/ana/devices');
    await call(api, 'GET', '/v1/users/ana');
    await call(api, 'GET', '/v1/users/ana/contact-history');
    await call(api, 'DELETE', `/v1/users/ana/devices/${device.body.id as string}`);
    await call(api, 'DELETE', '/v1/users/cleo');
    await call(api, 'GET', '/v1/users/ana/preferences');
    await call(api, 'PUT', '/v1/users/ana/preferences', {
      body: { preferences: [{ channel: 'email', category: 'news', enabled: false }] },
    });
    await call(api, 'PUT', '/v1/categories/news', { body: { marketing: true } });
    await call(api, 'GET', '/v1/categories/news');
    await call(api, 'PUT', '/v1/rate-budgets/spring', { body: { per_second: 50 } });
    for (const path of ['/v1/rate-budgets', '/v1/rate-budgets/spring']) await call(api, 'GET', path);
    await call(api, 'DELETE', '/v1/rate-budgets/spring');
    await call(api, 'PUT', '/v1/tracking/categories/news', { body: { tracked: false } });
    await call(api, 'GET', '/v1/tracking/templates/welcome');
    const today = new Date().toISOString().slice(0, 10);
    await call(api, 'GET', `/v1/engagement?from=${today}&to=${today}&group_by=channel`);

    await call(api, 'POST', '/v1/topics', { body: { key: 'deals', name: 'Deals' } });
    await call(api, 'GET', '/v1/topics');
    await call(api, 'GET', '/v1/topics/deals');
    await call(api, 'POST', '/v1/topics/deals/subscribers', { body: { user_ids: ['ana', 'ben'] } });
    await call(api, 'GET', '/v1/topics/deals/subscribers?limit=1');
    await call(api, 'POST', '/v1/topics/deals/subscribers/remove', { body: { user_ids: ['ben'] } });
    await call(api, 'PUT', '/v1/users/ben/topic-opt-outs/deals');
    await call(api, 'GET', '/v1/users/ben/topic-opt-outs');
    await call(api, 'DELETE', '/v1/users/ben/topic-opt-outs/deals');
    const toTopic = await call(api, 'POST', '/v1/notifications', {
      body: { topic: 'deals', channels: ['in_app'], content: { default: { title: 'Deal' } } },
    });
    assert.equal(toTopic.status, 202, JSON.stringify(toTopic.body));
    const schedule = await call(api, 'POST', '/v1/schedules', {
      body: {
        cron: '0 9 * * 1-5',
        notification: { topic: 'deals', channels: ['in_app'], content: { default: { title: 'Daily' } } },
      },
    });
    assert.equal(schedule.status, 201, JSON.stringify(schedule.body));
    const scheduleId = schedule.body.id as string;
    await call(api, 'GET', '/v1/schedules');
    await call(api, 'GET', `/v1/schedules/${scheduleId}`);
    await call(api, 'POST', `/v1/schedules/${scheduleId}/pause`);
    await call(api, 'POST', `/v1/schedules/${scheduleId}/resume`);
    await call(api, 'DELETE', `/v1/schedules/${scheduleId}`);
    await call(api, 'POST', '/v1/topics', { body: { key: 'gone' } });
    await call(api, 'DELETE', '/v1/topics/gone');

    const template = {
      fallback_locale: 'en',
      params: { name: 'string' },
      variants: {
        in_app: { en: { title: 'Hi {{ name }}', body: 'Welcome' } },
        sms: { en: { text: 'Hi {{ name }}, welcome' } },
      },
    };
    await call(api, 'PUT', '/v1/templates/welcome', { body: template });
    await call(api, 'GET', '/v1/templates');
    await call(api, 'GET', '/v1/templates/welcome');
    await call(api, 'POST', '/v1/templates/welcome/preview', { body: { params: { name: 'Ana' } } });
    const sheet = await call(api, 'GET', '/v1/templates/export?format=csv');
    assert.equal(sheet.type, 'text/csv');
    await call(api, 'GET', '/v1/templates/export');
    const imported = await call(api, 'POST', '/v1/templates/import', {
      raw: {
        type: 'text/csv',
        bytes: templateCsv([
          {
            key: 'order_shipped',
            category: 'orders',
            lane: 'transactional',
            fallback_locale: 'en',
            channel: 'in_app',
            locale: 'en',
            title: 'Shipped',
          },
        ]),
      },
    });
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    await call(api, 'GET', '/v1/templates/imports');
    await call(api, 'POST', `/v1/templates/imports/${String(imported.body.import_id)}/undo`);

    const sent = await call(api, 'POST', '/v1/notifications', {
      body: {
        recipients: ['ana'],
        channels: ['in_app', 'sms'],
        template: 'welcome',
        params: { name: 'Ana' },
      },
    });
    assert.equal(sent.status, 202);
    const id = idPath(sent.body.id as string);
    await call(api, 'GET', `/v1/notifications/${id}`);
    await call(api, 'PATCH', `/v1/notifications/${id}`, { body: { version: 2, data: { order: 7 } } });
    const later = await call(api, 'POST', '/v1/notifications', {
      body: {
        recipients: ['ben'],
        channels: ['in_app'],
        content: { default: { title: 'Later' } },
        send_at: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    await call(api, 'POST', `/v1/notifications/${idPath(later.body.id as string)}/cancel`);
    await call(api, 'GET', '/v1/dead-letters');
    await call(api, 'POST', '/v1/dead-letters/replay', { body: { all: true } });
    // Status callbacks: a disabled subscription (nothing is sent to it).
    const subscription = await call(api, 'POST', '/v1/callback-subscriptions', {
      body: { url: 'https://hooks.example/herald', event_types: ['delivery.sent'], enabled: false },
    });
    assert.equal(subscription.status, 201);
    const subscriptionPath = `/v1/callback-subscriptions/${String(subscription.body.id)}`;
    await call(api, 'GET', '/v1/callback-subscriptions');
    await call(api, 'GET', subscriptionPath);
    await call(api, 'PATCH', subscriptionPath, {
      body: { event_types: ['delivery.sent', 'delivery.failed'] },
    });
    await call(api, 'POST', `${subscriptionPath}/rotate-secret`);
    await call(api, 'GET', '/v1/callback-dead-letters');
    await call(api, 'POST', '/v1/callback-dead-letters/replay', { body: { all: true } });
    await call(api, 'DELETE', subscriptionPath);

    // The SMS went out through the gateway stand-in; its signed receipt comes back.
    await waitFor('the SMS reached the gateway', () => gateway.accepted.length > 0);
    const receipt = await gateway.sendReceipt(gateway.accepted[0]?.id ?? '', 'DELIVERED');
    assert.equal(receipt.status, 204, receipt.body);
    reached.add(`Herald API POST /v1/callbacks/{provider}`);
    await call(api, 'POST', '/v1/callbacks/acme-sms', { body: { message_id: 'x' }, token: null });

    const tokens = new UnsubscribeTokens(Buffer.from(unsubscribeSecret, 'utf8'));
    const link = tokens.sign({ deliveryId: randomUUID(), userId: 'ben', channel: 'email', category: 'news' });
    const page = await call(api, 'GET', `/v1/unsubscribe/${link}`, { token: null });
    assert.equal(page.type, 'text/html');
    await call(api, 'POST', `/v1/unsubscribe/${link}`, { token: null });

    // Problems: each answered as problem+json with a documented code.
    const problems = [
      await call(api, 'GET', '/v1/notifications/not-an-id'),
      await call(api, 'GET', `/v1/notifications/${idPath(`shop#${randomUUID()}`)}`),
      await call(api, 'POST', '/v1/notifications', { body: { recipients: [] } }),
      await call(api, 'GET', '/v1/users/nobody', { token: 'hk_wrong' }),
      await call(api, 'GET', '/v1/topics/gone'),
      await call(api, 'POST', '/v1/schedules', {
        body: { cron: '0 25 * * *', notification: { recipients: ['ana'], channels: ['in_app'] } },
      }),
      await call(api, 'POST', `/v1/unsubscribe/${link}`, { token: null }),
    ];
    assert.deepEqual(
      problems.map((p) => [p.status, p.body.code]),
      [
        [400, 'invalid_notification_id'],
        [404, 'not_found'],
        [400, 'validation_failed'],
        [401, 'unauthenticated'],
        [404, 'topic_not_found'],
        [400, 'cron_invalid'],
        [410, 'unsubscribe_link_used'],
      ],
    );
  });

  test('every query operation answers as documented', async () => {
    const query = h.herald.queryUrl ?? '';
    await call(query, 'GET', '/healthz', { token: null });
    await call(query, 'GET', '/readyz', { token: null });
    const issued = await call(query, 'POST', '/v1/users/ana/token', { body: { ttl_seconds: 600 } });
    assert.equal(issued.status, 201);
    const user = issued.body.token as string;
    await waitFor(
      'the notification reached the inbox',
      async () => (await call(query, 'GET', '/v1/users/ana/inbox', { token: user })).body.items.length > 0,
    );
    const list = await call(query, 'GET', '/v1/users/ana/inbox?limit=1', { token: user });
    const item = idPath(list.body.items[0].id as string);
    await call(query, 'GET', '/v1/users/ana/inbox/count', { token: user });
    await call(query, 'GET', `/v1/users/ana/inbox/${item}`, { token: user });
    await call(query, 'POST', `/v1/users/ana/inbox/${item}/read`, { token: user });
    await call(query, 'POST', `/v1/users/ana/inbox/${item}/clicked`, { token: user, body: {} });
    const delivery = await db.pool.query<{ id: string }>(
      "SELECT id FROM deliveries WHERE user_id = 'ana' AND channel = 'in_app' LIMIT 1",
    );
    const deliveryId = delivery.rows[0]?.id ?? '';
    await call(query, 'POST', `/v1/users/ana/deliveries/${deliveryId}/opened`, { token: user, body: {} });
    await call(query, 'POST', `/v1/users/ana/deliveries/${deliveryId}/clicked`, {
      token: user,
      body: { occurred_at: new Date().toISOString() },
    });
    const links = new TrackingLinks({
      key: Buffer.from(trackingSecret, 'utf8'),
      baseUrl: '',
      ttlSeconds: 600,
      now: () => new Date(),
    });
    const pixel = await call(query, 'GET', links.pixelUrl(deliveryId), { token: null });
    assert.equal(pixel.type, 'image/gif');
    const click = await call(query, 'GET', links.clickUrl(deliveryId, 0, 'https://example.com/'), {
      token: null,
    });
    assert.equal(click.status, 302);
    const resolved = await fetch(`${query}${links.clickUrl(deliveryId, 1, 'https://example.com/b')}`, {
      headers: { accept: 'application/json' },
    });
    assert.deepEqual(await resolved.json(), { url: 'https://example.com/b' });
    const forged = await call(query, 'GET', '/v1/track/click/t1.e30.abc', { token: null });
    assert.equal(forged.body.code, 'tracking_link_invalid');
    await call(query, 'POST', '/v1/users/ana/inbox/read-all', { token: user, body: {} });
    await call(query, 'POST', '/v1/users/ana/inbox/seen-all', { token: user, body: {} });
    await call(query, 'GET', '/v1/users/ana/preferences', { token: user });
    await call(query, 'PUT', '/v1/users/ana/preferences', {
      token: user,
      body: { preferences: [], quiet_hours: { start: '22:00', end: '07:00' } },
    });
    await call(query, 'PUT', '/v1/users/ana/topic-opt-outs/shop/deals', { token: user });
    await call(query, 'GET', '/v1/users/ana/topic-opt-outs', { token: user });
    await call(query, 'DELETE', '/v1/users/ana/topic-opt-outs/shop/deals', { token: user });
    const from = new Date(Date.now() - 86_400_000).toISOString();
    const to = new Date(Date.now() + 86_400_000).toISOString();
    await call(query, 'GET', `/v1/support/users/ana/notifications?from=${from}&to=${to}`);

    // The stream: its headers are documented; the body is text/event-stream, read until one event.
    const controller = new AbortController();
    const stream = await fetch(`${query}/v1/users/ana/inbox/stream`, {
      headers: { authorization: `Bearer ${user}` },
      signal: controller.signal,
    });
    assert.equal(stream.status, 200);
    assert.equal(stream.headers.get('content-type')?.split(';')[0], 'text/event-stream');
    const doc = documents.get(query);
    assert.ok(
      doc?.paths['/v1/users/{userId}/inbox/stream']?.['get']?.responses['200']?.content?.[
        'text/event-stream'
      ],
    );
    reached.add('Herald query API GET /v1/users/{userId}/inbox/stream');
    controller.abort();

    await call(query, 'DELETE', `/v1/users/ana/inbox/${item}`, { token: user });
    await call(query, 'POST', '/v1/users/ana/tokens/revoke', { token: user, body: {} });
    const refused = await call(query, 'GET', '/v1/users/ana/inbox', { token: user });
    assert.equal(refused.body.code, 'unauthenticated');
  });

  test('no operation of either document went uncalled', () => {
    const all = [...documents.values()].flatMap((doc) =>
      Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.keys(item).map((method) => `${doc.info.title} ${method.toUpperCase()} ${path}`),
      ),
    );
    assert.ok(all.length >= 50, `only ${String(all.length)} operations`);
    assert.deepEqual(
      all.filter((o) => !reached.has(o)),
      [],
    );
  });

  test('every operation has an operationId and problem answers; the documents pass redocly lint', async () => {
    for (const doc of documents.values()) {
      for (const [path, item] of Object.entries(doc.paths))
        for (const [method, op] of Object.entries(item)) {
          assert.match(op.operationId ?? '', /^[a-z][A-Za-z]+$/, `${method} ${path}`);
          assert.ok(op.responses['4XX'] !== undefined, `${method} ${path} documents no problem answers`);
        }
    }
    const files = [...documents.values()].map((doc, i) => {
      const file = join(dir, `openapi-${String(i)}.json`);
      writeFileSync(file, JSON.stringify(doc));
      return file;
    });
    const { stdout, stderr } = await promisify(execFile)(
      join(packageRoot, 'node_modules', '.bin', 'redocly'),
      ['lint', '--format', 'stylish', ...files],
      { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } },
    );
    // A non-zero exit (an error) rejects above; warnings are counted in the summary.
    const output = `${stdout}\n${stderr}`;
    assert.match(output, /Your API descriptions are valid/, output);
    assert.doesNotMatch(output, /You have \d+ warnings?/, output);
  });

  test('the generated client types are those of the served documents', async () => {
    // packages/client/src/generated/*.ts are openapi-typescript's output for each role's document;
    // `npm run gen:client` rewrites them (HERALD_UPDATE_CLIENT=1).
    for (const [base, name] of [
      [h.herald.apiUrl ?? '', 'api'],
      [h.herald.queryUrl ?? '', 'query'],
    ] as const) {
      const doc = documents.get(base);
      const generated = `// Generated by openapi-typescript from the ${name} role's OpenAPI document: npm run gen:client.\n${astToString(await openapiTS(doc as never))}`;
      const file = join(packageRoot, 'packages', 'client', 'src', 'generated', `${name}.ts`);
      if (process.env['HERALD_UPDATE_CLIENT'] === '1') writeFileSync(file, generated);
      assert.equal(readFileSync(file, 'utf8'), generated, `${file} is stale: run npm run gen:client`);
    }
  });
});
