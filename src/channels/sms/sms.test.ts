// The SMS adapters against stand-ins speaking Twilio's and a vendor gateway's wire protocols,
// with status callbacks posted back through a loopback receiver (no database).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../observability/logger.js';
import { countSmsSegments } from '../../domain/sms-segments.js';
import type { ChannelContent } from '../../domain/notification.js';
import type { CallbackResult, ChannelProvider, RenderedMessage } from '../channel-provider.js';
import { ProviderConfigError, createProviderContext } from '../provider-settings.js';
import { TwilioStandIn, standInSignature } from '../../../test/stand-ins/twilio.js';
import { Value } from 'typebox/value';
import { SmsGatewayStandIn, type GatewayScriptedAnswer } from '../../../test/stand-ins/sms-gateway.js';
import { SmsGatewaySettings, type TwilioSettings } from './sms-settings.js';
import { createSmsGatewayProvider } from './sms-gateway-provider.js';
import { smsText } from './sms-text.js';
import { classifyTwilioResponse, createTwilioProvider } from './twilio-provider.js';
import { loopbackAllowed } from '../../../test/helpers/loopback-allowed.js';
import { OutboundPolicy } from '../../domain/outbound-policy.js';
import { parseIpNetworkList } from '../../domain/ip-address.js';

/** Plays Herald's POST /v1/callbacks/<name>: hands the raw request to the named provider. */
class CallbackReceiver {
  readonly providers = new Map<string, ChannelProvider>();
  readonly results: { name: string; result: CallbackResult }[] = [];
  private server: Server | undefined;
  base = '';

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const name = /^\/v1\/callbacks\/([\w-]+)$/.exec(req.url ?? '')?.[1] ?? '';
        const provider = this.providers.get(name);
        if (provider?.handleCallback === undefined) {
          res.writeHead(404).end();
          return;
        }
        void Promise.resolve(
          provider.handleCallback({
            url: `${this.base}${req.url ?? ''}`,
            headers: req.headers,
            rawBody: Buffer.concat(chunks),
          }),
        ).then((result) => {
          this.results.push({ name, result });
          res.writeHead(result.ok ? 200 : result.status).end(result.ok ? '' : result.reason);
        });
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  }

  last(): CallbackResult | undefined {
    return this.results.at(-1)?.result;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
  }
}

const logger = createLogger('silent');

function message(target: string, content: ChannelContent): RenderedMessage {
  return {
    deliveryId: randomUUID(),
    notificationId: `svc#${randomUUID()}`,
    version: 1,
    channel: 'sms',
    target,
    userId: 'ana',
    lane: 'transactional',
    category: 'alert',
    attempt: 1,
    content,
    data: null,
    signingSecret: null,
    device: null,
  };
}

const live = () => new AbortController().signal;

