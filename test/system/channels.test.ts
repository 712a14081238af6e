// Every configured channel through the whole pipeline, with providers built from a
// HERALD_CONFIG_FILE pointing at the stand-ins: push to each of a user's devices on two
// platforms, email over SMTP, SMS with a fallback gateway, provider status reports through the
// callback endpoint, and provider limits refused at ingest. Every provider call carries a W3C
// traceparent with the trace id of the POST /v1/notifications that accepted it, and a span id
// of its own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../helpers/free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { testCertificate } from '../helpers/tls.js';
import { ApnsStandIn } from '../stand-ins/apns.js';
import { FcmStandIn } from '../stand-ins/fcm.js';
import { SmtpStandIn } from '../stand-ins/smtp.js';
import { TwilioStandIn } from '../stand-ins/twilio.js';
import { acmeSmsProvider, SmsGatewayStandIn } from '../stand-ins/sms-gateway.js';
import { loadConfig, ConfigError } from '../../src/config/load-config.js';
import { startHerald } from '../../src/composition/create-herald.js';
import { createLogger } from '../../src/observability/logger.js';

const teamId = 'TEAM123456';
const keyId = 'KEY1234567';
const bundleId = 'com.example.shop';
const iosToken = 'a'.repeat(64);
const goneToken = 'b'.repeat(64);
const callerSpan = '00f067aa0ba902b7';
const pushTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
const smsTrace = '0af7651916cd43dd8448eb211c80319c';
const fallbackTrace = 'd4cda95b652f4a1592b449d5929fda1b';
/** A traceparent of version 00 in `traceId`, with any (non-zero) span id and these flags. */
const traceOf = (traceId: string, flags = '01') =>
  new RegExp(`^00-${traceId}-(?!0{16})[0-9a-f]{16}-${flags}$`);

