// The APNs adapter against the APNs stand-in (HTTP/2 + ES256 provider tokens): answers →
// outcomes, provider-token caching and renewal, connection loss, timeouts and concurrency.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { ApnsStandIn, type ApnsStandInOptions } from '../../../test/stand-ins/apns.js';
import { testCertificate } from '../../../test/helpers/tls.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { createLogger } from '../../observability/logger.js';
import type { RenderedMessage } from '../channel-provider.js';
import { ProviderConfigError, createProviderContext } from '../provider-settings.js';
import { apnsCollapseId, apnsPayloadLimit, payloadProblem } from './apns-payload.js';
import { createApnsProvider } from './apns-provider.js';
import { Value } from 'typebox/value';
import { ApnsSettings, apnsProductionUrl } from './apns-settings.js';
import { loopbackAllowed } from '../../../test/helpers/loopback-allowed.js';

const teamId = 'TEAM123456';
const keyId = 'KEY1234567';
const topic = 'com.example.app';
const minute = 60_000;
const start = Date.parse('2026-11-24T12:00:00Z');
const never = new AbortController().signal;

const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKeyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const configDir = mkdtempSync(join(tmpdir(), 'herald-apns-'));
writeFileSync(join(configDir, 'ca.pem'), testCertificate().ca);
after(() => rmSync(configDir, { recursive: true, force: true }));

function deviceToken(): string {
  return randomBytes(32).toString('hex');
}

function message(overrides: Partial<RenderedMessage> = {}): RenderedMessage {
  return {
    deliveryId: randomUUID(),
    notificationId: `shop#${randomUUID()}`,
    version: 1,
    channel: 'push',
    target: 'device-1',
    userId: 'user-1',
    lane: 'transactional',
    category: 'orders',
    attempt: 1,
    content: { title: 'Order shipped', body: 'Your order is on its way', url: 'https://shop.example/o/42' },
    data: { orderId: 42 },
    signingSecret: null,
    device: { id: 'device-1', platform: 'ios', appId: topic, token: deviceToken() },
    ...overrides,
  };
}

function to(token: string): Partial<RenderedMessage> {
  return { device: { id: 'device-1', platform: 'ios', appId: topic, token } };
}

/** A stand-in and a provider wired to it, each on its own clock, stopped after the test. */
async function setup(
  t: TestContext,
  options: {
    standIn?: Partial<ApnsStandInOptions>;
    settings?: Partial<ApnsSettings>;
    env?: Record<string, string>;
  } = {},
) {
  const clock = { provider: start, apple: start };
  const standIn = new ApnsStandIn({
    teamId,
    keyId,
    publicKey: keys.publicKey,
    topics: [topic],
    ...options.standIn,
  });
  standIn.now = () => clock.apple;
  await standIn.start();
  const context = createProviderContext({
    providerName: 'apns',
    configDir,
    env: { APNS_SIGNING_KEY: signingKeyPem, ...options.env },
    publicUrl: undefined,
    defaultTimeoutMs: 5000,
    outbound: loopbackAllowed,
    logger: createLogger('silent'),
  });
  const provider = createApnsProvider(
    {
      type: 'apns',
      name: 'apns',
      url: standIn.url,
      teamId,
      keyId,
      signingKey: { env: 'APNS_SIGNING_KEY' },
      caFile: 'ca.pem',
      ...options.settings,
    },
    context,
    { now: () => clock.provider },
  );
  t.after(async () => {
    await provider.close();
    await standIn.stop();
  });
  return { standIn, provider, clock };
}

