import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webPush from 'web-push';
import { WebPushStandIn, type PushSubscriptionJson } from '../../../test/stand-ins/web-push.js';
import { createLogger } from '../../observability/logger.js';
import type { RenderedMessage } from '../channel-provider.js';
import { createProviderContext, ProviderConfigError } from '../provider-settings.js';
import { classifyWebPushResponse } from './webpush-responses.js';
import {
  createWebPushProvider,
  webPushPayload,
  webPushPlaintextLimitBytes,
  webPushTopic,
  type WebPushProvider,
} from './webpush-provider.js';
import type { WebPushSettings } from './webpush-settings.js';
import { loopbackAllowed } from '../../../test/helpers/loopback-allowed.js';

const vapid = webPush.generateVAPIDKeys();
/** A clock tests move forward; the stand-in reads the same one. */
const clock = { skewMs: 0, now: () => Date.now() + clock.skewMs };
const standIn = new WebPushStandIn({ applicationServerKey: vapid.publicKey, now: clock.now });
const dir = mkdtempSync(join(tmpdir(), 'herald-webpush-'));
const providers: WebPushProvider[] = [];
const neverAborted = new AbortController().signal;
const notificationId = 'acme#0b7e8a52-0c2e-4d5e-9a47-3f1c2b8d9e01';

function provider(
  settings: Partial<WebPushSettings> = {},
  env: Record<string, string> = { VAPID_PRIVATE_KEY: vapid.privateKey },
): WebPushProvider {
  const full: WebPushSettings = {
    type: 'webpush',
    name: 'webpush',
    vapidSubject: 'mailto:ops@herald.example',
    vapidPublicKey: vapid.publicKey,
    vapidPrivateKey: { env: 'VAPID_PRIVATE_KEY' },
    caFile: 'ca.pem',
    ...settings,
  };
  const context = createProviderContext({
    providerName: full.name,
    configDir: dir,
    env,
    publicUrl: undefined,
    defaultTimeoutMs: 5_000,
    outbound: loopbackAllowed,
    logger: createLogger('silent'),
  });
  const created = createWebPushProvider(full, context, { now: clock.now });
  providers.push(created);
  return created;
}

let sequence = 0;
function message(token: string, overrides: Partial<RenderedMessage> = {}): RenderedMessage {
  sequence += 1;
  return {
    deliveryId: `d${String(sequence)}`,
    notificationId,
    version: 3,
    channel: 'push',
    target: 'browser-1',
    userId: 'ana',
    lane: 'transactional',
    category: 'orders',
    attempt: 1,
    content: {
      title: 'Order shipped',
      body: 'Your order 42 is on its way',
      url: 'https://shop.example/o/42',
    },
    data: { order: 42, tags: ['a'] },
    signingSecrets: [],
    device: { id: 'browser-1', platform: 'web', appId: 'shop-web', token },
    ...overrides,
  };
}

const asToken = (subscription: unknown) => JSON.stringify(subscription);

