// The email channel against stand-ins speaking SMTP and the SES v2 HTTP API (no database).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../observability/logger.js';
import { createProviderContext, type ProviderContext } from '../provider-settings.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallbackRequest, CallbackResult, RenderedMessage } from '../channel-provider.js';
import type { ChannelContent } from '../../domain/notification.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { SmtpStandIn } from '../../../test/stand-ins/smtp.js';
import { classifySmtpError, createSmtpProvider, queueIdFrom, type SmtpProvider } from './smtp-provider.js';
import type { SesSettings, SmtpSettings } from './email-settings.js';
import { SesStandIn, type SesErrorName, type SesEvent } from '../../../test/stand-ins/ses.js';
import {
  classifySesError,
  createSesProvider,
  isSnsUrl,
  statusUpdateFor,
  type SesProvider,
} from './ses-provider.js';
import { loopbackAllowed } from '../../../test/helpers/loopback-allowed.js';

let sequence = 0;
function emailMessage(target: string, content: ChannelContent, userId = 'ana'): RenderedMessage {
  sequence += 1;
  return {
    deliveryId: `d-${String(sequence)}`,
    notificationId: `svc#n-${String(sequence)}`,
    version: 1,
    channel: 'email',
    target,
    userId,
    lane: 'transactional',
    category: 'alerts',
    attempt: 1,
    content,
    data: null,
    signingSecret: null,
    device: null,
  };
}

function testContext(env: Record<string, string> = {}): ProviderContext {
  return createProviderContext({
    providerName: 'email-test',
    configDir: process.cwd(),
    env,
    publicUrl: undefined,
    defaultTimeoutMs: 5_000,
    outbound: loopbackAllowed,
    logger: createLogger('silent'),
  });
}

/** The reason of any outcome but sent ('' for sent). */
const reasonOf = (outcome: DeliveryOutcome): string => ('reason' in outcome ? outcome.reason : '');

/** A fresh signal per send, as the dispatcher gives each delivery its own. */
const never = (): AbortSignal => new AbortController().signal;