describe('Twilio', () => {
  const twilio = new TwilioStandIn();
  const receiver = new CallbackReceiver();
  const opened: ChannelProvider[] = [];
  let provider: ChannelProvider;

  const build = (overrides: Partial<TwilioSettings> = {}, token = twilio.authToken) => {
    const settings: TwilioSettings = {
      type: 'twilio',
      name: 'twilio-test',
      url: twilio.base,
      accountSid: twilio.accountSid,
      authToken: { env: 'TWILIO_AUTH_TOKEN' },
      from: '+15005550006',
      ...overrides,
    };
    const context = createProviderContext({
      providerName: settings.name,
      configDir: '.',
      env: { TWILIO_AUTH_TOKEN: token },
      publicUrl: receiver.base,
      defaultTimeoutMs: 5000,
      outbound: loopbackAllowed,
      logger,
    });
    const p: ChannelProvider = createTwilioProvider(settings, context);
    opened.push(p);
    return p;
  };

  before(async () => {
    await twilio.start();
    await receiver.start();
    provider = build();
    receiver.providers.set(provider.name, provider);
  });
  after(async () => {
    await Promise.all(opened.map((p) => p.close()));
    await twilio.stop();
    await receiver.stop();
  });

  test('a message is sent: the sid is recorded, with the sender and our status callback URL', async () => {
    const outcome = await provider.send(message('+821012345678', { title: 'Deploy', body: 'Done' }), live());
    const accepted = twilio.accepted.at(-1);
    assert.ok(accepted);
    assert.match(accepted.sid, /^SM[0-9a-f]{32}$/);
    assert.deepEqual(outcome, { kind: 'sent', providerMessageId: accepted.sid });
    assert.equal(accepted.to, '+821012345678');
    assert.equal(accepted.from, '+15005550006');
    assert.equal(accepted.body, 'Deploy\nDone');
    assert.equal(accepted.statusCallback, `${receiver.base}/v1/callbacks/twilio-test`);
  });

  test('through a Messaging Service instead of a number', async () => {
    const viaService = build({ from: undefined, messagingServiceSid: `MG${'a'.repeat(32)}` });
    const outcome = await viaService.send(message('+15551230000', { body: 'Hi' }), live());
    assert.equal(outcome.kind, 'sent');
    assert.equal(twilio.accepted.at(-1)?.messagingServiceSid, `MG${'a'.repeat(32)}`);
    assert.equal(twilio.accepted.at(-1)?.from, null);
  });

  test('exactly one of from and messagingServiceSid', () => {
    assert.throws(() => build({ messagingServiceSid: `MG${'a'.repeat(32)}` }), ProviderConfigError);
    assert.throws(
      () => build({ from: undefined }),
      (error: unknown) => error instanceof ProviderConfigError && /exactly one of from/.test(error.message),
    );
  });

  test("the stand-in's num_segments equals our count", async () => {
    const cases: [string, string, number][] = [
      ['160 ASCII', 'a'.repeat(160), 1],
      ['161 ASCII', 'a'.repeat(161), 2],
      ['80 € (extension table, 160 septets)', '€'.repeat(80), 1],
      ['81 €', '€'.repeat(81), 2],
      ['70 Hangul', '가'.repeat(70), 1],
      ['71 Hangul', '가'.repeat(71), 2],
      ['100 Hangul', '한'.repeat(100), 2],
      ['135 Hangul', '글'.repeat(135), 3],
      ['35 emoji (70 units)', '😀'.repeat(35), 1],
      ['2 + 66 emoji: a pair never straddles two parts', `ab${'😀'.repeat(66)}`, 3],
    ];
    for (const [label, body, segments] of cases) {
      const outcome = await provider.send(message('+15551230001', { body }), live());
      assert.equal(outcome.kind, 'sent', label);
      const accepted = twilio.accepted.at(-1);
      assert.equal(accepted?.body, body, label);
      assert.equal(countSmsSegments(body).segments, segments, `ours: ${label}`);
      assert.equal(accepted.numSegments, segments, `stand-in: ${label}`);
    }
  });

  test('checkContent refuses texts over the segment or character limit, naming the count', async () => {
    // Through a function: assert.equal on an optional call would narrow checkContent for the rest.
    const check = (content: ChannelContent, p = provider) => p.checkContent?.(content, null);
    assert.equal(check({ title: 'Short', body: 'Fits' }), null);
    assert.equal(
      check({ body: 'a'.repeat(1531) }),
      'SMS text is 11 segments (GSM-7), more than the 10 allowed',
    );
    assert.equal(
      check({ title: '알림', body: '가'.repeat(800) }),
      'SMS text is 12 segments (UCS-2), more than the 10 allowed',
    );
    assert.match(check({}) ?? '', /empty/);
    // The title is part of the text: 1530 fits alone, not with a title line.
    assert.equal(check({ body: 'a'.repeat(1530) }), null);
    assert.match(check({ title: 'T', body: 'a'.repeat(1530) }) ?? '', /11 segments/);
    const roomy = build({ maxSegments: 50 });
    assert.equal(
      check({ body: 'a'.repeat(1601) }, roomy),
      'SMS text is 1601 characters (11 segments, GSM-7), more than the 1600 allowed',
    );
    // send() applies the same check and does not call Twilio.
    const before = twilio.requests.length;
    const outcome = await provider.send(message('+15551230002', { body: 'a'.repeat(1531) }), live());
    assert.deepEqual(outcome, {
      kind: 'failed',
      reason: 'SMS text is 11 segments (GSM-7), more than the 10 allowed',
    });
    assert.equal(twilio.requests.length, before);
    assert.equal(
      smsText({ title: 'T', status: 'done', body: 'B', url: 'https://x.example' }),
      'T (done)\nB\nhttps://x.example',
    );
  });

  test('an invalid number is target_invalid (21211)', async () => {
    const outcome = await provider.send(message('010-1234-5678', { body: 'Hi' }), live());
    assert.equal(outcome.kind, 'target_invalid');
    assert.match(
      'reason' in outcome ? outcome.reason : '',
      /^twilio 400 21211 The 'To' number 010-1234-5678/,
    );
  });

  test('each Twilio error class → its outcome', async () => {
    const cases: [number, number | undefined, Record<string, string>, unknown][] = [
      [400, 21610, {}, { kind: 'failed', reason: 'twilio 400 21610 the recipient opted out (replied STOP)' }],
      [400, 21612, {}, { kind: 'target_invalid', reason: 'twilio 400 21612 Scripted error' }],
      [400, 21614, {}, { kind: 'target_invalid', reason: 'twilio 400 21614 Scripted error' }],
      [400, 21606, {}, { kind: 'config_error', reason: 'twilio 400 21606 Scripted error' }],
      [400, 21408, {}, { kind: 'config_error', reason: 'twilio 400 21408 Scripted error' }],
      [
        429,
        20429,
        { 'retry-after': '7' },
        { kind: 'retry', reason: 'twilio 429 20429 Scripted error', retryAfterMs: 7000 },
      ],
      [400, 21611, {}, { kind: 'retry', reason: 'twilio 400 21611 Scripted error' }],
      [
        503,
        undefined,
        { 'retry-after': '3' },
        { kind: 'retry', reason: 'twilio 503 Scripted error', retryAfterMs: 3000 },
      ],
      [500, 20500, {}, { kind: 'retry', reason: 'twilio 500 20500 Scripted error' }],
      [400, 21620, {}, { kind: 'failed', reason: 'twilio 400 21620 Scripted error' }],
      [403, 20403, {}, { kind: 'config_error', reason: 'twilio 403 20403 Scripted error' }],
    ];
    for (const [status, code, headers, expected] of cases) {
      const to = '+15551239999';
      twilio.script(to, [{ status, ...(code === undefined ? {} : { code }), headers }]);
      assert.deepEqual(await provider.send(message(to, { body: 'Hi' }), live()), expected);
    }
  });

  test('a wrong auth token is config_error (20003) and the token never shows', async () => {
    const wrong = build({}, 'not-the-token-0123');
    const outcome = await wrong.send(message('+15551230003', { body: 'Hi' }), live());
    assert.deepEqual(outcome, { kind: 'config_error', reason: 'twilio 401 20003 Authenticate' });
    assert.ok(!JSON.stringify(outcome).includes('not-the-token-0123'));
    assert.ok(!JSON.stringify(outcome).includes(twilio.authToken));
  });

  test('no answer within the timeout, or the dispatcher aborting, is a retry', async () => {
    const slow = build({ timeoutMs: 200 });
    twilio.script('+15551230004', [{ status: 0, hang: true }]);
    const started = Date.now();
    assert.deepEqual(await slow.send(message('+15551230004', { body: 'Hi' }), live()), {
      kind: 'retry',
      reason: 'twilio timeout',
    });
    assert.ok(Date.now() - started < 3000);
    twilio.script('+15551230005', [{ status: 0, hang: true }]);
    const controller = new AbortController();
    const pending = provider.send(message('+15551230005', { body: 'Hi' }), controller.signal);
    setTimeout(() => controller.abort(), 50);
    assert.deepEqual(await pending, { kind: 'retry', reason: 'twilio aborted' });
  });

  test('Retry-After as an HTTP date', () => {
    const now = Date.parse('2026-11-24T12:00:00Z');
    assert.deepEqual(classifyTwilioResponse(429, {}, 'Tue, 24 Nov 2026 12:00:30 GMT', now), {
      kind: 'retry',
      reason: 'twilio 429 no error message',
      retryAfterMs: 30_000,
    });
  });

  describe('status callbacks', () => {
    let sid = '';
    before(async () => {
      const outcome = await provider.send(message('+15551230010', { body: 'Track me' }), live());
      assert.ok(outcome.kind === 'sent');
      sid = outcome.providerMessageId ?? '';
    });

    test('a signed delivered callback is an update; intermediate statuses are ignored', async () => {
      assert.equal((await twilio.sendStatus(sid, 'sent')).status, 200);
      assert.deepEqual(receiver.last(), { ok: true, updates: [], ignored: 1 });
      assert.equal((await twilio.sendStatus(sid, 'delivered')).status, 200);
      assert.deepEqual(receiver.last(), {
        ok: true,
        updates: [{ providerMessageId: sid, state: 'delivered', detail: null }],
        ignored: 0,
      });
    });

    test('undelivered: unknown number and landline are targetInvalid, unreachable is not', async () => {
      await twilio.sendStatus(sid, 'undelivered', { errorCode: '30005' });
      assert.deepEqual(receiver.last(), {
        ok: true,
        updates: [
          {
            providerMessageId: sid,
            state: 'failed',
            detail: 'twilio undelivered 30005',
            targetInvalid: true,
          },
        ],
        ignored: 0,
      });
      await twilio.sendStatus(sid, 'failed', { errorCode: '30006' });
      assert.deepEqual(receiver.last(), {
        ok: true,
        updates: [
          { providerMessageId: sid, state: 'failed', detail: 'twilio failed 30006', targetInvalid: true },
        ],
        ignored: 0,
      });
      await twilio.sendStatus(sid, 'undelivered', { errorCode: '30003' });
      assert.deepEqual(receiver.last(), {
        ok: true,
        updates: [{ providerMessageId: sid, state: 'failed', detail: 'twilio undelivered 30003' }],
        ignored: 0,
      });
    });

    test('a forged, altered or unsigned callback is refused with 401 and changes nothing', async () => {
      const forged = await twilio.sendStatus(sid, 'delivered', { signWithToken: 'guessed-token' });
      assert.equal(forged.status, 401);
      assert.deepEqual(receiver.last(), {
        ok: false,
        status: 401,
        reason: 'X-Twilio-Signature does not match',
      });
      const altered = await twilio.sendStatus(sid, 'failed', {
        errorCode: '30005',
        alter: (form) => form.set('MessageStatus', 'delivered'),
      });
      assert.equal(altered.status, 401);
      const unsigned = await twilio.sendStatus(sid, 'delivered', { unsigned: true });
      assert.equal(unsigned.status, 401);
      assert.deepEqual(receiver.last(), { ok: false, status: 401, reason: 'no X-Twilio-Signature' });
      // A genuine signature holds only for the URL it was computed over.
      const form = new URLSearchParams({ MessageSid: sid, MessageStatus: 'delivered' });
      const url = `${receiver.base}/v1/callbacks/twilio-test`;
      const headers = { 'X-Twilio-Signature': standInSignature(twilio.authToken, url, form) };
      const rawBody = Buffer.from(form.toString());
      assert.equal((await provider.handleCallback?.({ url, headers, rawBody }))?.ok, true);
      assert.equal(
        (await provider.handleCallback?.({ url: `${url}?replay=1`, headers, rawBody }))?.ok,
        false,
      );
    });
  });
});

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
