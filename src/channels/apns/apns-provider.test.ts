// The APNs adapter sending through the stand-in: the request APNs expects, each answer → its
// outcome, the signing key, and the provider token's caching and renewal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import {
  configDir,
  deviceToken,
  keyId,
  message,
  minute,
  never,
  setupApns,
  start,
  teamId,
  to,
  topic,
} from '../../../test/helpers/apns-setup.js';
import { loopbackAllowed } from '../../../test/helpers/loopback-allowed.js';
import { createLogger } from '../../observability/logger.js';
import { ProviderConfigError, createProviderContext } from '../provider-settings.js';
import { apnsCollapseId } from './apns-payload.js';
import { createApnsProvider } from './apns-provider.js';
import type { ApnsSettings } from './apns-settings.js';

test('a push is sent with the headers and payload APNs expects, and its apns-id is recorded', async (t) => {
  const { standIn, provider } = await setupApns(t);
  const sent = message();
  assert.equal(provider.channel, 'push');
  assert.deepEqual(provider.serves, { platform: 'ios' });

  const outcome = await provider.send(sent, never);

  assert.deepEqual(outcome, { kind: 'sent', providerMessageId: sent.deliveryId });
  const [push] = standIn.accepted;
  assert.ok(push !== undefined);
  assert.equal(push.token, sent.device?.token);
  assert.equal(push.topic, topic);
  assert.deepEqual(push.headers, {
    'apns-topic': topic,
    'apns-push-type': 'alert',
    'apns-priority': '10',
    'apns-expiration': String(start / 1000 + 86_400),
    'apns-collapse-id': sent.notificationId,
    'apns-id': sent.deliveryId,
  });
  assert.deepEqual(push.payload, {
    aps: { alert: { title: 'Order shipped', body: 'Your order is on its way' }, sound: 'default' },
    url: 'https://shop.example/o/42',
    orderId: 42,
  });
});

test('bulk goes at priority 5; expiration is an epoch from the setting; long ids collapse to a hash', async (t) => {
  const { standIn, provider } = await setupApns(t, { settings: { expirationSeconds: 600, apps: [topic] } });
  const longId = `${'a-very-long-service-name'.repeat(3)}#${randomUUID()}`;
  assert.deepEqual(provider.serves, { platform: 'ios', appIds: [topic] });

  const outcome = await provider.send(
    message({
      lane: 'bulk',
      notificationId: longId,
      content: { title: 'Build', status: 'installing' },
      data: { aps: { badge: 99 }, step: 3 },
    }),
    never,
  );

  assert.equal(outcome.kind, 'sent');
  const push = standIn.accepted[0];
  assert.equal(push?.headers['apns-priority'], '5');
  assert.equal(push.headers['apns-expiration'], String(start / 1000 + 600));
  const collapseId = push.headers['apns-collapse-id'] ?? '';
  assert.ok(Buffer.byteLength(collapseId) <= 64);
  assert.equal(collapseId, apnsCollapseId(longId), 'the same notification always collapses to the same id');
  assert.notEqual(collapseId, apnsCollapseId(`${longId}x`));
  // A data key named aps never replaces Apple's dictionary.
  assert.deepEqual(push.payload, {
    step: 3,
    aps: { alert: { title: 'Build', subtitle: 'installing' }, sound: 'default' },
  });
});

test('each class of APNs answer maps to its outcome', async (t) => {
  const { standIn, provider } = await setupApns(t);
  const cases: [status: number, reason: string, retryAfter: string | undefined, expected: object][] = [
    [400, 'BadDeviceToken', undefined, { kind: 'target_invalid', reason: 'apns 400 BadDeviceToken' }],
    [
      400,
      'DeviceTokenNotForTopic',
      undefined,
      { kind: 'target_invalid', reason: 'apns 400 DeviceTokenNotForTopic' },
    ],
    [410, 'ExpiredToken', undefined, { kind: 'target_invalid', reason: 'apns 410 ExpiredToken' }],
    [400, 'BadTopic', undefined, { kind: 'failed', reason: 'apns 400 BadTopic' }],
    [400, 'BadExpirationDate', undefined, { kind: 'failed', reason: 'apns 400 BadExpirationDate' }],
    [404, 'BadPath', undefined, { kind: 'failed', reason: 'apns 404 BadPath' }],
    [405, 'MethodNotAllowed', undefined, { kind: 'failed', reason: 'apns 405 MethodNotAllowed' }],
    [413, 'PayloadTooLarge', undefined, { kind: 'failed', reason: 'apns 413 PayloadTooLarge' }],
    [
      403,
      'InvalidProviderToken',
      undefined,
      { kind: 'config_error', reason: 'apns 403 InvalidProviderToken' },
    ],
    [
      403,
      'BadEnvironmentKeyIdInToken',
      undefined,
      { kind: 'config_error', reason: 'apns 403 BadEnvironmentKeyIdInToken' },
    ],
    [403, 'Forbidden', undefined, { kind: 'config_error', reason: 'apns 403 Forbidden' }],
    [429, 'TooManyRequests', '7', { kind: 'retry', reason: 'apns 429 TooManyRequests', retryAfterMs: 7000 }],
    [429, 'TooManyRequests', undefined, { kind: 'retry', reason: 'apns 429 TooManyRequests' }],
    [500, 'InternalServerError', undefined, { kind: 'retry', reason: 'apns 500 InternalServerError' }],
    [
      503,
      'ServiceUnavailable',
      '30',
      { kind: 'retry', reason: 'apns 503 ServiceUnavailable', retryAfterMs: 30_000 },
    ],
    [503, 'Shutdown', undefined, { kind: 'retry', reason: 'apns 503 Shutdown' }],
  ];
  for (const [status, reason, retryAfter, expected] of cases) {
    const token = deviceToken();
    standIn.script(token, [
      { kind: 'answer', status, reason, ...(retryAfter === undefined ? {} : { retryAfter }) },
    ]);
    assert.deepEqual(await provider.send(message(to(token)), never), expected, `${String(status)} ${reason}`);
  }
  // Every scripted answer went over the one connection, which stays usable.
  assert.equal(standIn.connectionsOpened, 1);
  assert.equal((await provider.send(message(), never)).kind, 'sent');
});

