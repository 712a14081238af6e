import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FcmStandIn } from '../../../test/stand-ins/fcm.js';
import { createLogger } from '../../observability/logger.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import type { Platform, RenderedMessage } from '../channel-provider.js';
import { createProviderContext, ProviderConfigError } from '../provider-settings.js';
import { classifyFcmError, parseFcmError } from './fcm-errors.js';
import {
  createFcmProvider,
  fcmContentLimitBytes,
  fcmPayloadBytes,
  type FcmProvider,
} from './fcm-provider.js';
import type { FcmSettings } from './fcm-settings.js';
import { loopbackAllowed } from '../../../test/helpers/loopback-allowed.js';

/** A clock tests move forward; the stand-in reads the same one. */
const clock = { skewMs: 0, now: () => Date.now() + clock.skewMs };
const standIn = new FcmStandIn({ now: clock.now });
const dir = mkdtempSync(join(tmpdir(), 'herald-fcm-'));
const providers: FcmProvider[] = [];
const neverAborted = new AbortController().signal;

function provider(
  settings: Partial<FcmSettings> = {},
  env: Record<string, string> = { FCM_SERVICE_ACCOUNT: standIn.serviceAccount() },
): FcmProvider {
  const full: FcmSettings = {
    type: 'fcm',
    name: 'fcm',
    serviceAccount: { env: 'FCM_SERVICE_ACCOUNT' },
    url: standIn.url,
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
  const created = createFcmProvider(full, context, { now: clock.now });
  providers.push(created);
  return created;
}

let sequence = 0;
function message(
  token: string,
  overrides: Partial<RenderedMessage> = {},
  platform: Platform = 'android',
): RenderedMessage {
  sequence += 1;
  return {
    deliveryId: `d${String(sequence)}`,
    notificationId: 'acme#0b7e8a52-0c2e-4d5e-9a47-3f1c2b8d9e01',
    version: 1,
    channel: 'push',
    target: 'device-1',
    userId: 'ana',
    lane: 'transactional',
    category: 'orders',
    attempt: 1,
    content: {
      title: 'Order shipped',
      body: 'Your order 42 is on its way',
      url: 'https://shop.example/o/42',
    },
    data: { order: 42, carrier: 'DHL', tags: ['a'] },
    signingSecrets: [],
    device: { id: 'device-1', platform, appId: 'com.example.shop', token },
    ...overrides,
  };
}

before(async () => {
  await standIn.start();
  writeFileSync(join(dir, 'ca.pem'), standIn.ca);
  standIn.register('tok-ok', 'tok-sender', 'tok-3p', 'tok-quota', 'tok-busy', 'tok-internal', 'tok-hang');
  for (let i = 0; i < 100; i++) standIn.register(`tok-many-${String(i)}`);
});
after(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await standIn.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('FCM HTTP v1 against the stand-in', () => {
  test('a message is sent with the name FCM gives it, data as strings, priority by lane', async () => {
    const fcm = provider();
    const outcome = await fcm.send(message('tok-ok'), neverAborted);
    const accepted = standIn.accepted.at(-1);
    assert.ok(accepted);
    assert.deepEqual(outcome, { kind: 'sent', providerMessageId: accepted.name });
    assert.deepEqual(accepted.message, {
      token: 'tok-ok',
      notification: { title: 'Order shipped', body: 'Your order 42 is on its way' },
      data: {
        order: '42',
        carrier: 'DHL',
        tags: '["a"]',
        url: 'https://shop.example/o/42',
        notification_id: 'acme#0b7e8a52-0c2e-4d5e-9a47-3f1c2b8d9e01',
      },
      android: { priority: 'high', ttl: '86400s', collapse_key: 'acme#0b7e8a52-0c2e-4d5e-9a47-3f1c2b8d9e01' },
    });
    await fcm.send(message('tok-ok', { lane: 'bulk' }), neverAborted);
    assert.deepEqual(standIn.accepted.at(-1)?.message.android, {
      priority: 'normal',
      ttl: '86400s',
      collapse_key: 'acme#0b7e8a52-0c2e-4d5e-9a47-3f1c2b8d9e01',
    });
    assert.deepEqual(fcm.serves, { platform: 'android' });
  });

  test('web and iOS entries send their own platform block', async () => {
    const web = provider({ platform: 'web', ttlSeconds: 600, apps: ['shop-web'] });
    assert.deepEqual(web.serves, { platform: 'web', appIds: ['shop-web'] });
    assert.equal((await web.send(message('tok-ok', {}, 'web'), neverAborted)).kind, 'sent');
    const webpush = standIn.accepted.at(-1)?.message.webpush as { headers: Record<string, string> };
    assert.equal(webpush.headers.TTL, '600');
    assert.equal(webpush.headers.Urgency, 'high');
    assert.match(webpush.headers.Topic ?? '', /^[\w-]{32}$/);
    assert.deepEqual((webpush as unknown as { fcm_options: unknown }).fcm_options, {
      link: 'https://shop.example/o/42',
    });

    const ios = provider({ platform: 'ios' });
    assert.equal((await ios.send(message('tok-ok', { lane: 'bulk' }, 'ios'), neverAborted)).kind, 'sent');
    const apns = standIn.accepted.at(-1)?.message.apns as { headers: Record<string, string> };
    assert.equal(apns.headers['apns-priority'], '5');
    assert.equal(apns.headers['apns-collapse-id'], 'acme#0b7e8a52-0c2e-4d5e-9a47-3f1c2b8d9e01');
    assert.equal(apns.headers['apns-push-type'], 'alert');
  });

  test('each error class maps to its outcome', async () => {
    const fcm = provider();
    standIn.script('tok-sender', [{ status: 403, errorCode: 'SENDER_ID_MISMATCH' }]);
    standIn.script('tok-3p', [{ status: 401, errorCode: 'THIRD_PARTY_AUTH_ERROR' }]);
    standIn.script('tok-internal', [{ status: 500, errorCode: 'INTERNAL' }]);
    const send = (token: string, overrides: Partial<RenderedMessage> = {}) =>
      fcm.send(message(token, overrides), neverAborted);

    assert.deepEqual(await send('tok-gone'), { kind: 'target_invalid', reason: 'fcm 404 UNREGISTERED' });
    assert.deepEqual(await send('not a token!'), {
      kind: 'target_invalid',
      reason: 'fcm 400 INVALID_ARGUMENT',
    });
    assert.deepEqual(await send('tok-sender'), {
      kind: 'target_invalid',
      reason: 'fcm 403 SENDER_ID_MISMATCH',
    });
    const tokenRequests = standIn.tokenRequests;
    assert.deepEqual(await send('tok-3p'), {
      kind: 'config_error',
      reason: 'fcm 401 THIRD_PARTY_AUTH_ERROR',
    });
    assert.equal(standIn.tokenRequests, tokenRequests, 'THIRD_PARTY_AUTH_ERROR is not about our token');
    assert.deepEqual(await send('tok-internal'), { kind: 'retry', reason: 'fcm 500 INTERNAL' });
    // Over 4096 bytes: the stand-in answers INVALID_ARGUMENT with BadRequest fieldViolations.
    assert.deepEqual(await send('tok-ok', { data: { blob: 'x'.repeat(5000) } }), {
      kind: 'failed',
      reason: 'fcm 400 INVALID_ARGUMENT',
    });
    assert.deepEqual(await send('tok-ok', { device: null }), {
      kind: 'failed',
      reason: 'fcm: the message has no push device',
    });
  });

  test('429 waits at least a minute; 503 honours Retry-After, at least a second', async () => {
    const fcm = provider();
    standIn.script('tok-quota', [
      { status: 429, errorCode: 'QUOTA_EXCEEDED', retryAfter: '5' },
      { status: 429, rpcStatus: 'RESOURCE_EXHAUSTED', retryAfter: '120' },
    ]);
    standIn.script('tok-busy', [{ status: 503, retryAfter: '7' }, { status: 503 }]);
    const send = (token: string) => fcm.send(message(token), neverAborted);
    assert.deepEqual(await send('tok-quota'), {
      kind: 'retry',
      reason: 'fcm 429 QUOTA_EXCEEDED',
      retryAfterMs: 60_000,
    });
    assert.deepEqual(await send('tok-quota'), {
      kind: 'retry',
      reason: 'fcm 429 RESOURCE_EXHAUSTED',
      retryAfterMs: 120_000,
    });
    assert.deepEqual(await send('tok-busy'), {
      kind: 'retry',
      reason: 'fcm 503 UNAVAILABLE',
      retryAfterMs: 7_000,
    });
    assert.deepEqual(await send('tok-busy'), {
      kind: 'retry',
      reason: 'fcm 503 UNAVAILABLE',
      retryAfterMs: 1_000,
    });
  });

  test('50 concurrent sends share one token request; the token is reused, then refreshed near expiry', async () => {
    const fcm = provider();
    const before = standIn.tokenRequests;
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => fcm.send(message(`tok-many-${String(i)}`), neverAborted)),
    );
    assert.ok(outcomes.every((o) => o.kind === 'sent'));
    assert.equal(standIn.tokenRequests - before, 1);
    for (let i = 50; i < 60; i++) await fcm.send(message(`tok-many-${String(i)}`), neverAborted);
    assert.equal(standIn.tokenRequests - before, 1);

    // expires_in is 3599 s; the token is replaced 5 minutes before that.
    clock.skewMs += 54 * 60_000;
    await fcm.send(message('tok-ok'), neverAborted);
    assert.equal(standIn.tokenRequests - before, 1);
    clock.skewMs += 60_000;
    const refreshed = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fcm.send(message(`tok-many-${String(i)}`), neverAborted)),
    );
    assert.ok(refreshed.every((o) => o.kind === 'sent'));
    assert.equal(standIn.tokenRequests - before, 2);
  });

  test('401 UNAUTHENTICATED: one token refresh and one more try inside the same send', async () => {
    const fcm = provider();
    assert.equal((await fcm.send(message('tok-ok'), neverAborted)).kind, 'sent');
    const tokens = standIn.tokenRequests;
    const sends = standIn.sendRequests;
    standIn.revokeAccessTokens();
    const outcome = await fcm.send(message('tok-ok'), neverAborted);
    assert.equal(outcome.kind, 'sent');
    assert.equal(standIn.tokenRequests - tokens, 1);
    assert.equal(standIn.sendRequests - sends, 2);

    // Refused again with a fresh token: the credentials are at fault, and it tries no third time.
    standIn.script('tok-ok', [{ status: 401 }, { status: 401 }]);
    const refused = await fcm.send(message('tok-ok'), neverAborted);
    assert.deepEqual(refused, { kind: 'config_error', reason: 'fcm 401 UNAUTHENTICATED' });
    assert.equal(standIn.sendRequests - sends, 4);
    assert.equal(standIn.tokenRequests - tokens, 2);
  });

  test('a refused assertion is a config error, and is not cached', async () => {
    const fcm = provider();
    standIn.refuseAssertions = true;
    try {
      assert.deepEqual(await fcm.send(message('tok-ok'), neverAborted), {
        kind: 'config_error',
        reason: 'fcm token endpoint 400 invalid_grant',
      });
    } finally {
      standIn.refuseAssertions = false;
    }
    assert.equal((await fcm.send(message('tok-ok'), neverAborted)).kind, 'sent');

    // A key the stand-in does not know: its signature check refuses the assertion.
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const stranger = provider({}, { FCM_SERVICE_ACCOUNT: standIn.serviceAccount({ private_key: otherKey }) });
    const refused = await stranger.send(message('tok-ok'), neverAborted);
    assert.deepEqual(refused, { kind: 'config_error', reason: 'fcm token endpoint 400 invalid_grant' });
    assert.match(standIn.tokenRefusals.at(-1) ?? '', /signature/i);
    assert.ok(!JSON.stringify(refused).includes('PRIVATE KEY'));
  });

  test('a timeout and an aborted send are retried', async () => {
    // 1 s: the first send also fetches the OAuth token, which a loaded machine can take 300 ms for.
    const fcm = provider({ timeoutMs: 1000 });
    assert.equal((await fcm.send(message('tok-ok'), neverAborted)).kind, 'sent');
    standIn.script('tok-hang', [
      { status: 200, hang: true },
      { status: 200, hang: true },
    ]);
    assert.deepEqual(await fcm.send(message('tok-hang'), neverAborted), {
      kind: 'retry',
      reason: 'fcm timeout',
    });

    const patient = provider({ timeoutMs: 60_000 });
    assert.equal((await patient.send(message('tok-ok'), neverAborted)).kind, 'sent');
    const controller = new AbortController();
    const pending = patient.send(message('tok-hang'), controller.signal);
    await waitForSends(standIn.sendRequests + 1);
    controller.abort();
    assert.deepEqual(await pending, { kind: 'retry', reason: 'fcm aborted' });
  });

  test('checkContent refuses a notification + data payload over 4000 bytes, and reserved data keys', () => {
    const fcm = provider();
    const content = { title: 'Title', body: 'Body' };
    const base = fcmPayloadBytes(content, { pad: '' });
    const fits = { pad: 'x'.repeat(fcmContentLimitBytes - base) };
    assert.equal(fcmPayloadBytes(content, fits), 4000);
    assert.equal(fcm.checkContent(content, fits), null);
    const over = { pad: 'x'.repeat(fcmContentLimitBytes - base + 1) };
    assert.match(fcm.checkContent(content, over) ?? '', /4001 bytes; the limit is 4000/);
    assert.match(fcm.checkContent(content, { google_x: '1' }) ?? '', /reserves the data keys google_x/);
  });

  test('an unreadable service account stops startup, naming fields but no values', () => {
    assert.throws(() => provider({}, { FCM_SERVICE_ACCOUNT: 'not json' }), ProviderConfigError);
    assert.throws(
      () =>
        provider({}, { FCM_SERVICE_ACCOUNT: JSON.stringify({ client_email: 'secret@x', private_key: 'k' }) }),
      (error: Error) =>
        error instanceof ProviderConfigError &&
        error.message.includes('/project_id') &&
        !error.message.includes('secret@x'),
    );
  });
});

