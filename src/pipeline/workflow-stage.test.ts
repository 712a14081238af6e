// Workflows end to end through the public API, on a real database with a real worker role: a
// delay, conditions, steps on templates, cleanup, refused step definitions, and one service's
// digest key against another's (escalation: workflow-escalation.test.ts; a digest under four
// worker processes: test/system/digest-workers.test.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor as waitForWhat } from '../../test/helpers/wait-for.js';
import { cleanUpFinishedWorkflows } from './workflow-stage.js';
import { AcceptingPush, RecordingSms, RefusingEmail } from '../../test/helpers/workflow-providers.js';

let db: TestDatabase;
let h: TestHerald;
const sms = new RecordingSms();

const digestTemplate = {
  category: 'updates',
  params: { what: 'string' },
  fallback_locale: 'en',
  variants: {
    in_app: {
      en: { title: '{{ item_count }} updates', body: '{% for i in items %}{{ i.what }};{% endfor %}' },
    },
  },
};

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    providers: [sms, new RefusingEmail(), new AcceptingPush()],
    env: { RENDER_ITEM_LIMIT_MS: '1000' },
  });
  const put = await h.call('PUT', '/v1/templates/digest.updates', digestTemplate);
  assert.equal(put.status, 200, JSON.stringify(put.body));
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

test("one service's digest key does not collect another service's notifications", async () => {
  const other = await startTestHerald(db, { roles: ['api'], service: 'rival' });
  try {
    assert.equal((await h.call('PUT', '/v1/users/erin', {})).status, 200);
    assert.equal((await other.call('PUT', '/v1/templates/digest.updates', digestTemplate)).status, 200);
    const body = (what: string) => ({
      recipients: ['erin'],
      channels: ['in_app'],
      template: 'digest.updates',
      params: { what },
      steps: [{ type: 'digest', key: 'shared-key', window: '2s' }],
    });
    assert.equal((await h.call('POST', '/v1/notifications', body('mine'))).status, 202);
    assert.equal((await other.call('POST', '/v1/notifications', body('theirs'))).status, 202);
    const rows = await waitFor(async () => {
      const r = await db.pool.query<{ service_id: string; summary_id: string; item_count: number }>(
        "SELECT service_id, summary_id, item_count FROM digests WHERE user_id = 'erin' AND state = 'sent'",
      );
      return r.rows.length === 2 ? r.rows : undefined;
    }, 20_000);
    assert.deepEqual(
      rows.map((r) => r.item_count),
      [1, 1],
    );
    const summaries = await db.pool.query<{ id: string; items: string[] }>(
      `SELECT id, ARRAY(SELECT jsonb_array_elements(params->'items')->>'what') AS items FROM notifications
        WHERE id = ANY($1::text[]) ORDER BY id`,
      [rows.map((r) => r.summary_id)],
    );
    const byService = new Map(summaries.rows.map((r) => [r.id.split('#')[0], r.items]));
    assert.deepEqual(byService.get('shop'), ['mine']);
    assert.deepEqual(byService.get('rival'), ['theirs']);
  } finally {
    await other.stop();
  }
});

test('runs and digests finished over a week ago are deleted', async () => {
  const old = await db.pool.query<{ n: number }>(
    `WITH r AS (UPDATE workflow_runs SET updated_at = now() - interval '8 days' WHERE state <> 'running' RETURNING 1)
     SELECT count(*)::int AS n FROM r`,
  );
  assert.ok((old.rows[0]?.n ?? 0) > 0);
  // Of erin's two sent digests (one per service), the rival's is a week old; shop's is recent.
  const aged = await db.pool.query<{ id: string }>(
    `UPDATE digests SET summary_created_at = now() - interval '8 days'
      WHERE user_id = 'erin' AND service_id = (SELECT id FROM services WHERE name = 'rival') RETURNING id`,
  );
  assert.equal(aged.rows.length, 1);
  const agedId = aged.rows[0]!.id;
  assert.ok((await count('SELECT count(*)::int AS n FROM digest_items WHERE digest_id = $1', [agedId])) > 0);
  await cleanUpFinishedWorkflows({ pool: db.pool, now: () => new Date(), batchSize: 2 });
  assert.equal(
    await count(
      "SELECT count(*)::int AS n FROM workflow_runs WHERE updated_at < now() - interval '7 days'",
      [],
    ),
    0,
  );
  assert.equal(await count('SELECT count(*)::int AS n FROM digest_items WHERE digest_id = $1', [agedId]), 0);
  assert.equal(await count('SELECT count(*)::int AS n FROM digests WHERE id = $1', [agedId]), 0);
  assert.equal(await count("SELECT count(*)::int AS n FROM digests WHERE user_id = 'erin'", []), 1);
});

test('a delay: nothing is sent before the time, it is sent after', async () => {
  assert.equal((await h.call('PUT', '/v1/users/del1', {})).status, 200);
  const res = await h.call('POST', '/v1/notifications', {
    recipients: ['del1'],
    channels: ['in_app'],
    content: { default: { title: 'Later' } },
    steps: [{ type: 'delay', for: '3s' }],
  });
  assert.equal(res.status, 202);
  const accepted = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await deliveriesOf(res.body.id, 'in_app'), 0, 'nothing before the time');
  await waitFor(async () => ((await deliveriesOf(res.body.id, 'in_app')) === 1 ? true : undefined), 15_000);
  const at = await db.pool.query<{ created_at: Date }>(
    'SELECT created_at FROM deliveries WHERE notification_id = $1',
    [res.body.id],
  );
  assert.ok(at.rows[0]!.created_at.getTime() >= accepted + 2900);
});

