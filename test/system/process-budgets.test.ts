// A hostile template cannot stall a process: twenty notifications of a nested-loop template in
// one user's inbox make the query process mark those items not renderable, while the rest of
// the page renders, the read answers within a second, and /healthz on the same process keeps
// answering within 100 ms throughout. The worker fails such a delivery for good
// (template_render_limit) and delivers the others. Before render budgets, this inbox read held
// the process for 13 s.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/spawn-herald.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';
import { WebhookReceiver } from '../stand-ins/webhook-receiver.js';

let db: TestDatabase;
let api: TestHerald;
let query: HeraldProcess | undefined;
let secret: string | undefined;
const receiver = new WebhookReceiver(() => secret);

// With n = 2 the body renders "1122" in microseconds; with n = 300 it runs 90,000 loop
// iterations, a few hundred ms: under the 500 ms per part the Herald allowed.
const nested = '{% for i in (1..n) %}{% for j in (1..n) %}{{ i }}{% endfor %}{% endfor %}';
const digest = {
  category: 'news',
  params: { n: 'integer', name: 'string' },
  fallback_locale: 'en',
  variants: {
    in_app: { en: { title: 'Digest for {{ name }}', body: nested } },
    webhook: { en: { title: 'Digest for {{ name }}', body: nested } },
  },
};

before(async () => {
  db = await createTestDatabase();
  await receiver.start();
  // The api only, for now: nothing is fanned out until the attacker's params are in place.
  api = await startTestHerald(db, { roles: ['api'] });
});
after(async () => {
  query?.kill('SIGTERM');
  if (query !== undefined) await query.exited;
  await api.stop();
  await receiver.stop();
  await db.drop();
});