describe('SMTP replies → outcomes', () => {
  const error = (fields: Record<string, unknown>) => Object.assign(new Error('x'), fields);
  test('the reply classes', () => {
    const kind = (fields: Record<string, unknown>) => classifySmtpError(error(fields)).kind;
    assert.equal(kind({ code: 'EENVELOPE', responseCode: 450, response: '450 4.2.0 Busy' }), 'retry');
    assert.equal(kind({ code: 'EMESSAGE', responseCode: 421, response: '421 4.4.2 Closing' }), 'retry');
    assert.equal(
      kind({ code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 No such user' }),
      'target_invalid',
    );
    assert.equal(
      kind({ code: 'EENVELOPE', responseCode: 553, response: '553 5.1.3 Bad address' }),
      'target_invalid',
    );
    assert.equal(kind({ code: 'EENVELOPE', responseCode: 550, response: '550 5.7.1 Policy' }), 'failed');
    assert.equal(kind({ code: 'EENVELOPE', responseCode: 550, response: '550 Rejected' }), 'failed');
    assert.equal(kind({ code: 'EMESSAGE', responseCode: 552, response: '552 5.3.4 Too big' }), 'failed');
    assert.equal(kind({ code: 'EMESSAGE', responseCode: 554, response: '554 5.7.1 Spam' }), 'failed');
    assert.equal(
      kind({ code: 'EENVELOPE', responseCode: 553, response: '553 5.1.8 Bad sender domain' }),
      'config_error',
    );
    assert.equal(
      kind({ code: 'EENVELOPE', responseCode: 550, response: '550 5.7.1 Not yours', command: 'MAIL FROM' }),
      'config_error',
    );
    assert.equal(
      kind({ code: 'EAUTH', responseCode: 535, response: '535 5.7.8 Bad credentials' }),
      'config_error',
    );
    assert.equal(
      kind({ code: 'EENVELOPE', responseCode: 530, response: '530 5.7.0 Auth required' }),
      'config_error',
    );
    for (const code of ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'EPROTOCOL']) {
      assert.equal(kind({ code }), 'retry', code);
    }
    assert.deepEqual(classifySmtpError(error({ code: 'EABORT' })), { kind: 'retry', reason: 'aborted' });
  });

  test('queue ids from Postfix and Exim replies', () => {
    assert.equal(queueIdFrom('250 2.0.0 Ok: queued as 4Xy1Z'), '4Xy1Z');
    assert.equal(queueIdFrom('250 queued as X1'), 'X1');
    assert.equal(queueIdFrom('250 OK id=1tAbC-000123-XY'), '1tAbC-000123-XY');
    assert.equal(queueIdFrom('250 2.0.0 OK 1700000000 gsmtp'), null);
  });
});

describe('SMTP provider against the stand-in', () => {
  const server = new SmtpStandIn({ user: 'herald', password: 's3cret', size: 200_000 });
  let smtp: SmtpProvider;
  const settings = (extra: Partial<SmtpSettings> = {}): SmtpSettings => ({
    type: 'smtp',
    name: 'smtp-test',
    host: '127.0.0.1',
    port: server.port,
    user: 'herald',
    password: { env: 'SMTP_PASSWORD' },
    from: 'Herald 알림 <noreply@mail.example.com>',
    listUnsubscribe: 'https://herald.example/unsubscribe?u={user}&c={category}',
    timeoutMs: 2_000,
    ...extra,
  });
  const context = testContext({ SMTP_PASSWORD: 's3cret', WRONG_PASSWORD: 'nope' });

  before(async () => {
    await server.start();
    smtp = createSmtpProvider(settings(), context);
  });
  after(async () => {
    await smtp.close();
    await server.stop();
  });

  test('a message is sent with the queue id, and arrives whole: headers, text, escaped HTML, Korean', async () => {
    const message = emailMessage('ana@example.com', {
      title: '배포 완료 <b>v2</b>',
      body: '안녕하세요, Ana!\n<script>alert(1)</script> & done',
      url: 'https://ci.example/run?a=1&b=2',
    });
    const outcome = await smtp.send(message, never());
    assert.equal(outcome.kind, 'sent');
    const [received] = server.messagesTo('ana@example.com');
    assert.ok(received !== undefined);
    assert.deepEqual(outcome, { kind: 'sent', providerMessageId: received.queueId });
    assert.deepEqual(received.envelope, { from: 'noreply@mail.example.com', to: ['ana@example.com'] });
    const { parsed } = received;
    assert.equal(parsed.subject, '배포 완료 <b>v2</b>');
    assert.equal(parsed.from?.value[0]?.name, 'Herald 알림');
    assert.equal(parsed.messageId, `<${message.deliveryId}@mail.example.com>`);
    assert.equal(parsed.headers.get('x-herald-delivery'), message.deliveryId);
    // mailparser folds List-* headers into one structured value, so check the header lines.
    const raw = received.raw.toString('utf8');
    assert.match(raw, /^List-Unsubscribe: <https:\/\/herald\.example\/unsubscribe\?u=ana&c=alerts>\r$/m);
    assert.match(raw, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
    assert.equal(
      parsed.text?.trim(),
      '안녕하세요, Ana!\n<script>alert(1)</script> & done\n\nhttps://ci.example/run?a=1&b=2',
    );
    const html = parsed.html === false ? '' : (parsed.html ?? '');
    assert.ok(!html.includes('<script>'), 'no raw markup from the caller');
    assert.ok(!html.includes('<b>'), 'no raw markup from the caller');
    assert.match(html, /안녕하세요, Ana!<br>\s*&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; done/);
    assert.match(html, /<a href="https:\/\/ci\.example\/run\?a=1&amp;b=2">/);
  });

  test('without a title the subject is the first line of the body; javascript: URLs are not links', async () => {
    const outcome = await smtp.send(
      emailMessage('bob@example.com', { body: '\nFirst line\nsecond', url: 'javascript:alert(1)' }),
      never(),
    );
    assert.equal(outcome.kind, 'sent');
    const parsed = server.messagesTo('bob@example.com')[0]?.parsed;
    assert.ok(parsed !== undefined);
    assert.equal(parsed.subject, 'First line');
    const html = parsed.html === false ? '' : (parsed.html ?? '');
    assert.ok(!html.includes('href'), html);
  });

  test('each reply class maps to its outcome', async () => {
    const cases: [string, 'rcpt' | 'data', { code: number; enhanced?: string }, string][] = [
      ['busy@example.com', 'rcpt', { code: 450, enhanced: '4.2.0' }, 'retry'],
      ['gone@example.com', 'rcpt', { code: 550, enhanced: '5.1.1' }, 'target_invalid'],
      ['spam@example.com', 'data', { code: 554, enhanced: '5.7.1' }, 'failed'],
      ['later@example.com', 'data', { code: 451, enhanced: '4.3.0' }, 'retry'],
      ['closing@example.com', 'rcpt', { code: 421, enhanced: '4.4.2' }, 'retry'],
    ];
    for (const [address, stage, answer, kind] of cases) {
      if (stage === 'rcpt') server.scriptRcpt(address, [answer]);
      else server.scriptData(address, [answer]);
      const outcome = await smtp.send(emailMessage(address, { title: 'Hi', body: 'x' }), never());
      assert.equal(outcome.kind, kind, `${address}: ${JSON.stringify(outcome)}`);
      // A 421 closes the connection: the pool reports the closed connection, not the reply.
      if (answer.code !== 421) {
        assert.ok(
          'reason' in outcome && outcome.reason.includes(String(answer.code)),
          JSON.stringify(outcome),
        );
      }
    }
    // The pool recovers after a rejection and after a server that closed on 421.
    const outcome = await smtp.send(emailMessage('busy@example.com', { title: 'Again', body: 'x' }), never());
    assert.equal(outcome.kind, 'sent');
  });

  test('a message over the size limit is failed (552)', async () => {
    const outcome = await smtp.send(
      emailMessage('big@example.com', { title: 'Big', body: 'x'.repeat(300_000) }),
      never(),
    );
    assert.equal(outcome.kind, 'failed');
    assert.match(reasonOf(outcome), /^552 5\.3\.4/);
  });

  test('a wrong password is a config_error (535)', async () => {
    const wrong = createSmtpProvider(settings({ password: { env: 'WRONG_PASSWORD' } }), context);
    try {
      const outcome = await wrong.send(emailMessage('ana@example.com', { title: 'x', body: 'y' }), never());
      assert.equal(outcome.kind, 'config_error');
      assert.match(reasonOf(outcome), /535/);
      assert.ok(!JSON.stringify(outcome).includes('nope'), 'the password is not in the reason');
    } finally {
      await wrong.close();
    }
  });

  test('a refused connection is a retry', async () => {
    const closed = new SmtpStandIn();
    await closed.start();
    const port = closed.port;
    await closed.stop();
    const refused = createSmtpProvider(settings({ port }), context);
    try {
      const outcome = await refused.send(emailMessage('ana@example.com', { title: 'x', body: 'y' }), never());
      assert.equal(outcome.kind, 'retry');
      assert.match(reasonOf(outcome), /ECONNECTION|ESOCKET/);
    } finally {
      await refused.close();
    }
  });

  test('a server that never greets, or hangs at DATA, times out as a retry', async () => {
    const quick = createSmtpProvider(settings({ timeoutMs: 300 }), context);
    try {
      server.hangGreeting = true;
      const greeting = await quick.send(emailMessage('ana@example.com', { title: 'x', body: 'y' }), never());
      server.hangGreeting = false;
      assert.equal(greeting.kind, 'retry');
      assert.match(reasonOf(greeting), /ETIMEDOUT/);
      server.scriptData('slow@example.com', ['hang']);
      const data = await quick.send(emailMessage('slow@example.com', { title: 'x', body: 'y' }), never());
      assert.equal(data.kind, 'retry');
      assert.match(reasonOf(data), /ETIMEDOUT/);
    } finally {
      server.hangGreeting = false;
      await quick.close();
    }
  });

  test('an abort (shutdown) ends a hung send as a retry', async () => {
    server.scriptData('stuck@example.com', ['hang']);
    const controller = new AbortController();
    const pending = smtp.send(
      emailMessage('stuck@example.com', { title: 'x', body: 'y' }),
      controller.signal,
    );
    setTimeout(() => controller.abort(), 100);
    assert.deepEqual(await pending, { kind: 'retry', reason: 'aborted' });
    const after = await smtp.send(
      emailMessage('ana@example.com', { title: 'still', body: 'works' }),
      never(),
    );
    assert.equal(after.kind, 'sent');
  });

  test('the pool reuses its connections for many sends', async () => {
    const pooled = createSmtpProvider(settings({ concurrency: 2 }), context);
    try {
      const before = server.connections;
      const loginsBefore = server.logins;
      const outcomes = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          pooled.send(
            emailMessage(`many${String(i)}@example.com`, { title: `#${String(i)}`, body: 'x' }),
            never(),
          ),
        ),
      );
      assert.ok(outcomes.every((o) => o.kind === 'sent'));
      assert.ok(server.connections - before <= 2, `${String(server.connections - before)} connections`);
      assert.ok(server.logins - loginsBefore <= 2);
      const used = new Set(
        server.messages.filter((m) => m.envelope.to[0]?.startsWith('many')).map((m) => m.connection),
      );
      assert.ok(used.size <= 2);
    } finally {
      await pooled.close();
    }
  });
});

