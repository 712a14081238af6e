// The SMTP provider: reply codes → outcomes, and sending through the SMTP stand-in (the
// message as it arrives, each reply class, size limit, credentials, timeouts, pooling).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpStandIn } from '../../../test/stand-ins/smtp.js';
import { emailMessage, never, reasonOf, testContext } from '../../../test/helpers/email-messages.js';
import { classifySmtpError, createSmtpProvider, queueIdFrom, type SmtpProvider } from './smtp-provider.js';
import type { SmtpSettings } from './email-settings.js';

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
