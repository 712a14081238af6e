// NATS JetStream intake against a three-node cluster of its own, each node in its own network
// namespace on a bridge (root only; skipped where network namespaces cannot be created). A
// publisher sends requests continuously with Nats-Msg-Id, retrying each until JetStream acks
// it; meanwhile the stream leader is killed (kill -9) and restarted, then a node is cut off
// from the others (its link down) and joined again. Every acked message must become exactly
// one notification: none lost, none twice. Everything this test creates (namespaces, bridge,
// servers, store directories) is named per run and removed afterwards, also on failure.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { uniqueService, validRequest } from '../helpers/intake-cases.js';
import { natsNames, natsStreamConfig } from '../../src/intake/nats-source.js';

const natsServer = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';
const run = `${(process.pid % 1296).toString(36)}${Math.random().toString(36).slice(2, 5)}`;
const subnet = `10.${String(200 + Math.floor(Math.random() * 50))}.${String(Math.floor(Math.random() * 250))}`;
const bridge = `hnb${run}`;
const dir = join(tmpdir(), `herald-nats-cluster-${run}`);
const nodes = [1, 2, 3].map((i) => ({
  name: `n${String(i)}`,
  ns: `hnats-${run}-${String(i)}`,
  hostLink: `hn${run}h${String(i)}`,
  nsLink: `hn${run}n${String(i)}`,
  ip: `${subnet}.${String(i)}`,
  url: `nats://${subnet}.${String(i)}:4222`,
  process: undefined as ChildProcess | undefined,
}));
type ClusterNode = (typeof nodes)[number];
const service = uniqueService('natsc');

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function namespacesWork(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    ip('netns', 'add', `hnats-${run}-probe`);
    ip('netns', 'del', `hnats-${run}-probe`);
    return true;
  } catch {
    return false;
  }
}
const enabled = namespacesWork();

function startNode(node: ClusterNode): void {
  const routes = nodes.filter((n) => n !== node).map((n) => `nats://${n.ip}:6222`);
  const log = openSync(join(dir, `${node.name}.log`), 'a');
  // `ip netns exec` execs the server: the child's pid is the server's.
  node.process = spawn(
    'ip',
    [
      'netns',
      'exec',
      node.ns,
      natsServer,
      '-a',
      node.ip,
      '-p',
      '4222',
      '-n',
      node.name,
      '-js',
      '-sd',
      join(dir, node.name),
      '--cluster_name',
      `herald-${run}`,
      '--cluster',
      `nats://${node.ip}:6222`,
      '--routes',
      routes.join(','),
    ],
    { stdio: ['ignore', log, log] },
  );
}

function killNode(node: ClusterNode): void {
  if (node.process?.pid !== undefined && node.process.exitCode === null)
    process.kill(node.process.pid, 'SIGKILL');
}

function teardown(): void {
  for (const node of nodes) {
    try {
      killNode(node);
    } catch {
      // already gone
    }
    try {
      ip('netns', 'del', node.ns); // removes the veth pair with it
    } catch {
      // never created
    }
  }
  try {
    ip('link', 'del', bridge);
  } catch {
    // never created
  }
  rmSync(dir, { recursive: true, force: true });
}

let db: TestDatabase | undefined;
let h: TestHerald | undefined;
let nc: NatsConnection | undefined;

before(async () => {
  if (!enabled) return;
  process.once('exit', teardown);
  mkdirSync(dir, { recursive: true });
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', `${subnet}.254/24`, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  for (const node of nodes) {
    ip('netns', 'add', node.ns);
    ip('link', 'add', node.hostLink, 'type', 'veth', 'peer', 'name', node.nsLink);
    ip('link', 'set', node.nsLink, 'netns', node.ns);
    ip('link', 'set', node.hostLink, 'master', bridge);
    ip('link', 'set', node.hostLink, 'up');
    ip('netns', 'exec', node.ns, 'ip', 'addr', 'add', `${node.ip}/24`, 'dev', node.nsLink);
    ip('netns', 'exec', node.ns, 'ip', 'link', 'set', node.nsLink, 'up');
    ip('netns', 'exec', node.ns, 'ip', 'link', 'set', 'lo', 'up');
    startNode(node);
  }
  nc = await connect({
    servers: nodes.map((n) => n.url),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
    pingInterval: 1000,
    maxPingOut: 2,
  });
  const client = nc;
  // The operator's stream, three replicas; Herald uses it as it finds it. JetStream answers once
  // the cluster elected its meta leader.
  await waitFor(
    'the cluster to create an R3 stream',
    async () =>
      (await jetstreamManager(client)).streams.add({ ...natsStreamConfig(service), num_replicas: 3 }),
    30_000,
  );
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    service,
    roles: ['intake'],
    env: {
      INTAKE_SERVICES: service,
      INTAKE_NATS_URL: nodes.map((n) => n.url).join(','),
      INTAKE_PREFETCH: '100',
    },
  });
});

