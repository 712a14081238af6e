import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../../../test/helpers/test-herald.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { SlackWebhookStandIn } from '../../../test/stand-ins/slack-webhook.js';
import { classifySlackResponse } from './slack-responses.js';
import { slackText } from './slack-provider.js';
import type { RenderedMessage } from '../channel-provider.js';

describe('Slack answers → outcomes', () => {
  const now = Date.parse('2026-11-24T00:00:00Z');
  test('the documented answers', () => {
    assert.deepEqual(classifySlackResponse(200, 'ok', null, now), { kind: 'sent', providerMessageId: null });
    assert.deepEqual(classifySlackResponse(400, 'invalid_payload', null, now), {
      kind: 'failed',
      reason: 'HTTP 400 invalid_payload',
    });
    for (const [status, reason] of [
      [403, 'action_prohibited'],
      [403, 'invalid_token'],
      [404, 'channel_not_found'],
      [404, 'no_service'],
      [404, 'no_service_id'],
      [404, 'no_team'],
      [404, 'team_disabled'],
      [410, 'channel_is_archived'],
    ] as const) {
      assert.deepEqual(classifySlackResponse(status, reason, null, now), {
        kind: 'target_invalid',
        reason: `HTTP ${String(status)} ${reason}`,
      });
    }
    assert.deepEqual(classifySlackResponse(500, 'rollup_error', null, now), {
      kind: 'retry',
      reason: 'HTTP 500 rollup_error',
    });
    assert.deepEqual(classifySlackResponse(429, 'rate_limited', '30', now), {
      kind: 'retry',
      reason: 'HTTP 429 rate_limited',
      retryAfterMs: 30_000,
    });
  });

  test("any other text is not kept: the reason is the status alone (the URL is the caller's)", () => {
    // What a server that is not Slack might answer: its bytes must not reach last_error.
    const secret = '{"AccessKeyId":"ASIA-EXAMPLE","SecretAccessKey":"wJalr"}';
    assert.deepEqual(classifySlackResponse(401, secret, null, now), { kind: 'failed', reason: 'HTTP 401' });
    assert.deepEqual(classifySlackResponse(404, '<html>Not Found</html>', null, now), {
      kind: 'target_invalid',
      reason: 'HTTP 404',
    });
    assert.deepEqual(classifySlackResponse(503, 'upstream internal-db:5432 down', null, now), {
      kind: 'retry',
      reason: 'HTTP 503',
    });
    assert.deepEqual(classifySlackResponse(400, 'invalid_payload and more', null, now), {
      kind: 'failed',
      reason: 'HTTP 400',
    });
  });

  test('the text is Slack mrkdwn with &, < and > escaped', () => {
    const message = {
      content: {
        title: 'Build <main> & tests',
        body: 'a > b',
        url: 'https://ci.example/run?a=1|2',
        status: 'done',
      },
    } as RenderedMessage;
    assert.equal(
      slackText(message),
      '*Build &lt;main&gt; &amp; tests* (done)\na &gt; b\n<https://ci.example/run?a=1%7C2|Open>',
    );
  });
});

describe('chat channel through the pipeline', () => {
  let db: TestDatabase;
  let h: TestHerald;
  const slack = new SlackWebhookStandIn();

  before(async () => {
    db = await createTestDatabase();
    await slack.start();
    h = await startTestHerald(db, { env: { MAX_ATTEMPTS: '3', RETRY_BASE_MS: '50', RETRY_MAX_MS: '200' } });
  });
  after(async () => {
    await h.stop();
    await slack.stop();
    await db.drop();
  });

  const chatDelivery = async (id: string, state: string) =>
    waitFor(`chat delivery ${state}`, async () => {
      const view = await h.call('GET', `/v1/notifications/${idPath(id)}`);
      const d = view.body.deliveries.find((x: { channel: string }) => x.channel === 'chat');
      return d?.state === state ? d : undefined;
    });

  const send = async (user: string, title: string) => {
    const res = await h.call('POST', '/v1/notifications', {
      recipients: [user],
      channels: ['chat'],
      content: { default: { title, body: 'Deployed' } },
    });
    assert.equal(res.status, 202);
    return res.body.id as string;
  };

  test("a user's Slack webhook gets the message; otherwise the service's", async () => {
    await h.call('PUT', '/v1/users/ana', { chat_webhook_url: slack.url('/services/T1/B1/ana') });
    const own = await send('ana', 'For Ana');
    await chatDelivery(own, 'sent');
    const service = await h.call('PUT', '/v1/service/chat', { url: slack.url('/services/T1/B2/team') });
    assert.equal(service.body.chat_webhook_url, slack.url('/services/T1/B2/team'));
    const fallback = await send('bob', 'For the team');
    await chatDelivery(fallback, 'sent');
    assert.deepEqual(
      slack.accepted.map((a) => [a.path, a.text]),
      [
        ['/services/T1/B1/ana', '*For Ana*\nDeployed'],
        ['/services/T1/B2/team', '*For the team*\nDeployed'],
      ],
    );
  });

  test('429 with Retry-After and 500 are retried, honouring Retry-After', async () => {
    const path = '/services/T1/B3/busy';
    await h.call('PUT', '/v1/users/cid', { chat_webhook_url: slack.url(path) });
    slack.script(path, [
      { status: 429, text: 'rate_limited', headers: { 'retry-after': '1' } },
      { status: 500, text: 'rollup_error' },
    ]);
    const id = await send('cid', 'Busy');
    const sent = await chatDelivery(id, 'sent');
    assert.equal(sent.attempts, 3);
    const times = slack.answered.filter((a) => a.path === path).map((a) => a.at);
    assert.ok((times[1] ?? 0) - (times[0] ?? 0) >= 950, 'waited for Retry-After');
  });

  test('an archived channel is target_invalid: the webhook is removed from the user, once', async () => {
    const path = '/services/T1/B4/old';
    await h.call('PUT', '/v1/users/dee', { chat_webhook_url: slack.url(path) });
    slack.script(path, [{ status: 410, text: 'channel_is_archived' }]);
    const id = await send('dee', 'Archived');
    const invalid = await chatDelivery(id, 'target_invalid');
    assert.equal(invalid.attempts, 1);
    assert.match(invalid.last_error, /channel_is_archived/);
    const user = await h.call('GET', '/v1/users/dee');
    assert.equal(user.body.chat_webhook_url, null);
    // The next notification no longer uses the removed webhook: it falls back to the service's.
    const next = await send('dee', 'Again');
    const fallback = await chatDelivery(next, 'sent');
    // The API shows a URL target by its origin only (the path is the webhook's credential).
    assert.equal(fallback.target, `${slack.base}/***`);
    const stored = await db.pool.query<{ target: string }>('SELECT target FROM deliveries WHERE id = $1', [
      fallback.id,
    ]);
    assert.equal(stored.rows[0]?.target, slack.url('/services/T1/B2/team'));
  });

  test('invalid_payload is a permanent failure after one attempt', async () => {
    const path = '/services/T1/B5/strict';
    await h.call('PUT', '/v1/users/eve', { chat_webhook_url: slack.url(path) });
    slack.script(path, [{ status: 400, text: 'invalid_payload' }]);
    const id = await send('eve', 'Strict');
    const failed = await chatDelivery(id, 'failed');
    assert.equal(failed.attempts, 1);
  });
});
