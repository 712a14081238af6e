// The Twilio adapter against a stand-in speaking Twilio's Messages API: what is sent, the
// segment count both sides agree on, each error class → its outcome, timeouts, and signed status
// callbacks posted back through a loopback receiver (no database).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CallbackReceiver } from '../../../test/helpers/callback-receiver.js';
import { loopbackAllowed } from '../../../test/helpers/loopback-allowed.js';
import { live, message } from '../../../test/helpers/sms-messages.js';
import { TwilioStandIn, standInSignature } from '../../../test/stand-ins/twilio.js';
import { createLogger } from '../../observability/logger.js';
import { countSmsSegments } from '../../domain/sms-segments.js';
import type { ChannelContent } from '../../domain/notification.js';
import type { ChannelProvider } from '../channel-provider.js';
import { ProviderConfigError, createProviderContext } from '../provider-settings.js';
import type { TwilioSettings } from './sms-settings.js';
import { smsText } from './sms-text.js';
import { classifyTwilioResponse, createTwilioProvider } from './twilio-provider.js';

const logger = createLogger('silent');

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
