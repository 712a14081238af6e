// NATS JetStream intake against the machine's nats-server: published requests become
// notifications and are delivered; the same Nats-Msg-Id twice is accepted once; every bad
// request is dead-lettered to herald.dead.<service> with the problem code HTTP answers the same
// body with, and does not block the messages behind it. The streams are shared by name with
// other runs: this run uses subjects and consumers of its own service only, and removes them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  badBodies,
  httpProblemCode,
  expectDelivered,
  titlesOf,
  uniqueService,
  validRequest,
} from '../helpers/intake-cases.js';
import { natsNames } from '../../src/intake/nats-source.js';

const natsUrl = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';
const service = uniqueService('nats');
const deadReader = `test-dead-${service}`;
let db: TestDatabase;
let h: TestHerald;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

before(async () => {
  db = await createTestDatabase();
  nc = await connect({ servers: natsUrl });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  h = await startTestHerald(db, {
    service,
    roles: ['api', 'worker', 'intake'],
    env: { INTAKE_SERVICES: service, INTAKE_NATS_URL: natsUrl, INTAKE_PREFETCH: '50' },
  });
  // Herald declared the streams as it started; read this service's dead letters.
  await waitFor('the consumer declared', () =>
    jsm.consumers.info(natsNames.stream(service), natsNames.consumer(service)).then(() => true),
  );
  await jsm.consumers.add(natsNames.deadStream, {
    durable_name: deadReader,
    filter_subject: natsNames.dead(service),
    ack_policy: AckPolicy.Explicit,
  });
});
after(async () => {
  await h.stop();
  // Only what this run created: the service's own stream, its part of the shared dead stream.
  await jsm.consumers.delete(natsNames.stream(service), natsNames.consumer(service)).catch(() => undefined);
  await jsm.consumers.delete(natsNames.deadStream, deadReader).catch(() => undefined);
  await jsm.streams.delete(natsNames.stream(service)).catch(() => undefined);
  await jsm.streams.purge(natsNames.deadStream, { filter: natsNames.dead(service) }).catch(() => undefined);
  await nc.close();
  await db.drop();
});

async function publish(body: string, options: { msgID?: string; headers?: Record<string, string> }) {
  const headers = natsHeaders();
  for (const [key, value] of Object.entries(options.headers ?? {})) headers.set(key, value);
  return js.publish(natsNames.intake(service), body, {
    headers,
    ...(options.msgID === undefined ? {} : { msgID: options.msgID }),
  });
}

async function readDead(count: number): Promise<Map<string, Record<string, string>>> {
  const dead = new Map<string, Record<string, string>>();
  const consumer = await js.consumers.get(natsNames.deadStream, deadReader);
  await waitFor(`${String(count)} dead letters`, async () => {
    const batch = await consumer.fetch({ max_messages: count, expires: 1000 });
    for await (const m of batch) {
      const fields: Record<string, string> = {};
      for (const [key, values] of m.headers ?? []) fields[key.toLowerCase()] = values[0] ?? '';
      dead.set(fields['x-case'] ?? `seq-${String(m.seq)}`, fields);
      m.ack();
      if (dead.size >= count) break;
    }
    return dead.size >= count;
  });
  return dead;
}

test('Herald declared the stream and a durable explicit-ack consumer filtered to the service', async () => {
  const info = await jsm.consumers.info(natsNames.stream(service), natsNames.consumer(service));
  assert.equal(info.config.filter_subject, natsNames.intake(service));
  assert.equal(info.config.ack_policy, AckPolicy.Explicit);
  assert.equal(info.config.max_ack_pending, 50);
  const stream = await jsm.streams.info(natsNames.stream(service));
  assert.deepEqual(stream.config.subjects, [natsNames.intake(service)]);
});

test('published requests are accepted once each and delivered; bad ones are dead-lettered with the HTTP problem code', async () => {
  const expected = new Map<string, string>();
  for (const bad of badBodies) expected.set(bad.name, await httpProblemCode(h, bad.body));
  for (let i = 0; i < 6; i += 1) {
    await publish(JSON.stringify(validRequest(`user-${String(i)}`, `good ${String(i)}`)), {
      msgID: `m-${String(i)}`,
    });
    const bad = badBodies[i];
    if (bad !== undefined)
      await publish(bad.body, { msgID: `bad-${String(i)}`, headers: { 'x-case': bad.name } });
  }
  // The same Nats-Msg-Id again: stored once by JetStream (within its duplicate window).
  const again = await publish(JSON.stringify(validRequest('user-0', 'good 0')), { msgID: 'm-0' });
  assert.equal(again.duplicate, true);
  // An explicit Idempotency-Key header wins over the message id: Herald dedups what JetStream did not.
  await publish(JSON.stringify(validRequest('user-9', 'keyed')), {
    msgID: 'k-1',
    headers: { 'Idempotency-Key': 'order-9' },
  });
  await publish(JSON.stringify(validRequest('user-9', 'keyed')), {
    msgID: 'k-2',
    headers: { 'idempotency-key': 'order-9' },
  });

  await expectDelivered(h, service, ['good 0', 'good 1', 'good 2', 'good 3', 'good 4', 'good 5', 'keyed']);

  const dead = await readDead(badBodies.length);
  for (const bad of badBodies) {
    const fields = dead.get(bad.name);
    assert.equal(
      fields?.['herald-problem-code'],
      expected.get(bad.name),
      `${bad.name}: same code as over HTTP`,
    );
    assert.match(fields?.['herald-problem-status'] ?? '', /^4\d\d$/);
    assert.ok((fields?.['herald-problem-detail'] ?? '') !== '');
  }
  // Acked messages leave the work queue: nothing of this service is left in the stream.
  await waitFor('the intake subject empty', async () => {
    const info = await jsm.streams.info(natsNames.stream(service), {
      subjects_filter: natsNames.intake(service),
    });
    return (info.state.subjects?.[natsNames.intake(service)] ?? 0) === 0;
  });
  const metrics = await (await fetch(`${h.herald.apiUrl ?? ''}/metrics`)).text();
  assert.match(
    metrics,
    new RegExp(
      `herald_intake_messages_total\\{broker="nats",service="${service}",outcome="dead_lettered"\\} ${String(badBodies.length)}`,
    ),
  );
  assert.match(
    metrics,
    new RegExp(`herald_intake_messages_total\\{broker="nats",service="${service}",outcome="replayed"\\} 1`),
  );
});

test('a message without a Nats-Msg-Id is keyed by its stream sequence, so a redelivery is accepted once', async () => {
  const ack = await publish(JSON.stringify(validRequest('user-s', 'by sequence')), {});
  await waitFor('the unkeyed message accepted', async () =>
    (await titlesOf(h, service)).includes('by sequence'),
  );
  const { rows } = await h.herald.pool.query<{ key: string }>(
    `SELECT k.key FROM idempotency_keys k JOIN services s ON s.id = k.service_id
      WHERE s.name = $1 AND k.key LIKE $2`,
    [service, `header:${natsNames.stream(service)}:%`],
  );
  assert.equal(rows.length, 1);
  assert.match(
    rows[0]?.key ?? '',
    new RegExp(`^header:${natsNames.stream(service)}:\\d+:${String(ack.seq)}$`),
  );
});
