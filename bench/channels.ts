// npm run bench:channels [-- --deliveries 10000 --workers 1]
// Deliveries per second from accept to the provider, through the APNs adapter (HTTP/2, one
// ES256 provider token) and the SMTP adapter (pooled connections) to their stand-ins, next to
// the webhook channel on the same pipeline and to each adapter called directly in a loop
// (no database: the adapter's own ceiling on this machine), all in the same run.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import {
  benchDatabase,
  benchLogger,
  fmt,
  machine,
  postAll,
  runBenchmark,
  startSystem,
  stopEmbedded,
  table,
  until,
  type BenchDatabase,
} from './bench-lib.js';
import { runPipeline, type PipelineRun } from './pipeline.js';
import { testCertificate } from '../test/helpers/tls.js';
import { ApnsStandIn } from '../test/stand-ins/apns.js';
import { SmtpStandIn } from '../test/stand-ins/smtp.js';
import { createApnsProvider } from '../src/channels/apns/apns-provider.js';
import { createSmtpProvider } from '../src/channels/email/smtp-provider.js';
import { createProviderContext } from '../src/channels/provider-settings.js';
import type { ChannelProvider, RenderedMessage } from '../src/channels/channel-provider.js';
import { loopbackAllowed } from '../test/helpers/loopback-allowed.js';

const teamId = 'BENCHTEAM1';
const keyId = 'BENCHKEY01';
const bundleId = 'com.example.bench';
const concurrency = 200;

interface Setup {
  dir: string;
  apns: ApnsStandIn;
  smtp: SmtpStandIn;
  settings: { apns: Record<string, unknown>; smtp: Record<string, unknown> };
}

