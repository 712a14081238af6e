// The APNs adapter's tests share one setup: an APNs stand-in (HTTP/2 + ES256 provider tokens)
// and a provider wired to it, each on a clock the test moves, and messages to iOS devices.
import { after, type TestContext } from 'node:test';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApnsStandIn, type ApnsStandInOptions } from '../stand-ins/apns.js';
import { testCertificate } from './tls.js';
import { loopbackAllowed } from './loopback-allowed.js';
import { createLogger } from '../../src/observability/logger.js';
import type { RenderedMessage } from '../../src/channels/channel-provider.js';
import { createProviderContext } from '../../src/channels/provider-settings.js';
import { createApnsProvider } from '../../src/channels/apns/apns-provider.js';
import type { ApnsSettings } from '../../src/channels/apns/apns-settings.js';

export const teamId = 'TEAM123456';
export const keyId = 'KEY1234567';
export const topic = 'com.example.app';
export const minute = 60_000;
export const start = Date.parse('2026-11-24T12:00:00Z');
export const never = new AbortController().signal;

const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKeyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
/** Holds ca.pem, the stand-in's CA, for providers built with `caFile: 'ca.pem'`. */
export const configDir = mkdtempSync(join(tmpdir(), 'herald-apns-'));
writeFileSync(join(configDir, 'ca.pem'), testCertificate().ca);
after(() => rmSync(configDir, { recursive: true, force: true }));

export function deviceToken(): string {
  return randomBytes(32).toString('hex');
}

export function message(overrides: Partial<RenderedMessage> = {}): RenderedMessage {
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
    signingSecrets: [],
    device: { id: 'device-1', platform: 'ios', appId: topic, token: deviceToken() },
    ...overrides,
  };
}

export function to(token: string): Partial<RenderedMessage> {
  return { device: { id: 'device-1', platform: 'ios', appId: topic, token } };
}

/** A stand-in and a provider wired to it, each on its own clock, stopped after the test. */
export async function setupApns(
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