async function send(body: Record<string, unknown>): Promise<string> {
  const res = await api.call('POST', '/v1/notifications', { recipients: ['ann'], ...body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
}

const inboxCount = async (): Promise<number> =>
  (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM inbox_items WHERE user_id = 'ann'"))
    .rows[0]?.n ?? 0;

async function deliveryState(id: string): Promise<{ state: string; detail: string | null } | undefined> {
  const view = await api.call('GET', `/v1/notifications/${idPath(id)}`);
  const delivery = (
    view.body.deliveries as { channel: string; state: string; last_error?: string | null }[]
  )[0];
  return delivery === undefined ? undefined : { state: delivery.state, detail: delivery.last_error ?? null };
}

interface Item {
  id: string;
  title?: string;
  body?: string;
  renderable: boolean;
}

/** One inbox read, with /healthz probed on the same process one after another while it is in flight. */
async function measuredRead(base: string, token: string) {
  const started = performance.now();
  let readMs = 0;
  const read = fetch(`${base}/v1/users/ann/inbox?limit=50`, { headers: { authorization: `Bearer ${token}` } })
    .then(async (res) => {
      assert.equal(res.status, 200);
      return ((await res.json()) as { items: Item[] }).items;
    })
    .finally(() => (readMs = performance.now() - started));
  const inFlight = { done: false };
  void read.finally(() => (inFlight.done = true)).catch(() => undefined);
  const probes: number[] = [];
  while (!inFlight.done) {
    const t = performance.now();
    const res = await fetch(`${base}/healthz`);
    await res.text();
    assert.equal(res.status, 200);
    probes.push(performance.now() - t);
  }
  return { items: await read, readMs, probes };
}

test('a nested-loop template in twenty inbox items stalls neither the inbox nor the process', async (t) => {
  assert.equal(
    (await api.call('PUT', '/v1/templates/digest', digest)).status,
    200,
    'the template is accepted',
  );
  const hook = await api.call('PUT', '/v1/service/webhook', { url: receiver.url });
  secret = hook.body.webhook_secret as string;

  // Today's ingest refuses the hostile params: the check renders within half the per-item cap.
  const refused = await api.call('POST', '/v1/notifications', {
    recipients: ['ann'],
    channels: ['in_app'],
    template: 'digest',
    params: { n: 300, name: 'x' },
  });
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'template_params_invalid');
  assert.match(refused.body.detail as string, /rendering takes longer than \d+ ms/);

  // The attacker's notifications, as the Herald accepted them (it allowed 500 ms per
  // part): sent with harmless params, then given n = 300 where the store keeps them. Each has
  // its own name, so no two render alike.
  const before = await send({ channels: ['in_app'], content: { default: { title: 'Before' } } });
  const hostile: string[] = [];
  for (let i = 0; i < 20; i += 1)
    hostile.push(
      await send({
        channels: ['in_app'],
        template: 'digest',
        params: { n: 2, name: `secret-param-${String(i)}` },
      }),
    );
  const hostileHook = await send({
    channels: ['webhook'],
    template: 'digest',
    params: { n: 2, name: 'secret-param-hook' },
  });
  const normalHook = await send({ channels: ['webhook'], template: 'digest', params: { n: 2, name: 'ann' } });
  await db.pool.query(
    `UPDATE notifications SET params = jsonb_set(params, '{n}', '300') WHERE id = ANY($1)`,
    [[...hostile, hostileHook]],
  );

  // The worker fans them out, fails the hostile webhook for good and sends the other one. It runs
  // in this process, so it is stopped before the measured reads.
  const worker = await startTestHerald(db, { roles: ['worker'] });
  let normal: string;
  let after: string;
  try {
    await waitFor('21 inbox items', async () => (await inboxCount()) === 21, 60_000);
    const failed = await waitFor(
      'the hostile webhook delivery to fail',
      async () => {
        const d = await deliveryState(hostileHook);
        return d?.state === 'failed' ? d : undefined;
      },
      60_000,
    );
    assert.match(failed.detail ?? '', /^template_render_limit: /);
    await waitFor(
      'the normal webhook delivery',
      async () => (await deliveryState(normalHook))?.state === 'sent',
      60_000,
    );
    assert.equal(receiver.ledger.length, 1);
    assert.equal(receiver.ledger[0]?.body['title'], 'Digest for ann');
    // Newer than the hostile items, so first on the page.
    normal = await send({ channels: ['in_app'], template: 'digest', params: { n: 2, name: 'ann' } });
    after = await send({ channels: ['in_app'], content: { default: { title: 'After' } } });
    await waitFor('23 inbox items', async () => (await inboxCount()) === 23, 60_000);
  } finally {
    await worker.stop();
  }

  {
    // The query role in a process of its own, as in production.
    const port = await freePort();
    // Caps three times the defaults: the first render of the normal template in a fresh process
    // missed 20 ms on a loaded CI machine (its /healthz probes waited up to 88 ms), while one
    // hostile item takes about 300 ms here, far over either cap.
    query = spawnHerald(['query'], {
      DATABASE_URL: db.url,
      QUERY_PORT: String(port),
      RENDER_ITEM_LIMIT_MS: '60',
      RENDER_BUDGET_MS: '150',
    });
    const base = `http://127.0.0.1:${String(port)}`;
    await waitFor('the query process', () => query?.output().includes('Herald is running') === true, 60_000);
    const token = (await api.call('POST', '/v1/users/ann/token', {}, { base })).body.token as string;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);

    for (const round of ['first read', 'second read']) {
      const { items, readMs, probes } = await measuredRead(base, token);
      const maxProbe = Math.max(...probes);
      t.diagnostic(
        `${round}: inbox ${readMs.toFixed(0)} ms, ${String(probes.length)} /healthz probes, max ${maxProbe.toFixed(1)} ms`,
      );
      assert.ok(probes.length > 0, 'probed while the read was in flight');
      // A stalled event loop answers only after the whole render; a healthy one on a machine busy
      // with the rest of the suite was seen answering in 217 ms, so the bound leaves room for that.
      assert.ok(maxProbe < 300, `${round}: /healthz took ${maxProbe.toFixed(1)} ms`);
      assert.ok(readMs < 1000, `${round}: the inbox took ${readMs.toFixed(0)} ms`);
      assert.equal(items.length, 23);
      const byId = new Map(items.map((i) => [i.id, i]));
      assert.deepEqual(
        [normal, after, before].map((id) => byId.get(id)).map((i) => [i?.renderable, i?.title, i?.body]),
        [
          [true, 'Digest for ann', '1122'],
          [true, 'After', undefined],
          [true, 'Before', undefined],
        ],
      );
      for (const id of hostile) {
        const item = byId.get(id);
        assert.equal(item?.renderable, false, `${round}: ${id}`);
        assert.equal(item.title, undefined);
        assert.equal(item.body, undefined);
      }
    }

    // A render that misses its cap twice is settled: logged once (without params), not tried
    // again. Each read spends its budget on the hostile items not settled yet.
    const settledLines = () =>
      (query?.output() ?? '').split('\n').filter((l) => l.includes('template not renderable'));
    await waitFor('a hostile render to settle', async () => {
      const res = await fetch(`${base}/v1/users/ann/inbox?limit=50`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await res.text();
      return settledLines().length > 0;
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /herald_template_render_failures_total\{reason="limit"\} [1-9]/);
    assert.match(metrics, /herald_template_render_failures_total\{reason="budget"\} [1-9]/);
    const output = query.output();
    assert.ok(settledLines().length <= hostile.length, output);
    assert.ok(!output.includes('secret-param'), 'params never reach the log');
  }
});