async function setUp(): Promise<Setup> {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const apns = new ApnsStandIn({
    teamId,
    keyId,
    publicKey: keys.publicKey,
    topics: [bundleId],
    maxConcurrentStreams: 500,
  });
  const smtp = new SmtpStandIn({ keepMessages: false });
  await Promise.all([apns.start(), smtp.start()]);
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-'));
  writeFileSync(join(dir, 'ca.pem'), testCertificate().ca);
  writeFileSync(join(dir, 'apns.p8'), keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const settings = {
    apns: {
      type: 'apns',
      name: 'apns',
      url: apns.url,
      teamId,
      keyId,
      signingKey: { file: join(dir, 'apns.p8') },
      caFile: join(dir, 'ca.pem'),
      concurrency,
    },
    smtp: {
      type: 'smtp',
      name: 'mail',
      host: '127.0.0.1',
      port: smtp.port,
      from: 'Bench <bench@example.com>',
      concurrency: 10,
    },
  };
  writeFileSync(join(dir, 'herald.json'), JSON.stringify({ providers: [settings.apns, settings.smtp] }));
  return { dir, apns, smtp, settings };
}

/** Users with one iOS device and an email address each. */
async function seedUsers(db: BenchDatabase, count: number): Promise<void> {
  await db.pool.query('TRUNCATE users CASCADE');
  await db.pool.query(
    `INSERT INTO users (id, email) SELECT 'user-' || n, 'user' || n || '@example.com' FROM generate_series(0, $1 - 1) AS n`,
    [count],
  );
  await db.pool.query(
    `INSERT INTO devices (id, user_id, platform, app_id, token)
     SELECT gen_random_uuid(), 'user-' || n, 'ios', $2, encode(sha256(('t' || n)::bytea), 'hex')
       FROM generate_series(0, $1 - 1) AS n`,
    [count, bundleId],
  );
}

async function runChannel(
  db: BenchDatabase,
  setup: Setup,
  channel: 'push' | 'email',
  deliveries: number,
  workers: number,
): Promise<PipelineRun> {
  await db.pool.query(
    'TRUNCATE notifications, recipients, deliveries, inbox_items, delivery_events, idempotency_keys',
  );
  const system = await startSystem(db, 0, workers, {
    DATABASE_POOL_SIZE: '10',
    HERALD_CONFIG_FILE: join(setup.dir, 'herald.json'),
  });
  const arrived = () => (channel === 'push' ? setup.apns.accepted.length : setup.smtp.deliveries.size);
  const ledger = () => {
    if (channel === 'email') return [...setup.smtp.deliveries.values()];
    const ids = new Map<string, number>();
    for (const p of setup.apns.accepted)
      ids.set(p.headers['apns-id'] ?? '', (ids.get(p.headers['apns-id'] ?? '') ?? 0) + 1);
    return [...ids.values()];
  };
  const before = arrived();
  try {
    const perRequest = 100;
    const bodies = Array.from({ length: Math.ceil(deliveries / perRequest) }, (_, r) =>
      JSON.stringify({
        recipients: Array.from({ length: perRequest }, (_, i) => `user-${String(r * perRequest + i)}`),
        channels: [channel],
        lane: 'bulk',
        content: { default: { title: 'Your order shipped', body: 'Order 1234 is on its way.' } },
      }),
    );
    const total = bodies.length * perRequest;
    const started = Date.now();
    await postAll(system.apiUrl, db.apiKey, bodies, 8);
    await until(`${channel} deliveries to arrive`, () => arrived() - before >= total, 600_000);
    const seconds = (Date.now() - started) / 1000;
    return {
      label: `Herald ${channel === 'push' ? 'push via APNs (HTTP/2)' : 'email via SMTP (pool of 10)'}`,
      deliveries: total,
      seconds,
      duplicates: ledger().reduce((sum, n) => sum + n - 1, 0),
    };
  } finally {
    await system.stop();
  }
}

/** The adapter alone: `total` sends, `parallel` at a time, no database. */
async function runAdapter(
  provider: ChannelProvider,
  channel: 'push' | 'email',
  total: number,
  parallel: number,
  label: string,
): Promise<PipelineRun> {
  const signal = new AbortController().signal;
  let next = 0;
  let failed = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < total) {
        const n = next++;
        const message: RenderedMessage = {
          deliveryId: randomUUID(),
          notificationId: `bench#${randomUUID()}`,
          version: 1,
          channel,
          target: channel === 'push' ? 'device' : `direct${String(n)}@example.com`,
          userId: `user-${String(n)}`,
          lane: 'bulk',
          category: 'general',
          attempt: 1,
          content: { title: 'Your order shipped', body: 'Order 1234 is on its way.' },
          data: null,
          signingSecrets: [],
          device:
            channel === 'push'
              ? { id: 'device', platform: 'ios', appId: bundleId, token: n.toString(16).padStart(64, '0') }
              : null,
        };
        const outcome = await provider.send(message, signal);
        if (outcome.kind !== 'sent') failed += 1;
      }
    }),
  );
  if (failed > 0) throw new Error(`${label}: ${String(failed)} sends did not succeed`);
  return { label, deliveries: total, seconds: (Date.now() - started) / 1000, duplicates: 0 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { deliveries: { type: 'string', default: '10000' }, workers: { type: 'string', default: '1' } },
  });
  const deliveries = Number(values.deliveries);
  const workers = Number(values.workers);
  const setup = await setUp();
  const db = await benchDatabase('herald_bench_channels');
  const runs: PipelineRun[] = [];
  try {
    await seedUsers(db, deliveries);
    runs.push(await runChannel(db, setup, 'push', deliveries, workers));
    runs.push(await runChannel(db, setup, 'email', deliveries, workers));
    runs.push(
      await runPipeline({
        db,
        channel: 'webhook',
        receiverDelayMs: 0,
        deliveries,
        workers,
        label: 'baseline: Herald webhook (same pipeline)',
      }),
    );
    const context = (name: string) =>
      createProviderContext({
        providerName: name,
        configDir: setup.dir,
        env: {},
        publicUrl: undefined,
        defaultTimeoutMs: 5000,
        outbound: loopbackAllowed,
        logger: benchLogger,
      });
    const apns = createApnsProvider(setup.settings.apns as never, context('apns'));
    const smtp = createSmtpProvider(setup.settings.smtp as never, context('mail'));
    try {
      runs.push(
        await runAdapter(
          apns,
          'push',
          deliveries,
          concurrency,
          'baseline: APNs adapter alone, 200 in flight',
        ),
      );
      runs.push(
        await runAdapter(smtp, 'email', deliveries, 10, 'baseline: SMTP adapter alone, 10 in flight'),
      );
    } finally {
      await apns.close();
      await smtp.close();
    }
  } finally {
    await db.close();
    await stopEmbedded();
    await Promise.all([setup.apns.stop(), setup.smtp.stop()]);
    rmSync(setup.dir, { recursive: true, force: true });
  }
  const rate = (r: PipelineRun) => r.deliveries / r.seconds;
  process.stdout.write(
    table(
      `channel benchmark: ${fmt(deliveries)} deliveries per run in 100-recipient bulk requests, ${String(workers)} worker process(es) × WORKER_CONCURRENCY 200, stand-ins in the benchmark process; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      ['system', 'deliveries', 'seconds', 'deliveries/s', 'duplicates'],
      runs.map((r) => [r.label, fmt(r.deliveries), r.seconds.toFixed(1), fmt(rate(r)), String(r.duplicates)]),
    ),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) runBenchmark(main);
