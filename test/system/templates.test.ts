// Templated notifications through the whole pipeline: rendered at send time in each user's
// locale with the version recorded at ingest, email HTML escaped all the way into the MIME
// message, and the inbox showing the in_app variant.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import type { ChannelProvider, RenderedMessage } from '../../src/channels/channel-provider.js';
import { composeEmail } from '../../src/channels/email/compose-email.js';

/** An email provider that keeps what it is asked to send. */
class CaptureEmail implements ChannelProvider {
  readonly name = 'capture-email';
  readonly channel = 'email' as const;
  readonly sent: RenderedMessage[] = [];
  send(message: RenderedMessage) {
    this.sent.push(message);
    return Promise.resolve({ kind: 'sent' as const, providerMessageId: message.deliveryId });
  }
  close() {
    return Promise.resolve();
  }
}

const template = (subject: string) => ({
  category: 'orders',
  params: { name: 'string', count: 'integer' },
  fallback_locale: 'en',
  variants: {
    email: {
      en: {
        subject: `${subject} {{ name }}`,
        html: '<p>Hello <b>{{ name }}</b>: {{ "{count, plural, one {# item} other {# items}}" | icu }}</p>',
        text: 'Hello {{ name }}',
      },
      ko: {
        subject: `${subject} {{ name }}님`,
        html: '<p>{{ name }}님 {{ count }}개</p>',
        text: '{{ name }}님',
      },
    },
    in_app: {
      en: { title: subject, body: '{{ "{count, plural, one {# item} other {# items}}" | icu }}' },
      ko: { title: `${subject} (ko)`, body: '{{ count }}개' },
    },
  },
});

describe('templated notifications through the pipeline', () => {
  let db: TestDatabase;
  let h: TestHerald;
  const email = new CaptureEmail();

  before(async () => {
    db = await createTestDatabase();
    h = await startTestHerald(db, { providers: [email] });
    for (const [id, locale] of [
      ['kim', 'ko-KR'],
      ['ann', 'en-GB'],
      ['zoe', 'fr'],
    ] as const) {
      const res = await h.call('PUT', `/v1/users/${id}`, { email: `${id}@example.com`, locale });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    const saved = await h.call('PUT', '/v1/templates/order', template('v1'));
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
  });
  after(async () => {
    await h.stop();
    await db.drop();
  });

  const inbox = async (user: string) =>
    (await h.call('GET', `/v1/users/${user}/inbox`, undefined, { base: h.herald.queryUrl ?? '' })).body
      .items as {
      id: string;
      title?: string;
      body?: string;
    }[];
  const mailTo = (user: string, id: string) =>
    email.sent.find((m) => m.target === `${user}@example.com` && m.notificationId === id);

  test('each user gets their locale; email html escapes params into the MIME message; the inbox renders in_app', async () => {
    const res = await h.call('POST', '/v1/notifications', {
      recipients: ['kim', 'ann', 'zoe'],
      channels: ['email', 'in_app'],
      template: 'order',
      params: { name: '<script>x</script>', count: 1 },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id as string;
    const [kim, ann, zoe] = await waitFor('three emails', () => {
      const all = ['kim', 'ann', 'zoe'].flatMap((u) => mailTo(u, id) ?? []);
      return all.length === 3 ? all : undefined;
    });
    assert.ok(kim !== undefined && ann !== undefined && zoe !== undefined);
    assert.equal(kim.content.title, 'v1 <script>x</script>님');
    assert.equal(kim.html, '<p>&lt;script&gt;x&lt;/script&gt;님 1개</p>');
    assert.equal(ann.content.title, 'v1 <script>x</script>');
    assert.equal(zoe.html, '<p>Hello <b>&lt;script&gt;x&lt;/script&gt;</b>: 1 item</p>');

    const mime = await composeEmail(ann, { from: 'Shop <shop@example.com>' });
    const parsed = await simpleParser(mime.raw);
    assert.equal(parsed.subject, 'v1 <script>x</script>');
    assert.equal(parsed.html, '<p>Hello <b>&lt;script&gt;x&lt;/script&gt;</b>: 1 item</p>');
    assert.equal(parsed.text?.trim(), 'Hello <script>x</script>');

    const kimInbox = await waitFor('kim inbox', async () => (await inbox('kim')).find((i) => i.id === id));
    assert.deepEqual([kimInbox.title, kimInbox.body], ['v1 (ko)', '1개']);
    const zoeInbox = await waitFor('zoe inbox', async () => (await inbox('zoe')).find((i) => i.id === id));
    assert.deepEqual([zoeInbox.title, zoeInbox.body], ['v1', '1 item']);
  });

  test('an edit makes version 2; a notification accepted with version 1 still renders version 1', async () => {
    const sendAt = new Date(Date.now() + 1500).toISOString();
    const early = await h.call('POST', '/v1/notifications', {
      recipients: ['ann'],
      channels: ['email', 'in_app'],
      template: 'order',
      params: { name: 'Ann', count: 3 },
      send_at: sendAt,
    });
    assert.equal(early.status, 202, JSON.stringify(early.body));
    const put = await h.call('PUT', '/v1/templates/order', template('v2'));
    assert.equal(put.body.version, 2);
    const late = await h.call('POST', '/v1/notifications', {
      recipients: ['ann'],
      channels: ['email', 'in_app'],
      template: 'order',
      params: { name: 'Ann', count: 3 },
    });
    const earlyView = await h.call('GET', `/v1/notifications/${idPath(early.body.id)}`);
    const lateView = await h.call('GET', `/v1/notifications/${idPath(late.body.id)}`);
    assert.equal(earlyView.body.template.version, 1);
    assert.equal(lateView.body.template.version, 2);

    const [first, second] = await waitFor('both emails', () => {
      const both = [mailTo('ann', early.body.id), mailTo('ann', late.body.id)].flatMap((m) => m ?? []);
      return both.length === 2 ? both : undefined;
    });
    assert.equal(first?.content.title, 'v1 Ann');
    assert.equal(second?.content.title, 'v2 Ann');
    const items = await waitFor('both in inbox', async () => {
      const all = await inbox('ann');
      const pair = [early.body.id, late.body.id].flatMap((id) => all.find((i) => i.id === id) ?? []);
      return pair.length === 2 ? pair : undefined;
    });
    assert.deepEqual(
      items.map((i) => [i.title, i.body]),
      [
        ['v1', '3 items'],
        ['v2', '3 items'],
      ],
    );
  });
});