before(async () => {
  await standIn.start();
  writeFileSync(join(dir, 'ca.pem'), standIn.ca);
});
after(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await standIn.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Web Push against the stand-in push service', () => {
  test('the push service decrypts exactly what was sent; TTL, Urgency and Topic are set', async () => {
    const push = provider({ ttlSeconds: 3600, apps: ['shop-web'] });
    assert.deepEqual(push.serves, { platform: 'web', appIds: ['shop-web'] });
    const subscription = standIn.subscribe();
    const outcome = await push.send(message(asToken(subscription)), neverAborted);
    const received = standIn.received.at(-1);
    assert.ok(received, standIn.refusals.join('; '));
    assert.deepEqual(outcome, { kind: 'sent', providerMessageId: received.location });
    assert.equal(received.endpoint, subscription.endpoint);
    assert.deepEqual(JSON.parse(received.plaintext), {
      title: 'Order shipped',
      body: 'Your order 42 is on its way',
      url: 'https://shop.example/o/42',
      data: { order: 42, tags: ['a'] },
      notification_id: notificationId,
      version: 3,
    });
    assert.equal(received.ttl, 3600);
    assert.equal(received.urgency, 'high');
    assert.equal(received.topic, webPushTopic(notificationId));
    assert.match(received.topic, /^[A-Za-z0-9_-]{32}$/);

    // A bulk message is normal urgency; a newer version shares the Topic, so it replaces the older.
    await push.send(message(asToken(subscription), { lane: 'bulk', version: 4 }), neverAborted);
    const bulk = standIn.received.at(-1);
    assert.equal(bulk?.urgency, 'normal');
    assert.equal(bulk.topic, received.topic);
    assert.equal(received.traceparent, undefined, 'no traceparent unless the message has one');
  });

  test('the call carries the message’s traceparent', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const push = provider({ ttlSeconds: 60 });
    const subscription = standIn.subscribe();
    const outcome = await push.send(message(asToken(subscription), { traceparent }), neverAborted);
    assert.equal(outcome.kind, 'sent');
    assert.equal(standIn.received.at(-1)?.traceparent, traceparent);
  });

  test('one VAPID JWT per push-service origin, renewed before it expires', async () => {
    const push = provider();
    const subscription = standIn.subscribe();
    const jwtOf = async () => {
      assert.equal((await push.send(message(asToken(subscription)), neverAborted)).kind, 'sent');
      return standIn.received.at(-1)?.jwt;
    };
    const first = await jwtOf();
    assert.equal(await jwtOf(), first);
    clock.skewMs += 10 * 3600_000;
    assert.equal(await jwtOf(), first);
    clock.skewMs += 3600_000 + 1000;
    const renewed = await jwtOf();
    assert.notEqual(renewed, first);
    clock.skewMs = 0;
  });

  test('each answer class maps to its outcome', async () => {
    const push = provider();
    const send = async (subscription: PushSubscriptionJson) =>
      push.send(message(asToken(subscription)), neverAborted);

    const gone = standIn.subscribe();
    standIn.unsubscribe(gone);
    assert.deepEqual(await send(gone), { kind: 'target_invalid', reason: 'webpush 410 errno 106' });

    const scripted = standIn.subscribe();
    standIn.script(scripted, [
      { status: 404 },
      { status: 400, body: '{"errno":110}' },
      { status: 413 },
      { status: 429, retryAfter: '30' },
      { status: 500 },
      { status: 503, retryAfter: '7' },
      { status: 401 },
      { status: 202 },
    ]);
    assert.deepEqual(await send(scripted), { kind: 'target_invalid', reason: 'webpush 404' });
    assert.deepEqual(await send(scripted), { kind: 'failed', reason: 'webpush 400 errno 110' });
    assert.deepEqual(await send(scripted), { kind: 'failed', reason: 'webpush 413' });
    assert.deepEqual(await send(scripted), { kind: 'retry', reason: 'webpush 429', retryAfterMs: 30_000 });
    assert.deepEqual(await send(scripted), { kind: 'retry', reason: 'webpush 500' });
    assert.deepEqual(await send(scripted), { kind: 'retry', reason: 'webpush 503', retryAfterMs: 7_000 });
    assert.deepEqual(await send(scripted), { kind: 'config_error', reason: 'webpush 401' });
    assert.deepEqual(await send(scripted), { kind: 'sent', providerMessageId: null });

    // Subscribed with another application server key: the push service refuses our VAPID key.
    const foreign = standIn.subscribe(webPush.generateVAPIDKeys().publicKey);
    assert.deepEqual(await send(foreign), { kind: 'config_error', reason: 'webpush 403 errno 109' });
  });

  test('a malformed subscription is target_invalid, without a request', async () => {
    const push = provider();
    const good = standIn.subscribe();
    const requests = standIn.requests;
    const cases: [string, string][] = [
      ['not json', 'webpush: the subscription is not JSON'],
      [asToken({ endpoint: good.endpoint }), 'webpush: the subscription lacks endpoint or keys'],
      [asToken({ ...good, endpoint: 'not a url' }), 'webpush: the subscription endpoint is not a URL'],
      [
        asToken({ ...good, endpoint: good.endpoint.replace('https:', 'http:') }),
        'webpush: the subscription endpoint is not https',
      ],
      [
        asToken({ ...good, keys: { ...good.keys, p256dh: 'AAAA' } }),
        'webpush: p256dh is not a P-256 public key',
      ],
      [
        // 65 bytes, but not a point on the curve.
        asToken({ ...good, keys: { ...good.keys, p256dh: Buffer.alloc(65, 4).toString('base64url') } }),
        'webpush: subscription keys cannot be used for encryption',
      ],
    ];
    for (const [token, reason] of cases)
      assert.deepEqual(await push.send(message(token), neverAborted), { kind: 'target_invalid', reason });
    assert.equal(standIn.requests, requests);
    assert.deepEqual(await push.send(message('x', { device: null }), neverAborted), {
      kind: 'failed',
      reason: 'webpush: the message has no push device',
    });
  });

  test('a timeout and an aborted send are retried', async () => {
    const subscription = standIn.subscribe();
    standIn.script(subscription, [
      { status: 201, hang: true },
      { status: 201, hang: true },
    ]);
    const quick = provider({ timeoutMs: 300 });
    assert.deepEqual(await quick.send(message(asToken(subscription)), neverAborted), {
      kind: 'retry',
      reason: 'webpush timeout',
    });
    const patient = provider({ timeoutMs: 60_000 });
    const controller = new AbortController();
    const requests = standIn.requests;
    const pending = patient.send(message(asToken(subscription)), controller.signal);
    const deadline = Date.now() + 5_000;
    while (standIn.requests === requests && Date.now() < deadline)
      await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    assert.deepEqual(await pending, { kind: 'retry', reason: 'webpush aborted' });
  });

  test('3993 bytes of plaintext fit the 4096-byte body push services must accept', async () => {
    const push = provider();
    const subscription = standIn.subscribe();
    const content = { title: 'T' };
    const base = Buffer.byteLength(webPushPayload(content, { pad: '' }, notificationId, 3));
    const data = { pad: 'x'.repeat(webPushPlaintextLimitBytes - base) };
    assert.equal(Buffer.byteLength(webPushPayload(content, data, notificationId, 3)), 3993);
    const outcome = await push.send(message(asToken(subscription), { content, data }), neverAborted);
    assert.equal(outcome.kind, 'sent', standIn.refusals.join('; '));
    assert.equal(standIn.received.at(-1)?.plaintext, webPushPayload(content, data, notificationId, 3));

    const over = { pad: `${data.pad}x` };
    assert.deepEqual(await push.send(message(asToken(subscription), { content, data: over }), neverAborted), {
      kind: 'failed',
      reason: 'webpush: payload over 3993 bytes',
    });
  });

  test('checkContent allows 3993 bytes with the longest notification id, not one more', () => {
    const push = provider();
    const content = { title: 'Title', body: 'Body', url: 'https://shop.example/x' };
    const longest = (data: Record<string, unknown>) =>
      Buffer.byteLength(webPushPayload(content, data, 'x'.repeat(100), 2_147_483_647));
    const pad = 'x'.repeat(webPushPlaintextLimitBytes - longest({ pad: '' }));
    assert.equal(longest({ pad }), 3993);
    assert.equal(push.checkContent(content, { pad }), null);
    assert.match(push.checkContent(content, { pad: `${pad}x` }) ?? '', /3994 bytes .*limit is 3993/);
  });

  test('VAPID keys that are malformed or not a pair stop startup', () => {
    assert.throws(() => provider({}, { VAPID_PRIVATE_KEY: 'short' }), ProviderConfigError);
    const other = webPush.generateVAPIDKeys();
    assert.throws(
      () => provider({}, { VAPID_PRIVATE_KEY: other.privateKey }),
      (error: Error) =>
        error instanceof ProviderConfigError &&
        /not the public half/.test(error.message) &&
        !error.message.includes(other.privateKey),
    );
  });
});