describe('FCM answers → outcomes', () => {
  const now = Date.parse('2026-11-24T00:00:00Z');
  const answer = (status: number, error: Record<string, unknown>) =>
    classifyFcmError(parseFcmError(status, JSON.stringify({ error })), null, now);
  const fcmError = (errorCode: string) => ({
    '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError',
    errorCode,
  });

  test('errorCode first, then status, then the HTTP status', () => {
    const cases: [number, Record<string, unknown>, DeliveryOutcome][] = [
      [
        404,
        { status: 'NOT_FOUND', details: [fcmError('UNREGISTERED')] },
        { kind: 'target_invalid', reason: 'fcm 404 UNREGISTERED' },
      ],
      [
        403,
        { status: 'PERMISSION_DENIED', details: [fcmError('SENDER_ID_MISMATCH')] },
        { kind: 'target_invalid', reason: 'fcm 403 SENDER_ID_MISMATCH' },
      ],
      [403, { status: 'PERMISSION_DENIED' }, { kind: 'config_error', reason: 'fcm 403 PERMISSION_DENIED' }],
      [
        401,
        { status: 'UNAUTHENTICATED', details: [fcmError('THIRD_PARTY_AUTH_ERROR')] },
        { kind: 'config_error', reason: 'fcm 401 THIRD_PARTY_AUTH_ERROR' },
      ],
      [400, { status: 'INVALID_ARGUMENT' }, { kind: 'failed', reason: 'fcm 400 INVALID_ARGUMENT' }],
      [
        400,
        {
          status: 'INVALID_ARGUMENT',
          details: [
            fcmError('INVALID_ARGUMENT'),
            {
              '@type': 'type.googleapis.com/google.rpc.BadRequest',
              fieldViolations: [{ field: 'message.android.ttl' }],
            },
          ],
        },
        { kind: 'failed', reason: 'fcm 400 INVALID_ARGUMENT' },
      ],
      [500, { status: 'INTERNAL' }, { kind: 'retry', reason: 'fcm 500 INTERNAL' }],
      [502, {}, { kind: 'retry', reason: 'fcm 502 HTTP error' }],
      [429, {}, { kind: 'retry', reason: 'fcm 429 HTTP error', retryAfterMs: 60_000 }],
    ];
    for (const [status, error, expected] of cases) assert.deepEqual(answer(status, error), expected);
    assert.deepEqual(classifyFcmError(parseFcmError(503, '<html>'), null, now), {
      kind: 'retry',
      reason: 'fcm 503 HTTP error',
      retryAfterMs: 1_000,
    });
  });
});

async function waitForSends(count: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (standIn.sendRequests < count) {
    if (Date.now() > deadline) throw new Error(`the stand-in never saw send ${String(count)}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