after(async () => {
  try {
    await Promise.race([h?.stop(), new Promise((r) => setTimeout(r, 10_000))]);
    await nc?.close();
    await db?.drop();
  } finally {
    teardown();
    process.removeListener('exit', teardown);
  }
});

async function streamLeader(jsm: JetStreamManager): Promise<ClusterNode> {
  const info = await jsm.streams.info(natsNames.stream(service));
  return nodes.find((n) => n.name === info.cluster?.leader) ?? nodes[0]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  'every acked message becomes one notification through node loss and a partition',
  { skip: !enabled && 'needs root and network namespaces' },
  async (t) => {
    assert.ok(nc !== undefined && h !== undefined);
    const js = jetstream(nc, { timeout: 2000 });
    const jsm = await jetstreamManager(nc);
    const acked = new Set<string>();
    let attempts = 0;
    const publishing = new AbortController();
    const publisher = (async () => {
      for (let i = 0; !publishing.signal.aborted; i += 1) {
        const id = `c-${String(i)}`;
        // A publisher that retries with the same key until JetStream acks (stored once).
        for (let tries = 0; tries < 50; tries += 1) {
          attempts += 1;
          try {
            await js.publish(natsNames.intake(service), JSON.stringify(validRequest('u', id)), { msgID: id });
            acked.add(id);
            break;
          } catch {
            await sleep(100);
          }
        }
        await sleep(15);
      }
    })();
    const events: string[] = [];
    const note = (what: string) => events.push(`${String(acked.size)} acked: ${what}`);
    await sleep(3000);
    const victim = await streamLeader(jsm);
    killNode(victim);
    note(`kill -9 ${victim.name} (stream leader)`);
    await sleep(5000);
    startNode(victim);
    note(`restart ${victim.name}`);
    await sleep(5000);
    const cut = await streamLeader(jsm).catch(() => nodes[1]!);
    ip('link', 'set', cut.hostLink, 'down');
    note(`partition ${cut.name} (link down)`);
    await sleep(6000);
    ip('link', 'set', cut.hostLink, 'up');
    note(`heal ${cut.name}`);
    await sleep(3000);
    publishing.abort();
    await publisher;
    note('publisher stopped');

    const pool = h.herald.pool;
    const count = async () => {
      const { rows } = await pool.query<{ title: string; n: string }>(
        `SELECT n.content->'default'->>'title' AS title, count(*) AS n
         FROM notifications n JOIN services s ON s.id = n.service_id WHERE s.name = $1 GROUP BY 1`,
        [service],
      );
      return new Map(rows.map((r) => [r.title, Number(r.n)]));
    };
    await waitFor(
      'every acked message accepted',
      async () => {
        const seen = await count();
        return [...acked].every((id) => seen.has(id));
      },
      // A message whose delivery the partition cut off would come again after the consumer's 30 s
      // ack wait, counted from a consumer leader that may itself have changed: allow two.
      120_000,
    ).catch(() => undefined);
    const seen = await count();
    const lost = [...acked].filter((id) => !seen.has(id));
    const duplicates = [...seen.values()].reduce((sum, n) => sum + n - 1, 0);
    const figures = `published (acked) ${String(acked.size)}, publish attempts ${String(attempts)}, accepted ${String(seen.size)}, lost ${String(lost.length)}, duplicates ${String(duplicates)}`;
    for (const event of events) t.diagnostic(event);
    t.diagnostic(figures);
    if (lost.length > 0) {
      // Whether JetStream still holds them (stored, not yet redelivered) or lost them.
      const failed = (e: unknown) => String(e);
      const stream = await jsm.streams
        .info(natsNames.stream(service))
        .then((s) => JSON.stringify({ ...s.state, cluster: s.cluster }), failed);
      const consumer = await jsm.consumers.info(natsNames.stream(service), natsNames.consumer(service)).then(
        (c) =>
          JSON.stringify({
            num_pending: c.num_pending,
            num_ack_pending: c.num_ack_pending,
            num_redelivered: c.num_redelivered,
            delivered: c.delivered,
            ack_floor: c.ack_floor,
            cluster: c.cluster,
          }),
        failed,
      );
      process.stdout.write(`nats cluster: lost ${lost.join(',')}; stream ${stream}; consumer ${consumer}\n`);
    }
    process.stdout.write(`nats cluster: ${events.join('; ')}\nnats cluster: ${figures}\n`);
    assert.deepEqual(lost, [], 'no acked message lost');
    assert.equal(duplicates, 0, 'no message accepted twice');
    assert.ok(acked.size > 100, 'the publisher got through the faults');
  },
);