describe('Web Push answers → outcomes', () => {
  const now = Date.parse('2026-11-24T00:00:00Z');
  const none = { location: null, retryAfter: null };
  test('the table', () => {
    assert.deepEqual(classifyWebPushResponse(201, '', { location: 'https://p/m/1', retryAfter: null }, now), {
      kind: 'sent',
      providerMessageId: 'https://p/m/1',
    });
    assert.deepEqual(classifyWebPushResponse(200, '', none, now), { kind: 'sent', providerMessageId: null });
    assert.deepEqual(classifyWebPushResponse(410, '{"errno":106}', none, now), {
      kind: 'target_invalid',
      reason: 'webpush 410 errno 106',
    });
    assert.deepEqual(classifyWebPushResponse(403, 'forbidden', none, now), {
      kind: 'config_error',
      reason: 'webpush 403',
    });
    assert.deepEqual(classifyWebPushResponse(502, '', none, now), { kind: 'retry', reason: 'webpush 502' });
    assert.deepEqual(classifyWebPushResponse(429, '', { location: null, retryAfter: '2' }, now), {
      kind: 'retry',
      reason: 'webpush 429',
      retryAfterMs: 2000,
    });
    assert.deepEqual(classifyWebPushResponse(422, '', none, now), { kind: 'failed', reason: 'webpush 422' });
  });
});
