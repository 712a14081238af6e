// The outbound policy as an attacker meets it: with no network allowed, a receiver on
// 127.0.0.1 that counts every TCP connection it accepts. Webhook and Slack URLs naming an inward
// address in any spelling are refused when written, and nothing is stored; a name that resolves
// to loopback (stored behind the API's back) fails at send time as `blocked`, and the receiver
// sees no connection at all. Allowed by OUTBOUND_ALLOWED_NETWORKS, the same receiver is called.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { closeServer } from '../helpers/loopback-server.js';

describe('the outbound policy', () => {
  let db: TestDatabase;
  let receiver: Server;
  let port = '';
  let connections = 0;
  const received: string[] = [];
  let h: TestHerald | undefined;

  before(async () => {
    db = await createTestDatabase();
    receiver = createServer((req, res) => {
      received.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(200).end());
    });
    receiver.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    port = String((receiver.address() as AddressInfo).port);
  });
  after(async () => {
    await h?.stop();
    await closeServer(receiver);
    await db.drop();
  });

  const start = async (allowed: string) => {
    await h?.stop();
    // '' leaves the setting unset: nothing is allowed.
    h = await startTestHerald(db, { roles: ['api', 'worker'], env: { OUTBOUND_ALLOWED_NETWORKS: allowed } });
    return h;
  };

  const webhookDelivery = (herald: TestHerald, id: string, state: string) =>
    waitFor(`webhook delivery ${state}`, async () => {
      const view = await herald.call('GET', `/v1/notifications/${idPath(id)}`);
      const d = view.body.deliveries?.find((x: { channel: string }) => x.channel === 'webhook');
      return d?.state === state ? d : undefined;
    });

  /** Stores a webhook URL behind the API's back, as a name that resolved elsewhere when it was written would be. */
  const storeTarget = async (herald: TestHerald, user: string, url: string) => {
    await herald.call('PUT', `/v1/users/${user}`, {});
    await db.pool.query('UPDATE users SET webhook_url = $1 WHERE id = $2', [url, user]);
  };

  const notify = async (herald: TestHerald, user: string) => {
    const res = await herald.call('POST', '/v1/notifications', {
      recipients: [user],
      channels: ['webhook'],
      content: { default: { title: 'Hello' } },
    });
    assert.equal(res.status, 202);
    return res.body.id as string;
  };

  test('every spelling of an inward address is refused when written, and nothing is stored', async () => {
    const herald = await start('');
    const refused = [
      `http://127.0.0.1:${port}/`,
      `http://[::1]:${port}/`,
      `http://0.0.0.0:${port}/`,
      `http://2130706433:${port}/`,
      `http://0x7f000001:${port}/`,
      `http://0177.0.0.1:${port}/`,
      `http://127.1:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://localhost:${port}/`,
      'http://169.254.169.254/',
      'http://10.0.0.1/',
      'http://192.168.1.1/',
      'http://100.64.0.1/',
      'http://[fd00::1]/',
      'http://[fe80::1]/',
    ];
    const expectRefused = (res: { status: number; body: any }, field: string, url: string) => {
      assert.equal(res.status, 400, url);
      assert.equal(res.body.code, 'target_blocked', url);
      assert.deepEqual(
        res.body.errors.map((e: { field: string }) => e.field),
        [field],
        url,
      );
    };
    for (const [i, url] of refused.entries()) {
      const user = `attacker-${String(i)}`;
      for (const field of ['webhook_url', 'chat_webhook_url'])
        expectRefused(await herald.call('PUT', `/v1/users/${user}`, { [field]: url }), `body/${field}`, url);
      expectRefused(
        await herald.call('POST', '/v1/users/bulk', {
          users: [
            { id: `${user}-ok`, email: 'ok@example.com' },
            { id: `${user}-bad`, chat_webhook_url: url },
          ],
        }),
        'body/users/1/chat_webhook_url',
        url,
      );
      for (const path of ['/v1/service/webhook', '/v1/service/chat'])
        expectRefused(await herald.call('PUT', path, { url }), 'body/url', url);
    }
    const { rows } = await db.pool.query<{ users: string }>('SELECT count(*)::text AS users FROM users');
    assert.equal(rows[0]?.users, '0', 'no user was written, not even the valid half of a bulk request');
    const service = await herald.call('GET', '/v1/service');
    assert.equal(service.body.webhook_url, null);
    assert.equal(service.body.chat_webhook_url, null);
    // A URL that is not one is still invalid_url; a public name passes (checked on connection).
    assert.equal(
      (await herald.call('PUT', '/v1/users/x', { webhook_url: 'ftp://x' })).body.code,
      'invalid_url',
    );
    assert.equal(
      (await herald.call('PUT', '/v1/users/x', { webhook_url: 'https://hooks.example.com/a' })).status,
      200,
    );
    assert.equal(connections, 0);
  });

  test('a name that resolves to loopback fails at send time as blocked, with no connection', async () => {
    const herald = await start('');
    await storeTarget(herald, 'rebound', `http://localhost:${port}/rebound`);
    const id = await notify(herald, 'rebound');
    const failed = await webhookDelivery(herald, id, 'failed');
    assert.equal(failed.last_error, 'blocked');
    assert.equal(failed.attempts, 1, 'not retried');
    assert.equal(connections, 0, 'the receiver never saw a connection');
  });

  test('with 127.0.0.0/8 allowed, the same receiver is called', async () => {
    const herald = await start('127.0.0.0/8');
    const put = await herald.call('PUT', '/v1/users/insider', {
      webhook_url: `http://127.0.0.1:${port}/insider`,
    });
    assert.equal(put.status, 200);
    const sent = await webhookDelivery(herald, await notify(herald, 'insider'), 'sent');
    assert.equal(sent.attempts, 1);
    // localhost may resolve to ::1 first: that address is dropped and 127.0.0.1 is used.
    await storeTarget(herald, 'by-name', `http://localhost:${port}/by-name`);
    const viaName = await webhookDelivery(herald, await notify(herald, 'by-name'), 'sent');
    assert.equal(viaName.attempts, 1);
    assert.deepEqual(received.sort(), ['/by-name', '/insider']);
    assert.ok(connections >= 1);
  });
});
