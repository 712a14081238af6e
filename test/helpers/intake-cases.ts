// What every broker's intake test sends: valid requests, and bad ones whose problem code over
// the broker must equal the code POST /v1/notifications answers the same body with.
import assert from 'node:assert/strict';
import type { TestHerald } from './test-herald.js';
import { waitFor } from './wait-for.js';

export function validRequest(user: string, title: string): Record<string, unknown> {
  return { recipients: [user], channels: ['in_app'], content: { default: { title, body: `${title} body` } } };
}

/** Bodies Herald refuses, as raw bytes (one is not JSON at all). */
export const badBodies: { name: string; body: string }[] = [
  { name: 'not JSON', body: '{"recipients": [' },
  {
    name: 'unknown channel',
    body: JSON.stringify({ recipients: ['u1'], channels: ['pigeon'], content: { default: { title: 't' } } }),
  },
  { name: 'extra field', body: JSON.stringify({ ...validRequest('u1', 't'), colour: 'red' }) },
  { name: 'no content', body: JSON.stringify({ recipients: ['u1'], channels: ['in_app'] }) },
  {
    name: 'unknown template',
    body: JSON.stringify({ recipients: ['u1'], channels: ['in_app'], template: 'no-such-template' }),
  },
  {
    name: 'foreign id',
    body: JSON.stringify({ ...validRequest('u1', 't'), id: 'other#0190a000-0000-7000-8000-000000000000' }),
  },
];

/** The problem code POST /v1/notifications answers `body` with (asserting it is a 4xx). */
export async function httpProblemCode(h: TestHerald, body: string): Promise<string> {
  const res = await h.call('POST', '/v1/notifications', body);
  assert.ok(res.status >= 400 && res.status < 500, `HTTP answered ${String(res.status)} to ${body}`);
  return (res.body as { code: string }).code;
}

/** A service name of this run's own, so queues on the shared broker never mix runs. */
export function uniqueService(prefix: string): string {
  return `${prefix}${String(process.pid)}x${Math.random().toString(36).slice(2, 8)}`;
}

/** Notifications of a service, by their title: one entry per notification (duplicates show). */
export async function titlesOf(h: TestHerald, service: string): Promise<string[]> {
  const { rows } = await h.herald.pool.query<{ title: string }>(
    `SELECT n.content->'default'->>'title' AS title
       FROM notifications n JOIN services s ON s.id = n.service_id
      WHERE s.name = $1 ORDER BY 1`,
    [service],
  );
  return rows.map((r) => r.title);
}

/**
 * Waits until the service has exactly the notifications `titles` names (one each: a duplicate
 * fails) and every one of them is delivered in the inbox.
 */
export async function expectDelivered(
  h: TestHerald,
  service: string,
  titles: readonly string[],
): Promise<void> {
  const stored = await waitFor(`${String(titles.length)} notifications`, async () => {
    const t = await titlesOf(h, service);
    return t.length >= titles.length ? t : undefined;
  });
  assert.deepEqual(stored, [...titles].sort());
  await waitFor('in-app deliveries', async () => {
    const { rows } = await h.herald.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM deliveries d JOIN notifications n ON n.id = d.notification_id
         JOIN services s ON s.id = n.service_id WHERE s.name = $1 AND d.state = 'delivered'`,
      [service],
    );
    return Number(rows[0]?.n) === titles.length;
  });
}
