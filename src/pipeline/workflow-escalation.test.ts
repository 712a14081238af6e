// Escalation end to end on a real database: in-app → SMS unless read, push → SMS unless the app
// reports the push opened, a failed first channel escalating early, and a cancel or a PATCH
// stopping it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor as waitForWhat } from '../../test/helpers/wait-for.js';
import { AcceptingPush, RecordingSms, RefusingEmail } from '../../test/helpers/workflow-providers.js';

let db: TestDatabase;
let h: TestHerald;
const sms = new RecordingSms();

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { providers: [sms, new RefusingEmail(), new AcceptingPush()] });
});
after(async () => {
  await h.stop();
  await db.drop();
});

const waitFor = <T>(check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> =>
  waitForWhat('the workflow to get there', check, timeoutMs);

async function count(sql: string, params: unknown[]): Promise<number> {
  return (await db.pool.query<{ n: number }>(sql, params)).rows[0]?.n ?? 0;
}

const deliveriesOf = (id: string, channel: string) =>
  count('SELECT count(*)::int AS n FROM deliveries WHERE notification_id = $1 AND channel = $2', [
    id,
    channel,
  ]);

const escalation = (user: string) => ({
  recipients: [user],
  channels: ['in_app', 'sms'],
  content: { default: { title: 'Door', body: 'Someone is at the door' } },
  steps: [{ type: 'escalation', first: 'in_app', then: 'sms', within: '2s' }],
});

test('escalation: SMS when the in-app copy is not read in time, none when it is read', async () => {
  assert.equal((await h.call('PUT', '/v1/users/esc1', { phone: '+15005550006' })).status, 200);
  assert.equal((await h.call('PUT', '/v1/users/esc2', { phone: '+15005550007' })).status, 200);
  const unread = await h.call('POST', '/v1/notifications', escalation('esc1'));
  const read = await h.call('POST', '/v1/notifications', escalation('esc2'));
  assert.equal(unread.status, 202);
  assert.equal(read.status, 202);
  await waitFor(async () => ((await deliveriesOf(read.body.id, 'in_app')) === 1 ? true : undefined));
  assert.equal(await deliveriesOf(read.body.id, 'sms'), 0, 'only the first channel at first');
  const marked = await h.call('POST', `/v1/users/esc2/inbox/${idPath(read.body.id)}/read`, undefined, {
    base: h.herald.queryUrl ?? '',
  });
  assert.equal(marked.status, 200, JSON.stringify(marked.body));
  await waitFor(async () => ((await deliveriesOf(unread.body.id, 'sms')) === 1 ? true : undefined), 15_000);
  await waitFor(async () =>
    (await count(
      "SELECT count(*)::int AS n FROM workflow_runs WHERE notification_id = $1 AND state = 'done'",
      [read.body.id],
    )) === 1
      ? true
      : undefined,
  );
  assert.equal(await deliveriesOf(read.body.id, 'sms'), 0, 'read in time: no SMS');
  await waitFor(async () => (sms.calls.some((c) => c.notificationId === unread.body.id) ? true : undefined));
  assert.ok(!sms.calls.some((c) => c.notificationId === read.body.id));
});

test('escalation push → SMS: SMS when the push is not opened in time, none when the app reports it opened', async () => {
  const send = async (user: string, phone: string): Promise<string> => {
    assert.equal((await h.call('PUT', `/v1/users/${user}`, { phone })).status, 200);
    const device = await h.call('POST', `/v1/users/${user}/devices`, {
      platform: 'ios',
      app_id: 'com.example',
      token: (user === 'pe1' ? '3' : '4').repeat(64),
    });
    assert.equal(device.status, 201, JSON.stringify(device.body));
    const res = await h.call('POST', '/v1/notifications', {
      recipients: [user],
      channels: ['push', 'sms'],
      content: { default: { title: 'Door', body: 'Someone is at the door' } },
      steps: [{ type: 'escalation', first: 'push', then: 'sms', within: '2s' }],
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const unopened = await send('pe1', '+15005550008');
  const opened = await send('pe2', '+15005550009');
  const pushId = await waitFor(async () => {
    const r = await db.pool.query<{ id: string }>(
      "SELECT id FROM deliveries WHERE notification_id = $1 AND channel = 'push' AND state = 'sent'",
      [opened],
    );
    return r.rows[0]?.id;
  });
  const report = await h.call(
    'POST',
    `/v1/users/pe2/deliveries/${pushId}/opened`,
    {},
    {
      base: h.herald.queryUrl ?? '',
    },
  );
  assert.equal(report.status, 200, JSON.stringify(report.body));
  await waitFor(async () => ((await deliveriesOf(unopened, 'sms')) === 1 ? true : undefined));
  await waitFor(async () =>
    (await count(
      "SELECT count(*)::int AS n FROM workflow_runs WHERE notification_id = $1 AND state = 'done'",
      [opened],
    )) === 1
      ? true
      : undefined,
  );
  assert.equal(await deliveriesOf(opened, 'sms'), 0, 'opened in time: no SMS');
});

test('escalation: a failed first channel sends the second long before the wait ends', async () => {
  assert.equal(
    (await h.call('PUT', '/v1/users/esc5', { email: 'esc5@example.com', phone: '+15005550012' })).status,
    200,
  );
  const res = await h.call('POST', '/v1/notifications', {
    recipients: ['esc5'],
    channels: ['email', 'sms'],
    content: { default: { title: 'Invoice', body: 'Your invoice' } },
    steps: [{ type: 'escalation', first: 'email', then: 'sms', within: '1h' }],
  });
  assert.equal(res.status, 202);
  // The first check comes 15 s after the first send; an hour is far off.
  await waitFor(async () => ((await deliveriesOf(res.body.id, 'sms')) === 1 ? true : undefined), 40_000);
  const email = await db.pool.query<{ state: string }>(
    "SELECT state FROM deliveries WHERE notification_id = $1 AND channel = 'email'",
    [res.body.id],
  );
  assert.deepEqual(email.rows, [{ state: 'failed' }]);
});

test('escalation is stopped by a cancel', async () => {
  assert.equal((await h.call('PUT', '/v1/users/esc3', { phone: '+15005550008' })).status, 200);
  const res = await h.call('POST', '/v1/notifications', escalation('esc3'));
  await waitFor(async () => ((await deliveriesOf(res.body.id, 'in_app')) === 1 ? true : undefined));
  const canceled = await h.call('POST', `/v1/notifications/${idPath(res.body.id)}/cancel`);
  assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal(await deliveriesOf(res.body.id, 'sms'), 0);
});

test('escalation is stopped by a PATCH of the notification', async () => {
  assert.equal((await h.call('PUT', '/v1/users/esc4', { phone: '+15005550011' })).status, 200);
  const res = await h.call('POST', '/v1/notifications', escalation('esc4'));
  await waitFor(async () => ((await deliveriesOf(res.body.id, 'in_app')) === 1 ? true : undefined));
  const patched = await h.call('PATCH', `/v1/notifications/${idPath(res.body.id)}`, {
    version: 2,
    content: { default: { title: 'Door', body: 'Never mind, they left' } },
  });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  await waitFor(async () =>
    (await count(
      "SELECT count(*)::int AS n FROM workflow_runs WHERE notification_id = $1 AND state = 'done'",
      [res.body.id],
    )) === 1
      ? true
      : undefined,
  );
  assert.equal(await deliveriesOf(res.body.id, 'sms'), 0);
});
