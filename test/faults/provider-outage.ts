// A push provider goes down while webhooks flow: the APNs stand-in answers 503 for the first
// half of the outage and then stops answering (every call times out). Its circuit must open so
// the webhook channel keeps its throughput, and once APNs is back every push must arrive
// exactly once: none lost, none sent twice, none dead.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificate } from '../helpers/tls.js';
import { ApnsStandIn } from '../stand-ins/apns.js';
import { FaultHarness, sleep } from './harness.js';
import type { Scenario } from './scenarios.js';

const teamId = 'FAULTTEAM1';
const keyId = 'FAULTKEY01';
const bundleId = 'com.example.faults';
const pushUsers = 200;

export const providerOutage: Scenario = async ({ seed, smoke }) => {
  const h = new FaultHarness('provider-outage', seed);
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const apns = new ApnsStandIn({ teamId, keyId, publicKey: keys.publicKey, topics: [bundleId] });
  const dir = mkdtempSync(join(tmpdir(), 'herald-outage-'));
  const started = Date.now();
  try {
    await apns.start();
    writeFileSync(join(dir, 'ca.pem'), testCertificate().ca);
    writeFileSync(join(dir, 'apns.p8'), keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const provider = {
      type: 'apns',
      name: 'apns',
      url: apns.url,
      teamId,
      keyId,
      signingKey: { file: 'apns.p8' },
      caFile: 'ca.pem',
      timeoutMs: 1000,
    };
    writeFileSync(join(dir, 'herald.json'), JSON.stringify({ providers: [provider] }));
    await h.setup({
      HERALD_CONFIG_FILE: join(dir, 'herald.json'),
      PROVIDER_BREAKER_OPEN_MS: '3000',
      PROVIDER_BREAKER_MIN_CALLS: '10',
      PROVIDER_BREAKER_WINDOW_MS: '10000',
      // The default first retry delay (the suite's 100 ms spends a push's eight attempts in two
      // seconds, before the breaker has seen enough failures), capped at 30 s.
      RETRY_BASE_MS: '2000',
      RETRY_MAX_MS: '30000',
    });
    await h.db.query(`INSERT INTO users (id) SELECT 'p' || n FROM generate_series(0, $1 - 1) AS n`, [
      pushUsers,
    ]);
    await h.db.query(
      `INSERT INTO devices (id, user_id, platform, app_id, token)
       SELECT gen_random_uuid(), 'p' || n, 'ios', $2, encode(sha256(('t' || n)::bytea), 'hex')
         FROM generate_series(0, $1 - 1) AS n`,
      [pushUsers, bundleId],
    );
    await h.spawn(['api', 'scheduler']);
    await h.spawn(['worker']);

    const phaseMs = smoke ? { before: 5000, outage: 16_000 } : { before: 15_000, outage: 60_000 };
    const pushAcked = new Map<string, string>();
    let webhookRequests = 0;
    let pushRequests = 0;
    const progress = { sending: true };
    const post = async (key: string, body: unknown): Promise<string> => {
      for (;;) {
        try {
          const res = await fetch(`http://127.0.0.1:${String(h.apiPort)}/v1/notifications`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${h.apiKey}`,
              'idempotency-key': key,
            },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(10_000),
          });
          const answer = (await res.json()) as { id?: string; code?: string };
          if (res.status === 202 && answer.id !== undefined) return answer.id;
          if (res.status < 500)
            throw new Error(`request ${key} rejected: ${String(res.status)} ${answer.code ?? ''}`);
        } catch (error) {
          if (error instanceof Error && error.message.startsWith(`request ${key}`)) throw error;
        }
        await sleep(100);
      }
    };
    const loadStart = { at: Date.now(), n: 0 };
    // Offered load, steady through every phase: 100 webhook deliveries every 100 ms and a
    // push to 10 devices every 250 ms.
    const webhookLoad = (async () => {
      while (progress.sending) {
        const n = webhookRequests++;
        const key = `outage-${String(seed)}-w${String(n)}`;
        const body = {
          recipients: Array.from({ length: 100 }, (_, i) => `u${String(n)}-${String(i)}`),
          channels: ['webhook'],
          lane: 'bulk',
          content: { default: { title: `Outage test ${String(n)}` } },
        };
        h.acked.set(key, await post(key, body));
        await sleep(100);
      }
    })();
    const pushLoad = (async () => {
      while (progress.sending) {
        const n = pushRequests++;
        const key = `outage-${String(seed)}-p${String(n)}`;
        const body = {
          recipients: Array.from({ length: 10 }, (_, i) => `p${String((n * 10 + i) % pushUsers)}`),
          channels: ['push'],
          content: { default: { title: `Push ${String(n)}`, body: randomBytes(8).toString('hex') } },
        };
        pushAcked.set(key, await post(key, body));
        await sleep(250);
      }
    })();

    const delivered = () => h.receiver.accepted.length;
    await sleep(phaseMs.before);
    const atOutage = { at: Date.now(), n: delivered() };
    apns.outage = { kind: 'answer', status: 503, reason: 'ServiceUnavailable' };
    await sleep(phaseMs.outage / 2);
    apns.outage = { kind: 'hang' };
    await sleep(phaseMs.outage / 2);
    const atRecovery = { at: Date.now(), n: delivered() };
    apns.outage = undefined;
    progress.sending = false;
    await Promise.all([webhookLoad, pushLoad]);
    await h.quiesce(180_000);
    const rate = (from: { at: number; n: number }, to: { at: number; n: number }) =>
      (to.n - from.n) / ((to.at - from.at) / 1000);
    const beforeRate = rate(loadStart, atOutage);
    const outageRate = rate(atOutage, atRecovery);

    const figures = await h.check(
      webhookRequests,
      100,
      `APNs 503 for ${String(phaseMs.outage / 2000)} s then no answer for ${String(phaseMs.outage / 2000)} s; webhook ${beforeRate.toFixed(0)}/s before, ${outageRate.toFixed(0)}/s during`,
      'APNs circuit opened (10 s window, open 3 s, then a probe); pushes deferred without spending attempts',
      started,
    );

    // The pushes: each delivery of an accepted request sent, and accepted by APNs exactly once.
    const pushIds = [...pushAcked.values()];
    const pushRows = await h.db.query<{ id: string; state: string; deferred: number }>(
      `SELECT d.id, d.state,
              (SELECT count(*)::int FROM delivery_events e WHERE e.delivery_id = d.id AND e.detail LIKE 'deferred: circuit%') AS deferred
         FROM deliveries d WHERE d.notification_id = ANY($1::text[]) AND d.channel = 'push'`,
      [pushIds],
    );
    const ledger = new Map<string, number>();
    for (const p of apns.accepted) {
      const id = p.headers['apns-id'] ?? '';
      ledger.set(id, (ledger.get(id) ?? 0) + 1);
    }
    let pushLost = Math.max(0, pushIds.length * 10 - pushRows.rows.length);
    let pushDead = 0;
    let pushDuplicated = 0;
    for (const row of pushRows.rows) {
      const count = ledger.get(row.id) ?? 0;
      if (row.state === 'dead') pushDead += 1;
      else if (row.state !== 'sent' || count === 0) pushLost += 1;
      pushDuplicated += Math.max(0, count - 1);
    }
    // h.check counts every notification it did not send as a phantom: the pushes are accounted here.
    const pushStored = await h.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM notifications WHERE id = ANY($1::text[])',
      [pushIds],
    );
    const deferred = pushRows.rows.reduce((sum, r) => sum + r.deferred, 0);
    const extraFailures: string[] = [];
    if (pushDuplicated > 0) extraFailures.push(`${String(pushDuplicated)} pushes sent twice`);
    if (pushDead > 0) extraFailures.push(`${String(pushDead)} pushes dead`);
    if (deferred === 0) extraFailures.push('the APNs circuit never deferred a push');
    // The bulkhead and the breaker keep the other channel going; a generous bound, for noisy machines.
    if (outageRate < beforeRate * 0.5)
      extraFailures.push(
        `webhook throughput fell from ${beforeRate.toFixed(0)}/s to ${outageRate.toFixed(0)}/s`,
      );
    return {
      ...figures,
      requests: figures.requests + pushIds.length,
      accepted: figures.accepted + pushIds.length * 10,
      delivered: figures.delivered + ledger.size,
      lost: figures.lost + pushLost,
      duplicated: figures.duplicated + pushDuplicated,
      dead: figures.dead + pushDead,
      phantom: figures.phantom - (pushStored.rows[0]?.n ?? 0),
      extraFailures,
    };
  } finally {
    await h.teardown();
    await apns.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};