describe('channels through the pipeline', () => {
  let db: TestDatabase;
  let h: TestHerald;
  let dir: string;
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const apns = new ApnsStandIn({ teamId, keyId, publicKey: keys.publicKey, topics: [bundleId] });
  const fcm = new FcmStandIn({ projectId: 'shop-android' });
  const smtp = new SmtpStandIn({ user: 'herald', password: 'smtp-secret' });
  const twilio = new TwilioStandIn();
  const gateway = new SmsGatewayStandIn();

  before(async () => {
    await Promise.all([apns.start(), fcm.start(), smtp.start(), twilio.start(), gateway.start()]);
    fcm.register('android-1', 'android-2');
    apns.unregister(goneToken);
    dir = mkdtempSync(join(tmpdir(), 'herald-channels-'));
    writeFileSync(join(dir, 'ca.pem'), testCertificate().ca);
    writeFileSync(join(dir, 'apns.p8'), keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'fcm.json'), fcm.serviceAccount());
    writeFileSync(join(dir, 'smtp-password'), 'smtp-secret');
    writeFileSync(join(dir, 'twilio-token'), twilio.authToken);
    const providers = [
      {
        type: 'apns',
        name: 'apns',
        url: apns.url,
        teamId,
        keyId,
        signingKey: { file: 'apns.p8' },
        apps: [bundleId],
        caFile: 'ca.pem',
      },
      { type: 'fcm', name: 'fcm', url: fcm.url, serviceAccount: { file: 'fcm.json' }, caFile: 'ca.pem' },
      {
        type: 'smtp',
        name: 'mail',
        host: '127.0.0.1',
        port: smtp.port,
        user: 'herald',
        password: { file: 'smtp-password' },
        from: 'Shop <noreply@shop.example>',
      },
      {
        type: 'twilio',
        name: 'twilio',
        url: twilio.base,
        accountSid: twilio.accountSid,
        authToken: { file: 'twilio-token' },
        from: '+15005550006',
        fallback: 'acme-sms',
        timeoutMs: 1000,
      },
      acmeSmsProvider(gateway, dir),
    ];
    writeFileSync(join(dir, 'herald.json'), JSON.stringify({ providers }));
    const port = await freePort();
    db = await createTestDatabase();
    h = await startTestHerald(db, {
      env: {
        HERALD_CONFIG_FILE: join(dir, 'herald.json'),
        API_PORT: String(port),
        PUBLIC_URL: `http://127.0.0.1:${String(port)}`,
      },
    });
    gateway.receiptUrl = `http://127.0.0.1:${String(port)}/v1/callbacks/acme-sms`;
  });

  after(async () => {
    await h.stop();
    await db.drop();
    await Promise.all([apns.stop(), fcm.stop(), smtp.stop(), twilio.stop(), gateway.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const deliveriesOf = async (notificationId: string) =>
    (
      await db.pool.query<{
        id: string;
        channel: string;
        target: string;
        state: string;
        provider: string | null;
        provider_message_id: string | null;
        last_error: string | null;
      }>(
        `SELECT id, channel, target, state, provider, provider_message_id, last_error
           FROM deliveries WHERE notification_id = $1 ORDER BY channel, target`,
        [notificationId],
      )
    ).rows;

  const finished = (notificationId: string, count: number) =>
    waitFor(`${String(count)} finished deliveries of ${notificationId}`, async () => {
      const rows = await deliveriesOf(notificationId);
      return rows.length === count && rows.every((d) => !['pending', 'retrying', 'sending'].includes(d.state))
        ? rows
        : undefined;
    });

  const only = <T>(rows: T[]): T => {
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.ok(row !== undefined);
    return row;
  };

  const send = async (body: Record<string, unknown>, traceparent?: string) => {
    const res = await h.call(
      'POST',
      '/v1/notifications',
      body,
      traceparent === undefined ? {} : { headers: { traceparent } },
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.id);
  };

  test('a user with three devices on two platforms gets three pushes, each recorded with its provider id', async () => {
    assert.equal((await h.call('PUT', '/v1/users/mina', {})).status, 200);
    for (const [platform, token] of [
      ['ios', iosToken],
      ['android', 'android-1'],
      ['android', 'android-2'],
    ] as const) {
      const app_id = platform === 'ios' ? bundleId : 'com.example.shop.android';
      const res = await h.call('POST', '/v1/users/mina/devices', { platform, app_id, token });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const id = await send(
      {
        recipients: ['mina'],
        channels: ['push'],
        content: { default: { title: 'Order shipped', body: 'Order 1234 is on its way.' } },
      },
      `00-${pushTrace}-${callerSpan}-01`,
    );
    const rows = await finished(id, 3);
    assert.deepEqual(
      rows.map((d) => d.state),
      ['sent', 'sent', 'sent'],
    );
    assert.deepEqual(rows.map((d) => d.provider).sort(), ['apns', 'fcm', 'fcm']);
    const ios = rows.find((d) => d.provider === 'apns');
    // APNs echoes our apns-id, which is the delivery id.
    assert.equal(ios?.provider_message_id, ios?.id);
    assert.deepEqual(
      apns.accepted.filter((p) => p.headers['apns-id'] === ios?.id).map((p) => p.token),
      [iosToken],
    );
    const names = new Set(fcm.accepted.map((m) => m.name));
    for (const d of rows.filter((r) => r.provider === 'fcm'))
      assert.ok(names.has(String(d.provider_message_id)));
    assert.deepEqual(fcm.accepted.map((m) => m.token).sort(), ['android-1', 'android-2']);
    // The trace id of the POST, a new span id per call, the caller's sampled flag.
    const parents = [
      apns.accepted.find((p) => p.headers['apns-id'] === ios?.id)?.traceparent,
      ...fcm.accepted.map((m) => m.traceparent),
    ];
    for (const header of parents) assert.match(String(header), traceOf(pushTrace));
    assert.equal(new Set(parents.map((p) => String(p).split('-')[2])).size, 3);
    assert.ok(parents.every((p) => !String(p).includes(callerSpan)));
  });

  test('an unregistered device is disabled and not pushed to again', async () => {
    await h.call('PUT', '/v1/users/olek', {});
    const res = await h.call('POST', '/v1/users/olek/devices', {
      platform: 'ios',
      app_id: bundleId,
      token: goneToken,
    });
    assert.equal(res.status, 201);
    const first = only(
      await finished(
        await send({ recipients: ['olek'], channels: ['push'], content: { default: { title: 'Hi' } } }),
        1,
      ),
    );
    assert.equal(first.state, 'target_invalid');
    assert.match(String(first.last_error), /410 Unregistered/);
    const user = await h.call('GET', '/v1/users/olek');
    assert.equal(user.body.devices[0].enabled, false);
    const second = await h.call('POST', '/v1/notifications', {
      recipients: ['olek'],
      channels: ['push'],
      content: { default: { title: 'Again' } },
    });
    const view = await waitFor('the fan-out', async () => {
      const v = await h.call('GET', `/v1/notifications/${encodeURIComponent(String(second.body.id))}`);
      return v.body.status === 'completed' ? v.body : undefined;
    });
    assert.equal(view.deliveries.length, 0);
  });

  test('email goes out over SMTP with its queue id recorded', async () => {
    await h.call('PUT', '/v1/users/kim', { email: 'kim@example.com' });
    const row = only(
      await finished(
        await send({
          recipients: ['kim'],
          channels: ['email'],
          content: { default: { title: '주문이 발송되었습니다', body: 'Order <1234> shipped & insured' } },
        }),
        1,
      ),
    );
    assert.equal(row.state, 'sent');
    const mail = smtp.messagesTo('kim@example.com').at(0);
    assert.equal(mail?.parsed.subject, '주문이 발송되었습니다');
    assert.equal(row.provider_message_id, mail.queueId);
    assert.match(String(mail.parsed.html), /Order &lt;1234&gt; shipped &amp; insured/);
  });

  test('SMS: Twilio answers, then its status report marks the delivery delivered', async () => {
    await h.call('PUT', '/v1/users/jae', { phone: '+821012345678' });
    const row = only(
      await finished(
        await send(
          {
            recipients: ['jae'],
            channels: ['sms'],
            content: { default: { body: '인증번호는 123456 입니다' } },
          },
          `00-${smsTrace}-${callerSpan}-00`,
        ),
        1,
      ),
    );
    assert.equal(row.state, 'sent');
    assert.equal(row.provider, 'twilio');
    const sid = String(row.provider_message_id);
    const message = twilio.accepted.find((m) => m.sid === sid);
    assert.equal(message?.encoding, 'UCS-2');
    assert.match(String(message.traceparent), traceOf(smsTrace, '00'));
    // A forged report changes nothing; the genuine one moves the delivery.
    const stateOf = async () =>
      (
        await db.pool.query<{ state: string }>(
          'SELECT state FROM deliveries WHERE provider_message_id = $1',
          [sid],
        )
      ).rows[0]?.state;
    assert.equal((await twilio.sendStatus(sid, 'delivered', { signWithToken: 'guessed' })).status, 401);
    assert.equal(await stateOf(), 'sent');
    assert.equal((await twilio.sendStatus(sid, 'delivered')).status, 204);
    assert.equal(await stateOf(), 'delivered');
  });

  test('SMS: when Twilio fails, the fallback gateway takes over and its receipt is applied', async () => {
    await h.call('PUT', '/v1/users/dana', { phone: '+14155550100' });
    twilio.script('+14155550100', [{ status: 503, code: 20500, message: 'Service unavailable' }]);
    const row = only(
      await finished(
        await send(
          {
            recipients: ['dana'],
            channels: ['sms'],
            content: { default: { body: 'Your code is 4711' } },
          },
          `00-${fallbackTrace}-${callerSpan}-01`,
        ),
        1,
      ),
    );
    assert.equal(row.state, 'sent');
    assert.equal(row.provider, 'acme-sms');
    assert.deepEqual(
      twilio.requests.filter((r) => r.to === '+14155550100').map((r) => r.status),
      [503],
    );
    const [accepted] = gateway.accepted.filter((m) => m.request['to'] === '+14155550100');
    assert.equal(row.provider_message_id, accepted?.id);
    // Both calls of the attempt are in the request's trace, each with its own span id.
    const failedCall = twilio.requests.find((r) => r.to === '+14155550100')?.traceparent;
    assert.match(String(failedCall), traceOf(fallbackTrace));
    assert.match(String(accepted?.traceparent), traceOf(fallbackTrace));
    assert.notEqual(String(failedCall).split('-')[2], String(accepted?.traceparent).split('-')[2]);
    const metrics = await fetch(`${String(h.herald.apiUrl)}/metrics`).then((r) => r.text());
    assert.match(metrics, /herald_provider_fallbacks_total\{from="twilio",to="acme-sms"\} 1/);
    assert.equal((await gateway.sendReceipt(String(accepted?.id), 'DELIVERED')).status, 204);
    const state = await db.pool.query<{ state: string }>('SELECT state FROM deliveries WHERE id = $1', [
      row.id,
    ]);
    assert.equal(state.rows[0]?.state, 'delivered');
  });

  test('content over a provider limit is refused at ingest and nothing is stored', async () => {
    const before = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications');
    const push = await h.call('POST', '/v1/notifications', {
      recipients: ['mina'],
      channels: ['push'],
      content: { default: { title: 'Big', body: '가'.repeat(1400) } },
    });
    assert.equal(push.status, 400);
    assert.equal(push.body.code, 'content_over_limit');
    assert.ok(push.body.errors.some((e: { field: string }) => e.field === 'body/content/push'));
    const sms = await h.call('POST', '/v1/notifications', {
      recipients: ['jae'],
      channels: ['sms'],
      content: { sms: { body: '가'.repeat(202) } },
    });
    assert.equal(sms.status, 400);
    assert.match(String(sms.body.detail), /4 segments \(UCS-2\)/);
    const after = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications');
    assert.equal(after.rows[0]?.n, before.rows[0]?.n);
  });
});

test('a bad provider entry stops start-up naming the entry and field, never a credential', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-badconfig-'));
  try {
    writeFileSync(
      join(dir, 'herald.json'),
      JSON.stringify({
        providers: [
          {
            type: 'twilio',
            name: 'twilio',
            accountSid: 'AC1',
            authToken: 'sk-live-should-be-a-reference',
            from: '+15005550006',
          },
          { type: 'carrier-pigeon', name: 'coo' },
          {
            type: 'smtp',
            name: 'mail',
            host: '127.0.0.1',
            port: 25,
            from: 'a@example.com',
            fallback: 'slack',
            timeoutMs: 60_000,
          },
        ],
      }),
    );
    const config = loadConfig({
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      HERALD_CONFIG_FILE: join(dir, 'herald.json'),
    });
    await assert.rejects(
      startHerald({ config, roles: ['worker'], logger: createLogger('silent') }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.some((p) => p.startsWith('HERALD_CONFIG_FILE: providers[0].authToken')) &&
        error.problems.some((p) => p.startsWith('HERALD_CONFIG_FILE: providers[1].type')) &&
        error.problems.includes(
          'HERALD_CONFIG_FILE: providers[2].fallback: slack cannot stand in for this email provider',
        ) &&
        error.problems.some((p) =>
          p.startsWith('HERALD_CONFIG_FILE: providers[2].timeoutMs: must be shorter'),
        ) &&
        !error.message.includes('sk-live'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