test('what the stand-in itself refuses: bad and unregistered tokens, unknown topic, oversize payload', async (t) => {
  const { standIn, provider } = await setupApns(t);
  const gone = deviceToken();
  standIn.unregister(gone);

  assert.deepEqual(await provider.send(message(to(gone)), never), {
    kind: 'target_invalid',
    reason: 'apns 410 Unregistered',
  });
  assert.deepEqual(await provider.send(message(to('not-a-device-token')), never), {
    kind: 'target_invalid',
    reason: 'apns 400 BadDeviceToken',
  });
  assert.deepEqual(
    await provider.send(
      message({ device: { id: 'd', platform: 'ios', appId: 'com.other.app', token: deviceToken() } }),
      never,
    ),
    { kind: 'failed', reason: 'apns 400 TopicDisallowed' },
  );
  assert.deepEqual(await provider.send(message({ content: { body: 'x'.repeat(5000) } }), never), {
    kind: 'failed',
    reason: 'apns 413 PayloadTooLarge',
  });
  assert.deepEqual(await provider.send(message({ device: null }), never), {
    kind: 'failed',
    reason: 'device no longer registered',
  });
  assert.equal(standIn.accepted.length, 0);
});

test('a key APNs does not know is a config error, and the token never shows in the reason', async (t) => {
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { standIn, provider } = await setupApns(t, {
    env: { APNS_SIGNING_KEY: other.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string },
  });
  const outcome = await provider.send(message(), never);
  assert.deepEqual(outcome, { kind: 'config_error', reason: 'apns 403 InvalidProviderToken' });
  const [jwt] = standIn.jwtsSeen;
  assert.ok(jwt !== undefined && !JSON.stringify(outcome).includes(jwt.slice(0, 20)));
});

test('a missing or malformed signing key fails when the provider is built', () => {
  const context = (env: Record<string, string>) =>
    createProviderContext({
      providerName: 'apns',
      configDir,
      env,
      publicUrl: undefined,
      defaultTimeoutMs: 1000,
      outbound: loopbackAllowed,
      logger: createLogger('silent'),
    });
  const settings: ApnsSettings = { type: 'apns', name: 'apns', teamId, keyId, signingKey: { env: 'K' } };
  assert.throws(() => createApnsProvider(settings, context({})), ProviderConfigError);
  assert.throws(() => createApnsProvider(settings, context({ K: 'not a key' })), {
    name: 'ProviderConfigError',
    message: 'provider apns: signingKey: not a PKCS#8 PEM private key',
  });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  assert.throws(() => createApnsProvider(settings, context({ K: rsa as string })), /not a P-256/);
});

test('the provider token is reused across sends and renewed after 50 minutes, not before', async (t) => {
  const { standIn, provider, clock } = await setupApns(t);
  for (let i = 0; i < 20; i += 1) assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal(standIn.jwtsSeen.size, 1);

  clock.provider += 49 * minute;
  clock.apple += 49 * minute;
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal(standIn.jwtsSeen.size, 1, 'still the first token at 49 minutes');

  clock.provider += 2 * minute;
  clock.apple += 2 * minute;
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal(standIn.jwtsSeen.size, 2, 'one new token at 51 minutes, then reused');
  assert.equal(standIn.refused.length, 0);
});

test('ExpiredProviderToken: one re-sign and a successful retry within the same send', async (t) => {
  const { standIn, provider, clock } = await setupApns(t);
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  // Our clock says the token is 30 minutes old, Apple's that it is 61: it is expired there.
  clock.provider += 30 * minute;
  clock.apple += 61 * minute;

  const sent = message();
  assert.deepEqual(await provider.send(sent, never), { kind: 'sent', providerMessageId: sent.deliveryId });
  assert.deepEqual(
    standIn.refused.map((r) => r.reason),
    ['ExpiredProviderToken'],
  );
  assert.equal(standIn.jwtsSeen.size, 2);
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal(standIn.jwtsSeen.size, 2, 'the new token is kept');
});

test('ExpiredProviderToken for a token under 20 minutes old is a clock problem: no re-sign', async (t) => {
  const { standIn, provider, clock } = await setupApns(t);
  clock.apple += 70 * minute;
  const outcome = await provider.send(message(), never);
  assert.equal(outcome.kind, 'config_error');
  assert.equal(standIn.jwtsSeen.size, 1);
});

test('TooManyProviderTokenUpdates is retried later without minting another token', async (t) => {
  const { standIn, provider } = await setupApns(t);
  const token = deviceToken();
  standIn.script(token, [{ kind: 'answer', status: 429, reason: 'TooManyProviderTokenUpdates' }]);
  assert.deepEqual(await provider.send(message(to(token)), never), {
    kind: 'retry',
    reason: 'apns 429 TooManyProviderTokenUpdates',
  });
  assert.equal((await provider.send(message(to(token)), never)).kind, 'sent');
  assert.equal(standIn.jwtsSeen.size, 1);
});