describe('SES errors → outcomes', () => {
  const now = Date.parse('2026-11-24T00:00:00Z');
  const sdkError = (name: string, status?: number, retryAfter?: string) =>
    Object.assign(new Error(`${name} happened`), {
      name,
      ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
      ...(retryAfter === undefined ? {} : { $response: { headers: { 'retry-after': retryAfter } } }),
    });
  test('the documented exceptions, 403s, 5xx and transport failures', () => {
    const kind = (name: string, status?: number) => classifySesError(sdkError(name, status), now).kind;
    assert.equal(kind('MessageRejected', 400), 'failed');
    assert.equal(kind('BadRequestException', 400), 'failed');
    assert.equal(kind('MailFromDomainNotVerifiedException', 400), 'config_error');
    assert.equal(kind('AccountSuspendedException', 400), 'config_error');
    assert.equal(kind('SendingPausedException', 400), 'config_error');
    assert.equal(kind('NotFoundException', 404), 'config_error');
    assert.equal(kind('SignatureDoesNotMatch', 403), 'config_error');
    assert.equal(kind('UnrecognizedClientException', 403), 'config_error');
    assert.equal(kind('TooManyRequestsException', 429), 'retry');
    assert.equal(kind('LimitExceededException', 400), 'retry');
    assert.equal(kind('InternalFailure', 503), 'retry');
    assert.equal(kind('SomethingNew', 400), 'failed');
    assert.equal(kind('TimeoutError'), 'retry');
    assert.deepEqual(classifySesError(sdkError('TooManyRequestsException', 429, '12'), now), {
      kind: 'retry',
      reason: '429 TooManyRequestsException: TooManyRequestsException happened',
      retryAfterMs: 12_000,
    });
  });

  test('SES events → status updates', () => {
    const update = (event: SesEvent) => statusUpdateFor(SesStandIn.sesEvent(event) as never);
    assert.deepEqual(update({ type: 'Delivery', messageId: 'm1', recipient: 'a@example.com' }), {
      providerMessageId: 'm1',
      state: 'delivered',
      detail: '250 2.6.0 Message received',
    });
    assert.deepEqual(update({ type: 'Bounce', messageId: 'm2', recipient: 'a@example.com' }), {
      providerMessageId: 'm2',
      state: 'bounced',
      detail: 'bounce Permanent/General: smtp; 550 5.1.1 user unknown',
      targetInvalid: true,
    });
    assert.deepEqual(
      update({ type: 'Bounce', bounceType: 'Transient', messageId: 'm3', recipient: 'a@example.com' }),
      {
        providerMessageId: 'm3',
        state: 'failed',
        detail: 'soft bounce Transient/MailboxFull: smtp; 452 4.2.2 mailbox full',
        targetInvalid: false,
      },
    );
    assert.equal(
      update({ type: 'Complaint', messageId: 'm4', recipient: 'a@example.com' })?.state,
      'complained',
    );
    assert.equal(update({ type: 'Reject', messageId: 'm5', recipient: 'a@example.com' })?.state, 'failed');
    assert.equal(update({ type: 'DeliveryDelay', messageId: 'm6', recipient: 'a@example.com' }), null);
    assert.ok(isSnsUrl('https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x'));
    assert.ok(!isSnsUrl('http://sns.eu-west-1.amazonaws.com/'));
    assert.ok(!isSnsUrl('https://sns.eu-west-1.amazonaws.com.evil.example/'));
    assert.ok(!isSnsUrl('https://127.0.0.1/'));
  });
});