test('a push is sent with the headers and payload APNs expects, and its apns-id is recorded', async (t) => {
  const { standIn, provider } = await setup(t);
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
  const { standIn, provider } = await setup(t, { settings: { expirationSeconds: 600, apps: [topic] } });
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
  const { standIn, provider } = await setup(t);
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
  const { standIn, provider } = await setup(t);
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
  const { standIn, provider } = await setup(t, {
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
  const { standIn, provider, clock } = await setup(t);
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
  const { standIn, provider, clock } = await setup(t);
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
  const { standIn, provider, clock } = await setup(t);
  clock.apple += 70 * minute;
  const outcome = await provider.send(message(), never);
  assert.equal(outcome.kind, 'config_error');
  assert.equal(standIn.jwtsSeen.size, 1);
});

test('TooManyProviderTokenUpdates is retried later without minting another token', async (t) => {
  const { standIn, provider } = await setup(t);
  const token = deviceToken();
  standIn.script(token, [{ kind: 'answer', status: 429, reason: 'TooManyProviderTokenUpdates' }]);
  assert.deepEqual(await provider.send(message(to(token)), never), {
    kind: 'retry',
    reason: 'apns 429 TooManyProviderTokenUpdates',
  });
  assert.equal((await provider.send(message(to(token)), never)).kind, 'sent');
  assert.equal(standIn.jwtsSeen.size, 1);
});

test('GOAWAY: the unanswered push is retried and later sends go over a new connection', async (t) => {
  const { standIn, provider } = await setup(t);
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  const token = deviceToken();
  standIn.script(token, [{ kind: 'goaway' }]);

  const outcome = await provider.send(message(to(token)), never);
  assert.equal(outcome.kind, 'retry');

  for (let i = 0; i < 3; i += 1) assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal(standIn.connectionsOpened, 2);
  assert.equal(standIn.accepted.length, 4);
});

test('a connection destroyed mid-request is a retry, and the next send reconnects', async (t) => {
  const { standIn, provider } = await setup(t);
  const token = deviceToken();
  standIn.script(token, [{ kind: 'destroy' }]);

  const outcome = await provider.send(message(to(token)), never);
  assert.equal(outcome.kind, 'retry');
  assert.match(outcome.reason, /^apns no answer/);

  assert.equal((await provider.send(message(to(token)), never)).kind, 'sent');
  assert.equal(standIn.connectionsOpened, 2);
});

test('no answer within the timeout, or a cancelled send, is a retry', async (t) => {
  const { standIn, provider } = await setup(t, { settings: { timeoutMs: 200 } });
  const token = deviceToken();
  standIn.script(token, [{ kind: 'hang' }, { kind: 'hang' }]);

  assert.deepEqual(await provider.send(message(to(token)), never), {
    kind: 'retry',
    reason: 'apns timeout after 200 ms',
  });

  // The timed-out stream was cancelled (RST_STREAM), not left open on the connection.
  await waitFor('the timed-out stream to close', () => standIn.streamsInFlight === 0);

  const controller = new AbortController();
  const pending = provider.send(message(to(token)), controller.signal);
  await waitFor('the push to reach APNs', () => standIn.streamsInFlight === 1);
  controller.abort();
  assert.deepEqual(await pending, { kind: 'retry', reason: 'apns request aborted' });
  await waitFor('the cancelled stream to close', () => standIn.streamsInFlight === 0);

  // The cancelled streams left the connection usable.
  assert.equal((await provider.send(message(to(token)), never)).kind, 'sent');
  assert.equal(standIn.connectionsOpened, 1);
});

/**
 * A TCP relay in front of the stand-in that can go silent, like a peer behind a dead NAT entry.
 * Without an upstream it only holds connections: a server that never answers the handshake.
 */
async function startRelay(t: TestContext, upstreamPort?: number) {
  const relay = { isSilent: false, port: 0, accepted: 0, open: 0 };
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  };
  const server = createServer((client) => {
    relay.accepted += 1;
    relay.open += 1;
    track(client);
    client.on('close', () => (relay.open -= 1));
    if (upstreamPort === undefined) {
      client.resume(); // read, so the client's close is seen
      return;
    }
    const upstream = connectTcp(upstreamPort, '127.0.0.1');
    track(upstream);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('data', (chunk: Buffer) => {
        if (!relay.isSilent) to.write(chunk);
      });
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.port = (server.address() as AddressInfo).port;
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return relay;
}

test('a peer that stops answering is found by PING after a timeout, and the next send reconnects', async (t) => {
  const { standIn } = await setup(t);
  const relay = await startRelay(t, Number(new URL(standIn.url).port));
  const { provider } = await setup(t, {
    settings: { url: `https://localhost:${String(relay.port)}`, timeoutMs: 200 },
  });
  assert.equal((await provider.send(message(), never)).kind, 'sent');

  relay.isSilent = true;
  assert.deepEqual(await provider.send(message(), never), {
    kind: 'retry',
    reason: 'apns timeout after 200 ms',
  });
  await waitFor('the silent connection to be dropped', () => relay.open === 0);
  relay.isSilent = false;

  assert.equal((await provider.send(message(), never)).kind, 'sent');
  assert.equal(relay.accepted, 2);
});

test('a server that never completes the handshake times out, and the next send connects anew', async (t) => {
  const relay = await startRelay(t);
  const { provider } = await setup(t, {
    settings: { url: `https://localhost:${String(relay.port)}`, timeoutMs: 150 },
  });

  assert.deepEqual(await provider.send(message(), never), {
    kind: 'retry',
    reason: 'apns timeout after 150 ms',
  });
  await waitFor('the stalled connection to be dropped', () => relay.open === 0);
  assert.equal((await provider.send(message(), never)).kind, 'retry');
  assert.equal(relay.accepted, 2);
});

test('200 concurrent sends all succeed over one connection within its stream limit', async (t) => {
  const { standIn, provider } = await setup(t, { standIn: { maxConcurrentStreams: 20, answerDelayMs: 5 } });
  const messages = Array.from({ length: 200 }, () => message());

  const outcomes = await Promise.all(messages.map((m) => provider.send(m, never)));

  assert.deepEqual(
    outcomes.map((o) => o.kind),
    messages.map(() => 'sent'),
  );
  assert.equal(standIn.accepted.length, 200);
  assert.equal(standIn.connectionsOpened, 1);
  assert.equal(standIn.jwtsSeen.size, 1);
  assert.ok(standIn.maxStreamsInFlight <= 20, `${String(standIn.maxStreamsInFlight)} streams at once`);
  assert.ok(standIn.maxStreamsInFlight > 1, 'the sends overlapped');
});

test('a stream limit lowered on a live connection is respected', async (t) => {
  const { standIn, provider } = await setup(t, { standIn: { answerDelayMs: 5 } });
  assert.equal((await provider.send(message(), never)).kind, 'sent');
  await standIn.limitStreams(2);
  standIn.maxStreamsInFlight = 0;

  const outcomes = await Promise.all(Array.from({ length: 30 }, () => provider.send(message(), never)));

  assert.ok(outcomes.every((o) => o.kind === 'sent'));
  assert.ok(standIn.maxStreamsInFlight <= 2, `${String(standIn.maxStreamsInFlight)} streams at once`);
  assert.equal(standIn.connectionsOpened, 1);
});

test('close() ends within the timeout even with a push in flight', async (t) => {
  const { standIn, provider } = await setup(t, { settings: { timeoutMs: 300 } });
  const token = deviceToken();
  standIn.script(token, [{ kind: 'hang' }]);
  const pending = provider.send(message(to(token)), never);
  await waitFor('the push to reach APNs', () => standIn.streamsInFlight === 1);

  await provider.close();

  assert.equal((await pending).kind, 'retry');
  assert.deepEqual(await provider.send(message(), never), { kind: 'retry', reason: 'apns provider closed' });
});

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

test('payloadProblem passes a 4096-byte payload and flags 4097 bytes', () => {
  const empty = Buffer.byteLength(JSON.stringify({ aps: { alert: { body: '' }, sound: 'default' } }));
  const fits = { body: 'x'.repeat(apnsPayloadLimit - empty) };
  const over = { body: 'x'.repeat(apnsPayloadLimit - empty + 1) };
  assert.equal(payloadProblem(fits, null), null);
  assert.equal(payloadProblem(over, null), 'the APNs payload would be 4097 bytes; the limit is 4096');
  // Multi-byte characters count as bytes, data keys count too.
  assert.notEqual(payloadProblem({ body: 'é'.repeat(2100) }, null), null);
  assert.notEqual(payloadProblem({ body: 'hi' }, { blob: 'x'.repeat(4100) }), null);
});

test('checkContent is payloadProblem', async (t) => {
  const { provider } = await setup(t);
  assert.equal(provider.checkContent({ title: 'hi' }, null), null);
  assert.match(provider.checkContent({ body: 'x'.repeat(5000) }, null) ?? '', /limit is 4096/);
});
