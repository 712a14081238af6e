// The generic HTTP SMS gateway, configured for a vendor by settings alone, against a vendor
// stand-in: the request it builds, error rules → outcomes, settings refused at start-up, and
// signed receipts posted back through a loopback receiver (no database).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Value } from 'typebox/value';
import { CallbackReceiver } from '../../../test/helpers/callback-receiver.js';
import { loopbackAllowed } from '../../../test/helpers/loopback-allowed.js';
import { live, message } from '../../../test/helpers/sms-messages.js';
import { SmsGatewayStandIn, type GatewayScriptedAnswer } from '../../../test/stand-ins/sms-gateway.js';
import { createLogger } from '../../observability/logger.js';
import type { ChannelContent } from '../../domain/notification.js';
import { parseIpNetworkList } from '../../domain/ip-address.js';
import { OutboundPolicy } from '../../domain/outbound-policy.js';
import type { CallbackResult, ChannelProvider } from '../channel-provider.js';
import { ProviderConfigError, createProviderContext } from '../provider-settings.js';
import { SmsGatewaySettings } from './sms-settings.js';
import { createSmsGatewayProvider } from './sms-gateway-provider.js';

const logger = createLogger('silent');

describe('generic HTTP SMS gateway, configured for a vendor by settings alone', () => {
  const vendor = new SmsGatewayStandIn();
  const receiver = new CallbackReceiver();
  const opened: ChannelProvider[] = [];
  let provider: ChannelProvider;

  const acme = (overrides: Partial<SmsGatewaySettings> = {}): SmsGatewaySettings => ({
    type: 'sms_gateway',
    name: 'acme-sms',
    url: `${vendor.base}/messages`,
    format: 'json',
    secrets: { token: { env: 'ACME_TOKEN' } },
    headers: { Authorization: 'Bearer {{secret.token}}', 'X-Client': 'herald' },
    body: {
      to: '{{to}}',
      from: '{{from}}',
      text: '{{text}}',
      client_ref: '{{reference}}',
      encoding: '{{encoding}}',
      segments: '{{segments}}',
      meta: { note: 'ref {{reference}}', tags: ['herald'] },
    },
    from: 'HERALD',
    encodingValues: { gsm7: 'text', ucs2: 'unicode' },
    success: { status: [202], idPath: '/data/id' },
    errors: [
      { status: 400, path: '/code', equals: 'INVALID_NUMBER', outcome: 'target_invalid' },
      { status: 400, path: '/code', equals: 'OPTED_OUT', outcome: 'failed' },
      { path: '/code', equals: 'QUOTA_EXCEEDED', outcome: 'config_error' },
    ],
    receipts: {
      secret: { env: 'ACME_RECEIPT_SECRET' },
      idPath: '/message_id',
      statusPath: '/status',
      delivered: ['DELIVERED'],
      failed: ['FAILED', 'EXPIRED'],
      invalid: ['UNKNOWN_SUBSCRIBER'],
    },
    ...overrides,
  });

  const build = (settings: SmsGatewaySettings, env: Record<string, string> = {}): ChannelProvider => {
    const p = createSmsGatewayProvider(
      settings,
      createProviderContext({
        providerName: settings.name,
        configDir: '.',
        env: { ACME_TOKEN: vendor.token, ACME_RECEIPT_SECRET: vendor.receiptSecret, ...env },
        publicUrl: receiver.base,
        defaultTimeoutMs: 5000,
        outbound: loopbackAllowed,
        logger,
      }),
    );
    opened.push(p);
    return p;
  };

  before(async () => {
    await vendor.start();
    await receiver.start();
    provider = build(acme());
    receiver.providers.set(provider.name, provider);
    vendor.receiptUrl = `${receiver.base}/v1/callbacks/acme-sms`;
  });
  after(async () => {
    await Promise.all(opened.map((p) => p.close()));
    await vendor.stop();
    await receiver.stop();
  });

  test('the settings are a valid provider entry', () => {
    const settings = Value.Default(SmsGatewaySettings, structuredClone(acme())) as SmsGatewaySettings;
    assert.deepEqual([...Value.Errors(SmsGatewaySettings, settings)], []);
    assert.equal(settings.method, 'POST');
  });

  test('success: the id is read by JSON pointer, the template filled with JSON-safe values', async () => {
    const text = 'He said "hi"\\ \ntab {{to}} {{secret.token}}';
    const m = message('+821012345678', { body: text });
    const outcome = await provider.send(m, live());
    const accepted = vendor.accepted.at(-1);
    assert.ok(accepted);
    assert.deepEqual(outcome, { kind: 'sent', providerMessageId: accepted.id });
    assert.deepEqual(accepted.request, {
      to: '+821012345678',
      from: 'HERALD',
      text,
      client_ref: m.deliveryId,
      encoding: 'text',
      segments: 1,
      meta: { note: `ref ${m.deliveryId}`, tags: ['herald'] },
    });
    assert.equal(accepted.contentType, 'application/json');
  });

  test('Korean text goes as UCS-2 with the segment count both sides agree on', async () => {
    await provider.send(message('+821012345678', { body: '안'.repeat(100) }), live());
    const accepted = vendor.accepted.at(-1);
    assert.equal(accepted?.request['encoding'], 'unicode');
    assert.equal(accepted.request['segments'], 2);
    assert.equal(accepted.segments, 2);
  });

  test('error rules and defaults → outcomes', async () => {
    assert.deepEqual(await provider.send(message('01012345678', { body: 'Hi' }), live()), {
      kind: 'target_invalid',
      reason: 'acme-sms 400 errors[0] /code = INVALID_NUMBER',
    });
    vendor.optedOut.add('+15550001111');
    const opted = await provider.send(message('+15550001111', { body: 'Hi' }), live());
    assert.equal(opted.kind, 'failed');
    assert.equal('reason' in opted ? opted.reason : '', 'acme-sms 400 errors[1] /code = OPTED_OUT');
    const to = '+15550002222';
    const cases: [GatewayScriptedAnswer, unknown][] = [
      [
        { status: 503, body: { code: 'UNAVAILABLE', message: 'down' }, headers: { 'retry-after': '5' } },
        { kind: 'retry', reason: 'acme-sms 503', retryAfterMs: 5000 },
      ],
      [
        { status: 429, body: { code: 'RATE_LIMITED', message: 'slow down' } },
        { kind: 'retry', reason: 'acme-sms 429' },
      ],
      [
        { status: 402, body: { code: 'QUOTA_EXCEEDED', message: 'top up' } },
        { kind: 'config_error', reason: 'acme-sms 402 errors[2] /code = QUOTA_EXCEEDED' },
      ],
      [
        { status: 403, body: { code: 'FORBIDDEN', message: 'no' } },
        { kind: 'config_error', reason: 'acme-sms 403' },
      ],
      [
        { status: 400, body: { code: 'INVALID_REQUEST', message: 'bad' } },
        { kind: 'failed', reason: 'acme-sms 400' },
      ],
      // A 2xx the success list does not name, and no rule matches: not sent.
      [
        { status: 200, body: { ok: true } },
        { kind: 'failed', reason: 'acme-sms 200' },
      ],
      // The answer's text never reaches the reason: not an echo of our credentials, nor the
      // bytes of whatever server the URL reaches.
      [
        { status: 400, body: { code: 'BAD', echo: `Bearer ${vendor.token}` } },
        { kind: 'failed', reason: 'acme-sms 400' },
      ],
    ];
    for (const [scripted, expected] of cases) {
      vendor.script(to, [scripted]);
      assert.deepEqual(await provider.send(message(to, { body: 'Hi' }), live()), expected);
    }
  });

  test('a wrong token is config_error; a hang is a timeout retry', async () => {
    const wrong = build(acme(), { ACME_TOKEN: 'wrong-token' });
    assert.deepEqual(await wrong.send(message('+15550003333', { body: 'Hi' }), live()), {
      kind: 'config_error',
      reason: 'acme-sms 401',
    });
    const slow = build(acme({ timeoutMs: 200 }));
    vendor.script('+15550004444', [{ status: 0, hang: true }]);
    assert.deepEqual(await slow.send(message('+15550004444', { body: 'Hi' }), live()), {
      kind: 'retry',
      reason: 'acme-sms timeout',
    });
  });

  test('a form-encoded vendor, with the whole Authorization header from a secret', async () => {
    const form = build(
      acme({
        format: 'form',
        method: 'PUT',
        secrets: {},
        headers: { authorization: { env: 'ACME_AUTHORIZATION' } },
        body: { to: '{{to}}', from: '{{from}}', text: '{{text}}', n: '{{segments}}', flag: true },
        receipts: undefined,
      }),
      { ACME_AUTHORIZATION: `Bearer ${vendor.token}\n` },
    );
    const outcome = await form.send(message('+15550005555', { title: 'A & B', body: 'x=1' }), live());
    assert.equal(outcome.kind, 'sent');
    const accepted = vendor.accepted.at(-1);
    assert.equal(accepted?.contentType, 'application/x-www-form-urlencoded');
    assert.equal(accepted.method, 'PUT');
    assert.deepEqual(accepted.request, {
      to: '+15550005555',
      from: 'HERALD',
      text: 'A & B\nx=1',
      n: '1',
      flag: 'true',
    });
    assert.equal(typeof form.handleCallback, 'undefined', 'no receipts configured: no callback endpoint');
  });

  test('settings mistakes are refused when the provider is built, all named', () => {
    assert.throws(
      () =>
        build(
          acme({
            from: undefined,
            format: 'form',
            body: {
              to: '{{to}}',
              from: '{{from}}',
              text: '{{txt}}',
              key: '{{secret.nope}}',
              nested: { a: 1 },
            },
            errors: [{ equals: 'X', outcome: 'failed' }],
          }),
        ),
      (error: unknown) => {
        assert.ok(error instanceof ProviderConfigError);
        assert.deepEqual(error.problems, [
          'provider acme-sms: body.from: {{from}} is used but no from is set',
          'provider acme-sms: body.text: unknown placeholder {{txt}} (known: to, from, text, reference, encoding, segments, secret.<key>)',
          'provider acme-sms: body.key: {{secret.nope}} names no entry of secrets',
          'provider acme-sms: body.nested: a form body holds only strings, numbers and booleans',
          'provider acme-sms: errors[0]: give a status, a path or both (a rule matching everything would match successes)',
          'provider acme-sms: errors[0]: equals needs a path',
        ]);
        return true;
      },
    );
    assert.throws(
      () => build(acme(), { ACME_RECEIPT_SECRET: 'whsec_%%%' }),
      /receipts\.secret: not a Standard Webhooks secret/,
    );
  });

  test('a gateway URL whose host is a refused address stops start-up, unless its network is allowed', () => {
    const context = (outbound: OutboundPolicy) =>
      createProviderContext({
        providerName: 'acme-sms',
        configDir: '.',
        env: { ACME_TOKEN: vendor.token, ACME_RECEIPT_SECRET: vendor.receiptSecret },
        publicUrl: undefined,
        defaultTimeoutMs: 5000,
        outbound,
        logger,
      });
    for (const url of [
      'http://127.0.0.1:9/sms',
      'http://localhost:9/sms',
      'http://[::ffff:a9fe:a9fe]/sms',
      'http://10.1.2.3/sms',
    ]) {
      assert.throws(
        () => createSmsGatewayProvider(acme({ url }), context(new OutboundPolicy())),
        (error: unknown) =>
          error instanceof ProviderConfigError &&
          error.problems.some((p) => p.startsWith('provider acme-sms: url: its host is a')),
        url,
      );
    }
    const allowed = new OutboundPolicy(parseIpNetworkList('10.0.0.0/8').networks);
    opened.push(createSmsGatewayProvider(acme({ url: 'http://10.1.2.3/sms' }), context(allowed)));
  });

  test('checkContent uses maxSegments', () => {
    const small = build(acme({ maxSegments: 3 }));
    assert.equal(small.checkContent?.({ body: '가'.repeat(201) }, null), null);
    const check = (content: ChannelContent) => small.checkContent?.(content, null);
    assert.equal(
      check({ body: '가'.repeat(300) }),
      'SMS text is 5 segments (UCS-2), more than the 3 allowed',
    );
  });

  describe('receipts', () => {
    let id = '';
    before(async () => {
      const outcome = await provider.send(message('+15550006666', { body: 'Track me' }), live());
      assert.ok(outcome.kind === 'sent');
      id = outcome.providerMessageId ?? '';
    });

    test('signed receipts are verified and mapped by their status', async () => {
      const cases: [string, CallbackResult][] = [
        [
          'DELIVERED',
          { ok: true, updates: [{ providerMessageId: id, state: 'delivered', detail: null }], ignored: 0 },
        ],
        [
          'EXPIRED',
          {
            ok: true,
            updates: [{ providerMessageId: id, state: 'failed', detail: 'acme-sms EXPIRED' }],
            ignored: 0,
          },
        ],
        [
          'UNKNOWN_SUBSCRIBER',
          {
            ok: true,
            updates: [
              {
                providerMessageId: id,
                state: 'failed',
                detail: 'acme-sms UNKNOWN_SUBSCRIBER',
                targetInvalid: true,
              },
            ],
            ignored: 0,
          },
        ],
        ['ENROUTE', { ok: true, updates: [], ignored: 1 }],
      ];
      for (const [status, expected] of cases) {
        assert.equal((await vendor.sendReceipt(id, status)).status, 200, status);
        assert.deepEqual(receiver.last(), expected, status);
      }
    });

    test('a bad, altered, stale or missing signature is refused with 401 and no updates', async () => {
      const before = receiver.results.filter((r) => r.result.ok).length;
      const forger = `whsec_${Buffer.from('someone else entirely, 32 bytes!').toString('base64')}`;
      for (const options of [
        { secret: forger },
        { alter: (body: string) => body.replace('FAILED', 'DELIVERED') },
        { timestamp: Math.floor(Date.now() / 1000) - 3600 },
        { unsigned: true },
      ]) {
        const answer = await vendor.sendReceipt(id, 'FAILED', options);
        assert.equal(answer.status, 401, JSON.stringify(Object.keys(options)));
        assert.match(answer.body, /^Standard Webhooks signature refused/);
      }
      assert.equal(receiver.results.filter((r) => r.result.ok).length, before);
    });
  });
});