describe('SES provider against the stand-in', () => {
  const ses = new SesStandIn();
  let provider: SesProvider;
  const confirmed: string[] = [];
  const context = testContext({
    SES_SECRET: 'herald-test-secret-key',
    SES_WRONG_SECRET: 'not-the-secret',
    SES_CALLBACK_PASSWORD: 'callback-pw',
  });
  const settings = (extra: Partial<SesSettings> = {}): SesSettings => ({
    type: 'ses',
    name: 'ses-test',
    region: ses.region,
    endpoint: ses.endpoint,
    accessKeyId: 'AKIDHERALDTEST',
    secretAccessKey: { env: 'SES_SECRET' },
    from: 'Herald <noreply@mail.example.com>',
    configurationSet: 'herald-events',
    listUnsubscribe: 'mailto:unsubscribe@mail.example.com?subject={user}',
    callbackPassword: { env: 'SES_CALLBACK_PASSWORD' },
    timeoutMs: 2_000,
    ...extra,
  });
  const make = (extra: Partial<SesSettings> = {}) =>
    createSesProvider(settings(extra), context, {
      confirmSubscription: (url) => {
        confirmed.push(url);
        return Promise.resolve();
      },
    });

  before(async () => {
    await ses.start();
    provider = make();
  });
  after(async () => {
    await provider.close();
    await ses.stop();
  });

  test('a signed SendEmail is accepted: MessageId recorded, raw MIME, configuration set and tags', async () => {
    const message = emailMessage('ana@example.com', {
      title: '주문 확인',
      body: '감사합니다 <3',
      url: 'https://shop.example/o/1',
    });
    const outcome = await provider.send(message, never());
    const accepted = ses.accepted.at(-1);
    assert.ok(accepted !== undefined);
    assert.deepEqual(outcome, { kind: 'sent', providerMessageId: accepted.messageId });
    assert.deepEqual(accepted.recipients, ['ana@example.com']);
    assert.equal(accepted.body.FromEmailAddress, 'noreply@mail.example.com');
    assert.equal(accepted.body.ConfigurationSetName, 'herald-events');
    assert.deepEqual(accepted.body.EmailTags, [
      { Name: 'delivery_id', Value: message.deliveryId },
      { Name: 'category', Value: 'alerts' },
    ]);
    const { parsed } = accepted;
    assert.equal(parsed.subject, '주문 확인');
    assert.equal(parsed.messageId, `<${message.deliveryId}@mail.example.com>`);
    assert.equal(parsed.headers.get('x-herald-delivery'), message.deliveryId);
    assert.match(parsed.text ?? '', /감사합니다 <3\n\nhttps:\/\/shop\.example\/o\/1/);
    assert.match(parsed.html === false ? '' : (parsed.html ?? ''), /감사합니다 &lt;3/);
    const raw = accepted.raw.toString('utf8');
    assert.match(raw, /^List-Unsubscribe: <mailto:unsubscribe@mail\.example\.com\?subject=ana>\r$/m);
    assert.doesNotMatch(raw, /List-Unsubscribe-Post/, 'one-click needs an https URL');
  });

  test('SigV4 is checked: a wrong secret or an unknown key is a config_error', async () => {
    const wrongSecret = make({ secretAccessKey: { env: 'SES_WRONG_SECRET' } });
    const unknownKey = make({ accessKeyId: 'AKIDUNKNOWN' });
    try {
      const bad = await wrongSecret.send(emailMessage('ana@example.com', { title: 'x', body: 'y' }), never());
      assert.equal(bad.kind, 'config_error');
      assert.match(reasonOf(bad), /^403 SignatureDoesNotMatch/);
      assert.ok(!reasonOf(bad).includes('not-the-secret'));
      const unknown = await unknownKey.send(
        emailMessage('ana@example.com', { title: 'x', body: 'y' }),
        never(),
      );
      assert.equal(unknown.kind, 'config_error');
      assert.match(reasonOf(unknown), /^403 UnrecognizedClientException/);
    } finally {
      await wrongSecret.close();
      await unknownKey.close();
    }
  });

  test('each documented SendEmail error maps to its outcome through the SDK', async () => {
    const expected: Record<SesErrorName, string> = {
      MessageRejected: 'failed',
      BadRequestException: 'failed',
      MailFromDomainNotVerifiedException: 'config_error',
      AccountSuspendedException: 'config_error',
      SendingPausedException: 'config_error',
      NotFoundException: 'config_error',
      LimitExceededException: 'retry',
      TooManyRequestsException: 'retry',
      InternalServiceErrorException: 'retry',
    };
    for (const [name, kind] of Object.entries(expected)) {
      const address = `${name.toLowerCase()}@example.com`;
      ses.script(address, [{ error: name }]);
      const outcome = await provider.send(emailMessage(address, { title: 'x', body: 'y' }), never());
      assert.equal(outcome.kind, kind, `${name}: ${JSON.stringify(outcome)}`);
      assert.match(reasonOf(outcome), new RegExp(`^\\d{3} ${name}: Scripted ${name}`));
    }
    ses.script('busy@example.com', [{ error: 'ServiceUnavailable', status: 503 }]);
    assert.equal(
      (await provider.send(emailMessage('busy@example.com', { body: 'y' }), never())).kind,
      'retry',
    );
  });

  test('429 with Retry-After is a retry that waits as told', async () => {
    ses.script('throttled@example.com', [
      {
        error: 'TooManyRequestsException',
        message: 'Maximum sending rate exceeded.',
        headers: { 'retry-after': '7' },
      },
    ]);
    const outcome = await provider.send(emailMessage('throttled@example.com', { body: 'y' }), never());
    assert.deepEqual(outcome, {
      kind: 'retry',
      reason: '429 TooManyRequestsException: Maximum sending rate exceeded.',
      retryAfterMs: 7_000,
    });
  });

  test('a hung request times out as a retry; an abort is a retry', async () => {
    const quick = make({ timeoutMs: 300 });
    try {
      ses.script('hang@example.com', ['hang', 'hang']);
      const timedOut = await quick.send(emailMessage('hang@example.com', { body: 'y' }), never());
      assert.equal(timedOut.kind, 'retry');
      assert.match(reasonOf(timedOut), /timeout/i);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const aborted = await provider.send(emailMessage('hang@example.com', { body: 'y' }), controller.signal);
      assert.deepEqual(aborted, { kind: 'retry', reason: 'aborted' });
    } finally {
      await quick.close();
    }
  });

  const callback = (
    payload: { body: Buffer; headers: Record<string, string> },
    password: string | null = 'callback-pw',
  ): CallbackRequest => ({
    url: 'https://herald.example/v1/callbacks/ses-test',
    headers: {
      ...payload.headers,
      ...(password === null
        ? {}
        : { authorization: `Basic ${Buffer.from(`herald:${password}`).toString('base64')}` }),
    },
    rawBody: payload.body,
  });

  test('handleCallback: Delivery, permanent Bounce and Complaint become status updates', async () => {
    const recipient = 'ana@example.com';
    const delivered = await provider.handleCallback(
      callback(SesStandIn.snsNotification({ type: 'Delivery', messageId: 'msg-1', recipient })),
    );
    assert.deepEqual(delivered, {
      ok: true,
      updates: [{ providerMessageId: 'msg-1', state: 'delivered', detail: '250 2.6.0 Message received' }],
      ignored: 0,
    });
    const bounced = await provider.handleCallback(
      callback(SesStandIn.snsNotification({ type: 'Bounce', messageId: 'msg-2', recipient })),
    );
    assert.ok(bounced.ok);
    assert.equal(bounced.updates[0]?.state, 'bounced');
    assert.equal(bounced.updates[0].targetInvalid, true);
    const complained = await provider.handleCallback(
      callback(SesStandIn.snsNotification({ type: 'Complaint', messageId: 'msg-3', recipient })),
    );
    assert.ok(complained.ok);
    assert.deepEqual(complained.updates, [
      { providerMessageId: 'msg-3', state: 'complained', detail: 'complaint: abuse' },
    ]);
    const delayed = await provider.handleCallback(
      callback(SesStandIn.snsNotification({ type: 'DeliveryDelay', messageId: 'msg-4', recipient })),
    );
    assert.deepEqual(delayed, { ok: true, updates: [], ignored: 1 });
    // SNS raw message delivery: the SES event without the envelope.
    const raw = await provider.handleCallback(
      callback({
        body: Buffer.from(
          JSON.stringify(SesStandIn.sesEvent({ type: 'Delivery', messageId: 'msg-5', recipient })),
        ),
        headers: {},
      }),
    );
    assert.ok(raw.ok);
    assert.equal(raw.updates[0]?.providerMessageId, 'msg-5');
  });

  test('handleCallback: a wrong or missing password is 401 with no updates; no callbackPassword refuses all', async () => {
    const event = SesStandIn.snsNotification({
      type: 'Bounce',
      messageId: 'msg-9',
      recipient: 'a@example.com',
    });
    for (const password of ['wrong', 'callback-pw-but-longer', '', null]) {
      const result = await provider.handleCallback(callback(event, password));
      assert.equal(result.ok ? 0 : result.status, 401, String(password));
    }
    const unprotected = make({ callbackPassword: undefined });
    try {
      const result = await unprotected.handleCallback(callback(event));
      assert.equal(result.ok ? 0 : result.status, 401);
    } finally {
      await unprotected.close();
    }
    const garbage = await provider.handleCallback(callback({ body: Buffer.from('{"Type":1}'), headers: {} }));
    assert.equal(garbage.ok ? 0 : garbage.status, 400);
  });

  test('handleCallback: a subscription is confirmed only through an SNS host', async () => {
    const snsUrl = 'https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=t&Token=token-1';
    const ok = await provider.handleCallback(callback(SesStandIn.snsSubscriptionConfirmation(snsUrl)));
    assert.deepEqual(ok, { ok: true, updates: [], ignored: 1 });
    const elsewhere = await provider.handleCallback(
      callback(SesStandIn.snsSubscriptionConfirmation('http://127.0.0.1:1/steal')),
    );
    assert.deepEqual(elsewhere, { ok: true, updates: [], ignored: 1 });
    assert.deepEqual(confirmed, [snsUrl]);
  });

  test('the stand-in posts events as SNS does: challenged first, then with Basic auth', async () => {
    const received: CallbackResult[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void Promise.resolve(
          provider.handleCallback({
            url: `http://127.0.0.1${req.url ?? ''}`,
            headers: req.headers,
            rawBody: Buffer.concat(chunks),
          }),
        ).then((result) => {
          received.push(result);
          if (result.ok) res.writeHead(204).end();
          // As the callback route answers: the provider's challenge, which SNS needs before it sends credentials.
          else
            res
              .writeHead(
                result.status,
                result.challenge === undefined ? {} : { 'www-authenticate': result.challenge },
              )
              .end();
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/v1/callbacks/ses-test`;
      const event = { type: 'Bounce', messageId: 'msg-20', recipient: 'gone@example.com' } as const;
      assert.equal(await SesStandIn.postEvent(url, event, { user: 'herald', password: 'callback-pw' }), 204);
      assert.equal(await SesStandIn.postEvent(url, event, { user: 'herald', password: 'nope' }), 401);
      assert.deepEqual(
        received.map((r) => (r.ok ? r.updates.map((u) => u.state).join() : r.status)),
        [401, 'bounced', 401, 401],
      );
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
