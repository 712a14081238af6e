// A provider that accepts a message only after the delivery's lease expired on its last attempt,
// through the public API with a real worker and scheduler: the rescuer makes the delivery dead,
// the late acceptance then makes it sent, and a dead-letter replay sends nothing again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import type { ChannelProvider, RenderedMessage } from '../channels/channel-provider.js';
import type { DeliveryOutcome } from '../domain/outcome.js';

/** An email provider whose answers wait until the test lets them go. */
class GatedProvider implements ChannelProvider {
  readonly name = 'mail';
  readonly channel = 'email' as const;
  readonly calls: RenderedMessage[] = [];
  private readonly gates: (() => void)[] = [];

  send(message: RenderedMessage): Promise<DeliveryOutcome> {
    this.calls.push(message);
    return new Promise((resolve) => {
      this.gates.push(() => resolve({ kind: 'sent', providerMessageId: `mail-${message.deliveryId}` }));
    });
  }

  /** Lets every waiting call answer `sent`. */
  accept(): void {
    for (const open of this.gates.splice(0)) open();
  }

  close(): Promise<void> {
    this.accept();
    return Promise.resolve();
  }
}

let db: TestDatabase;
let h: TestHerald;
const mail = new GatedProvider();

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    providers: [mail],
    env: { MAX_ATTEMPTS: '1', LEASE_SECONDS: '1', WEBHOOK_TIMEOUT_MS: '500' },
  });
});
after(async () => {
  mail.accept();
  await h.stop();
  await db.drop();
});

test('the last attempt outlives its lease and is made dead; the provider then accepts: sent, and replay moves nothing', async () => {
  assert.equal((await h.call('PUT', '/v1/users/late1', { email: 'late1@example.com' })).status, 200);
  const res = await h.call('POST', '/v1/notifications', {
    recipients: ['late1'],
    channels: ['email'],
    content: { default: { title: 'Your code', body: '123456' } },
  });
  assert.equal(res.status, 202);
  const email = async () => {
    const view = await h.call('GET', `/v1/notifications/${idPath(res.body.id)}`);
    return view.body.deliveries.find((d: { channel: string }) => d.channel === 'email');
  };
  await waitFor('the provider to be called', () => mail.calls.length === 1);
  const dead = await waitFor('the rescuer to make the delivery dead', async () => {
    const d = await email();
    return d?.state === 'dead' ? d : undefined;
  });
  assert.equal(dead.attempts, 1);

  mail.accept();
  const sent = await waitFor('the late acceptance to be recorded', async () => {
    const d = await email();
    return d?.state === 'sent' ? d : undefined;
  });
  const row = await db.pool.query<{ provider_message_id: string; provider: string }>(
    'SELECT provider_message_id, provider FROM deliveries WHERE id = $1',
    [sent.id],
  );
  assert.deepEqual(row.rows[0], { provider_message_id: `mail-${String(sent.id)}`, provider: 'mail' });
  const events = await db.pool.query<{ state: string; detail: string | null }>(
    'SELECT state, detail FROM delivery_events WHERE delivery_id = $1 ORDER BY created_at',
    [sent.id],
  );
  assert.deepEqual(
    events.rows.map((e) => e.state),
    ['pending', 'sending', 'dead', 'sent'],
  );
  assert.match(events.rows[3]?.detail ?? '', /^accepted late/);

  const replay = await h.call('POST', '/v1/dead-letters/replay', { ids: [sent.id] });
  assert.equal(replay.body.replayed, 0);
  const listed = await h.call('GET', '/v1/dead-letters');
  assert.equal(listed.body.dead_letters.length, 0);
  assert.equal(mail.calls.length, 1);
});
