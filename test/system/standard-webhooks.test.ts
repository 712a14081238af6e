// Webhooks as a receiver verifies them with a stock library: the `standardwebhooks` package
// (Standard Webhooks' own TypeScript verifier) accepts every delivery with the service's secret;
// after a rotation, both the new and the previous secret verify for the overlap, the previous
// one no longer once the overlap ends; Herald-Signature still verifies with the current secret.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { WebhookReceiver, type ReceivedWebhook } from '../stand-ins/webhook-receiver.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: WebhookReceiver;
let secret: string | undefined;

before(async () => {
  db = await createTestDatabase();
  receiver = new WebhookReceiver(() => secret);
  await receiver.start();
  h = await startTestHerald(db, { roles: ['api', 'worker'] });
  const hook = await h.call('PUT', '/v1/service/webhook', { url: receiver.url });
  secret = hook.body.webhook_secret;
});
after(async () => {
  await h.stop();
  await receiver.stop();
  await db.drop();
});

async function deliver(user: string): Promise<ReceivedWebhook> {
  const sent = await h.call('POST', '/v1/notifications', {
    recipients: [user],
    channels: ['webhook'],
    content: { default: { title: 'Payment received', body: '12.00 EUR' } },
  });
  assert.equal(sent.status, 202);
  return waitFor(`the webhook for ${user}`, () => receiver.ledger.find((r) => r.body['user_id'] === user));
}

/** What a receiver does with the library: throws unless a signature matches and the time is fresh. */
function verifies(key: string, received: ReceivedWebhook): boolean {
  const headers = Object.fromEntries(
    Object.entries(received.headers).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
  try {
    new Webhook(key).verify(received.raw, headers);
    return true;
  } catch {
    return false;
  }
}

test('a stock Standard Webhooks verifier accepts the delivery with the service secret, and only with it', async () => {
  const received = await deliver('ann');
  assert.match(secret ?? '', /^whsec_[A-Za-z0-9+/]{32}$/);
  assert.equal(
    received.headers['webhook-id'],
    received.deliveryId,
    'the id is the delivery id: the same on every attempt',
  );
  assert.ok(verifies(secret ?? '', received));
  assert.ok(received.signatureValid, 'Herald-Signature still verifies');
  assert.ok(
    !verifies(`whsec_${Buffer.alloc(24, 7).toString('base64')}`, received),
    'another secret does not',
  );
  const tampered = { ...received, raw: received.raw.replace('12.00', '99.00') };
  assert.ok(!verifies(secret ?? '', tampered), 'a changed body does not');
});

test('after a rotation both secrets verify during the overlap, then only the new one', async () => {
  const old = secret ?? '';
  const rotated = await h.call('POST', '/v1/service/webhook/rotate-secret');
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  secret = rotated.body.webhook_secret as string;
  assert.notEqual(secret, old);
  const during = await deliver('bob');
  assert.equal(String(during.headers['webhook-signature']).split(' ').length, 2);
  assert.ok(verifies(secret, during), 'the new secret');
  assert.ok(verifies(old, during), 'the previous secret, within the overlap');
  assert.ok(during.signatureValid, 'Herald-Signature uses the new secret');

  await db.pool.query("UPDATE services SET previous_webhook_secret_until = now() - interval '1 second'");
  const afterOverlap = await deliver('cid');
  assert.equal(String(afterOverlap.headers['webhook-signature']).split(' ').length, 1);
  assert.ok(verifies(secret, afterOverlap));
  assert.ok(!verifies(old, afterOverlap), 'the previous secret no longer signs');
});
