// The Amazon SES provider: SDK errors and SES events → outcomes and status updates, and the
// provider against the SES v2 stand-in (signed SendEmail, errors, throttling, timeouts, and the
// SNS callbacks that carry delivery events).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallbackRequest, CallbackResult } from '../channel-provider.js';
import { SesStandIn, type SesErrorName, type SesEvent } from '../../../test/stand-ins/ses.js';
import { emailMessage, never, reasonOf, testContext } from '../../../test/helpers/email-messages.js';
import {
  classifySesError,
  createSesProvider,
  isSnsUrl,
  statusUpdateFor,
  type SesProvider,
} from './ses-provider.js';
import type { SesSettings } from './email-settings.js';

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