test('conditions: a step is skipped when the user attribute does not match', async () => {
  assert.equal(
    (await h.call('PUT', '/v1/users/pro1', { phone: '+15005550009', attributes: { plan: 'pro' } })).status,
    200,
  );
  assert.equal(
    (await h.call('PUT', '/v1/users/free1', { phone: '+15005550010', attributes: { plan: 'free' } })).status,
    200,
  );
  const res = await h.call('POST', '/v1/notifications', {
    recipients: ['pro1', 'free1'],
    channels: ['in_app', 'sms'],
    content: { default: { title: 'Invoice', body: 'Your invoice is ready' } },
    steps: [
      { type: 'send', channels: ['in_app'] },
      { type: 'send', channels: ['sms'], if: { attributes: { plan: 'pro' } } },
    ],
  });
  assert.equal(res.status, 202);
  await waitFor(async () =>
    (await count(
      "SELECT count(*)::int AS n FROM deliveries WHERE notification_id = $1 AND channel = 'in_app'",
      [res.body.id],
    )) === 2
      ? true
      : undefined,
  );
  await waitFor(async () =>
    (await count(
      "SELECT count(*)::int AS n FROM deliveries WHERE notification_id = $1 AND channel = 'sms' AND user_id = 'pro1'",
      [res.body.id],
    )) === 1
      ? true
      : undefined,
  );
  assert.equal(
    await count(
      "SELECT count(*)::int AS n FROM deliveries WHERE notification_id = $1 AND user_id = 'free1' AND channel = 'sms'",
      [res.body.id],
    ),
    0,
  );
  const user = await h.call('GET', '/v1/users/pro1');
  assert.deepEqual(user.body.attributes, { plan: 'pro' });
});

test("a template's steps run for requests that give none; a new version without steps drops them", async () => {
  const reminder = {
    params: {},
    fallback_locale: 'en',
    variants: { in_app: { en: { title: 'Reminder' } } },
    steps: [{ type: 'delay', for: '2s' }],
  };
  const refused = await h.call('PUT', '/v1/templates/reminder.later', {
    ...reminder,
    steps: [{ type: 'delay', for: '40d' }],
  });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.code, 'workflow_invalid');
  const put = await h.call('PUT', '/v1/templates/reminder.later', reminder);
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const got = await h.call('GET', '/v1/templates/reminder.later');
  assert.deepEqual(got.body.steps, reminder.steps);
  const res = await h.call('POST', '/v1/notifications', {
    recipients: ['del1'],
    channels: ['in_app'],
    template: 'reminder.later',
  });
  assert.equal(res.status, 202);
  const view = await h.call('GET', `/v1/notifications/${idPath(res.body.id)}`);
  assert.equal(view.body.recipients[0].state, 'held');
  assert.equal(view.body.status, 'scheduled');
  await waitFor(async () => ((await deliveriesOf(res.body.id, 'in_app')) === 1 ? true : undefined));
  const plain = await h.call('PUT', '/v1/templates/reminder.later', { ...reminder, steps: undefined });
  assert.equal(plain.status, 200);
  assert.equal(plain.body.version, 2);
  const now = await h.call('POST', '/v1/notifications', {
    recipients: ['del1'],
    channels: ['in_app'],
    template: 'reminder.later',
  });
  assert.equal(
    await count('SELECT count(*)::int AS n FROM workflow_runs WHERE notification_id = $1', [now.body.id]),
    0,
  );
});

test('invalid step definitions are refused with a problem and change nothing', async () => {
  const before = await count('SELECT count(*)::int AS n FROM notifications', []);
  const base = {
    recipients: ['del1'],
    channels: ['in_app'],
    template: 'digest.updates',
    params: { what: 'x' },
  };
  const cases: [string, unknown, string][] = [
    ['too many steps', Array.from({ length: 11 }, () => ({ type: 'delay', for: '1s' })), 'validation_failed'],
    ['unknown type', [{ type: 'teleport' }], 'validation_failed'],
    ['absurd delay', [{ type: 'delay', for: '9999999d' }], 'workflow_invalid'],
    ['delay over 30 days', [{ type: 'delay', for: '31d' }], 'workflow_invalid'],
    ['delay with both', [{ type: 'delay', for: '1m', until: '09:00' }], 'workflow_invalid'],
    ['bad clock time', [{ type: 'delay', until: '25:00' }], 'validation_failed'],
    [
      'digest not last',
      [
        { type: 'digest', key: 'k', window: '1h' },
        { type: 'delay', for: '1m' },
      ],
      'workflow_invalid',
    ],
    [
      'escalation off the request channels',
      [{ type: 'escalation', first: 'in_app', then: 'sms', within: '1m' }],
      'workflow_invalid',
    ],
    [
      'digest huge max_items',
      [{ type: 'digest', key: 'k', window: '1h', max_items: 10_000_000 }],
      'validation_failed',
    ],
  ];
  for (const [name, steps, code] of cases) {
    const res = await h.call('POST', '/v1/notifications', { ...base, steps });
    assert.equal(res.status, 400, name);
    assert.equal(res.body.code, code, `${name}: ${JSON.stringify(res.body)}`);
  }
  assert.equal(await count('SELECT count(*)::int AS n FROM notifications', []), before);
});
