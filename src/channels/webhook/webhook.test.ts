import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookProvider } from './webhook-provider.js';
import type { RenderedMessage } from '../channel-provider.js';
import type { OutboundLookup } from '../outbound-connector.js';
import { OutboundPolicy } from '../../domain/outbound-policy.js';
import { parseIpNetworkList } from '../../domain/ip-address.js';
import { closeServer } from '../../../test/helpers/loopback-server.js';
import { classifyWebhookResponse } from './webhook-responses.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';
import { signWebhook, verifyWebhookSignature } from './webhook-signature.js';

const now = Date.parse('2026-11-24T12:00:00Z');

test('status → outcome', () => {
  assert.deepEqual(classifyWebhookResponse(204, null, 'abc', now), {
    kind: 'sent',
    providerMessageId: 'abc',
  });
  assert.deepEqual(classifyWebhookResponse(503, null, null, now), { kind: 'retry', reason: 'HTTP 503' });
  assert.deepEqual(classifyWebhookResponse(429, '7', null, now), {
    kind: 'retry',
    reason: 'HTTP 429',
    retryAfterMs: 7000,
  });
  assert.deepEqual(classifyWebhookResponse(408, null, null, now), { kind: 'retry', reason: 'HTTP 408' });
  assert.deepEqual(classifyWebhookResponse(404, null, null, now), { kind: 'failed', reason: 'HTTP 404' });
  assert.deepEqual(classifyWebhookResponse(301, null, null, now), { kind: 'failed', reason: 'HTTP 301' });
});

test('Retry-After as seconds or an HTTP-date', () => {
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter('Tue, 24 Nov 2026 12:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test('signatures verify, and fail when the body, secret or time is off', () => {
  const body = '{"a":1}';
  const header = signWebhook('whsec_x', body, 1_800_000_000);
  assert.match(header, /^t=1800000000,v1=[0-9a-f]{64}$/);
  assert.ok(verifyWebhookSignature('whsec_x', body, header, 1_800_000_100));
  assert.ok(!verifyWebhookSignature('whsec_x', '{"a":2}', header, 1_800_000_100));
  assert.ok(!verifyWebhookSignature('whsec_y', body, header, 1_800_000_100));
  assert.ok(!verifyWebhookSignature('whsec_x', body, header, 1_800_000_400), 'stale timestamp');
  assert.ok(!verifyWebhookSignature('whsec_x', body, 't=1800000000,v1=zz', 1_800_000_000));
});

describe('the outbound policy at send time', () => {
  let server: Server;
  let port = '';
  let connections = 0;
  const providers: WebhookProvider[] = [];
  const lookup: OutboundLookup = async (hostname) => {
    if (hostname === 'inward.example') return [{ address: '127.0.0.1', family: 4 }];
    throw Object.assign(new Error('no such name'), { code: 'ENOTFOUND' });
  };
  const provider = (allowed: string) => {
    const p = new WebhookProvider({
      timeoutMs: 2000,
      outbound: new OutboundPolicy(parseIpNetworkList(allowed).networks),
      lookup,
    });
    providers.push(p);
    return p;
  };
  const to = (target: string) =>
    ({
      deliveryId: 'd1',
      notificationId: 'shop#1',
      version: 1,
      channel: 'webhook',
      target,
      userId: 'u1',
      lane: 'transactional',
      category: 'general',
      attempt: 1,
      content: { title: 'Hi' },
      data: null,
      signingSecrets: [],
      device: null,
    }) satisfies RenderedMessage;

  before(async () => {
    server = createServer((_req, res) => res.end());
    server.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = String((server.address() as AddressInfo).port);
  });
  after(async () => {
    await Promise.all(providers.map((p) => p.close()));
    await closeServer(server);
  });

  test('a refused address fails the delivery as blocked, for good, without a connection', async () => {
    const strict = provider('');
    const live = new AbortController().signal;
    for (const target of [
      `http://inward.example:${port}/hook`,
      `http://[::1]:${port}/`,
      `http://127.0.0.1:${port}/`,
    ])
      assert.deepEqual(await strict.send(to(target), live), { kind: 'failed', reason: 'blocked' }, target);
    assert.equal(connections, 0);
  });

  test('allowed, it is called; a closed port or an unknown name is a classified retry', async () => {
    const loopback = provider('127.0.0.0/8');
    const live = new AbortController().signal;
    assert.equal((await loopback.send(to(`http://inward.example:${port}/hook`), live)).kind, 'sent');
    assert.equal(connections, 1);
    assert.deepEqual(await loopback.send(to('http://nowhere.example/'), live), {
      kind: 'retry',
      reason: 'dns',
    });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = String((closed.address() as AddressInfo).port);
    await closeServer(closed);
    assert.deepEqual(await loopback.send(to(`http://127.0.0.1:${closedPort}/`), live), {
      kind: 'retry',
      reason: 'refused',
    });
  });
});
