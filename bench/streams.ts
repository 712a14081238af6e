// npm run bench:streams [-- --connections 5000 --streams-per-user 4 --baseline 10 --idle-seconds 20]
// The realtime inbox (GET /v1/users/:userId/inbox/stream, Server-Sent Events fed by NOTIFY
// herald_inbox) with many open streams: what they cost the query process in memory and in idle
// CPU, and how long one event for every connected user takes to reach each stream: through the
// API (a notification, from the 202 to the `created` event), and for the query process's part
// alone (events committed straight into the database with the worker's NOTIFY, from the
// commit). Three cases, each on a fresh `herald query` child process: a small baseline,
// `connections` users with one stream each, and `connections` streams shared
// `streams-per-user` to a user. The api and worker roles run as their own processes. Memory is
// read after a garbage collection forced through the child's inspector (loopback, random
// port), so the heap figures are live objects, not garbage waiting for a collection.
// Every process it starts, it stops; every stream it opens, it closes.
import { readFileSync } from 'node:fs';
import { Agent, get, type ClientRequest } from 'node:http';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { WebSocket } from 'undici';
import { withTransaction } from '../src/db/pools.js';
import { appendInboxEvents } from '../src/db/stores/inbox-store.js';
import { WakeNotifier } from '../src/db/wake-notifier.js';
import { UserTokens } from '../src/query/user-auth.js';
import {
  benchDatabase,
  cpuSeconds,
  benchLogger,
  fmt,
  machine,
  percentile,
  postAll,
  runBenchmark,
  startChild,
  startSystem,
  stopChild,
  stopEmbedded,
  table,
  until,
  type BenchDatabase,
  type Child,
} from './bench-lib.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    'streams-per-user': { type: 'string', default: '4' },
    baseline: { type: 'string', default: '10' },
    'idle-seconds': { type: 'string', default: '20' },
  },
});
const connections = Number(values.connections);
const streamsPerUser = Number(values['streams-per-user']);
const baseline = Number(values.baseline);
/** 20 s by default: one heartbeat interval (InboxStreams' 20 s) and six timed checks (3 s). */
const idleSeconds = Number(values['idle-seconds']);
/** The api role's default MAX_RECIPIENTS_PER_REQUEST. */
const recipientsPerRequest = 1000;
/** Streams being opened at once. */
const openConcurrency = 100;
const fanOutTimeoutMs = 120_000;
const userTokenSecret = 'bench-streams-user-token-secret-0123456789';

for (const [name, value] of [
  ['--connections', connections],
  ['--streams-per-user', streamsPerUser],
  ['--baseline', baseline],
  ['--idle-seconds', idleSeconds],
] as const)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);

// ---- the query process as seen from outside: memory, CPU, garbage collection ----

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  /** herald_inbox_streams_open, where the query process reports it. */
  streamsOpen: number | undefined;
}

/**
 * All of PostgreSQL's CPU so far, when it runs on this machine: the postmaster with the
 * backends that have exited, plus the live ones. Undefined when /proc does not show it.
 */
async function postgresCpuSeconds(db: BenchDatabase): Promise<number | undefined> {
  try {
    const backend = (await db.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    const stat = readFileSync(`/proc/${String(backend)}/stat`, 'utf8');
    const postmaster = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const children = readFileSync(`/proc/${String(postmaster)}/task/${String(postmaster)}/children`, 'utf8')
      .trim()
      .split(' ')
      .filter((p) => p !== '')
      .map(Number);
    let total = cpuSeconds(postmaster, true);
    for (const child of children) {
      try {
        total += cpuSeconds(child);
      } catch {
        // exited meanwhile: its time is in the postmaster's children's total from now on
      }
    }
    return total;
  } catch {
    return undefined;
  }
}

async function memoryOf(child: Child): Promise<Memory> {
  const pid = child.process.pid ?? 0;
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  const metrics = await (await fetch(`${child.url ?? ''}/metrics`)).text();
  const optional = (name: string) => {
    const value = new RegExp(`^${name} (\\S+)`, 'm').exec(metrics)?.[1];
    return value === undefined ? undefined : Number(value);
  };
  const metric = (name: string) => {
    const value = optional(name);
    if (value === undefined) throw new Error(`/metrics has no ${name}`);
    return value;
  };
  return {
    rss: rssKb * 1024,
    heapUsed: metric('nodejs_heap_size_used_bytes'),
    external: metric('nodejs_external_memory_bytes'),
    streamsOpen: optional('herald_inbox_streams_open'),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** One DevTools session to the query child, for HeapProfiler.collectGarbage. */
class InspectorSession {
  private nextId = 1;
  private readonly pending = new Map<number, () => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const { id } = JSON.parse(String(event.data)) as { id?: number };
      if (id !== undefined) this.pending.get(id)?.();
    });
  }

  static async connect(port: number): Promise<InspectorSession> {
    const targets = (await (await fetch(`http://127.0.0.1:${String(port)}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    const url = targets[0]?.webSocketDebuggerUrl;
    if (url === undefined) throw new Error('the query process has no inspector target');
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve, { once: true });
      socket.addEventListener('error', reject, { once: true });
    });
    return new InspectorSession(socket);
  }

  async collectGarbage(): Promise<void> {
    const id = this.nextId++;
    await new Promise<void>((resolve) => {
      this.pending.set(id, resolve);
      this.socket.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
    });
    this.pending.delete(id);
  }

  close(): void {
    this.socket.close();
  }
}

// ---- the clients: one socket per stream, a minimal SSE parser ----

interface OpenStream {
  readonly userId: string;
  request: ClientRequest;
  /** performance.now() at each event, by event name. */
  arrivals: Map<string, number[]>;
  lastSeq: number;
  /** Events whose id was not the one before + 1: a lost or repeated event. */
  gaps: number;
  pings: number;
  /** The server ended the stream before the bench closed it. */
  droppedByServer: boolean;
  closing: boolean;
}

/** Opens a stream and resolves at its `ready` event. */
function openStream(queryUrl: string, userId: string, token: string, agent: Agent): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const request = get(
      `${queryUrl}/v1/users/${encodeURIComponent(userId)}/inbox/stream`,
      { agent, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`stream for ${userId} answered ${String(res.statusCode)}`));
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (block.startsWith(':')) {
              stream.pings += 1;
              continue;
            }
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const id = Number(/^id: (\d+)$/m.exec(block)?.[1]);
            if (event === undefined) continue;
            if (event === 'ready') {
              stream.lastSeq = id;
              resolve(stream);
              continue;
            }
            if (id !== stream.lastSeq + 1) stream.gaps += 1;
            stream.lastSeq = id;
            const at = stream.arrivals.get(event);
            if (at === undefined) stream.arrivals.set(event, [performance.now()]);
            else at.push(performance.now());
          }
        });
        res.on('close', () => {
          if (!stream.closing) stream.droppedByServer = true;
        });
        res.on('error', () => undefined);
      },
    );
    const stream: OpenStream = {
      userId,
      request,
      arrivals: new Map(),
      lastSeq: 0,
      gaps: 0,
      pings: 0,
      droppedByServer: false,
      closing: false,
    };
    request.on('error', (error) => {
      if (!stream.closing) reject(error);
    });
  });
}

async function openAll(
  queryUrl: string,
  users: string[],
  perUser: number,
  tokens: Map<string, string>,
  agent: Agent,
): Promise<OpenStream[]> {
  const wanted = users.flatMap((u) => Array.from({ length: perUser }, () => u));
  const streams: OpenStream[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(openConcurrency, wanted.length) }, async () => {
      while (next < wanted.length) {
        const userId = wanted[next++] ?? '';
        streams.push(await openStream(queryUrl, userId, tokens.get(userId) ?? '', agent));
      }
    }),
  );
  return streams;
}

function closeAll(streams: OpenStream[]): void {
  for (const stream of streams) {
    stream.closing = true;
    stream.request.destroy();
  }
}

// ---- one case ----

interface FanOut {
  /** Requests to the API, or transactions straight into the database. */
  writes: number;
  /** ms from the write's 202 (or commit) to the event on each stream, sorted. */
  latencies: number[];
  /** ms from the first write's start to the last event. */
  allMs: number;
  lost: number;
  duplicated: number;
}

/**
 * Waits until every stream has had `round + 1` `event`s and measures each one's arrival
 * against the time its user's write was acknowledged.
 */
async function arrivalsOf(
  streams: OpenStream[],
  event: string,
  round: number,
  started: number,
  acknowledgedAt: Map<string, number>,
  writes: number,
): Promise<FanOut> {
  const seen = (s: OpenStream) => s.arrivals.get(event) ?? [];
  await until(
    `every stream to receive ${event} event ${String(round + 1)}`,
    () => streams.every((s) => seen(s).length > round || s.droppedByServer),
    fanOutTimeoutMs,
    20,
  ).catch(() => undefined);
  const latencies: number[] = [];
  let last = started;
  for (const stream of streams) {
    const at = seen(stream)[round];
    if (at === undefined) continue;
    latencies.push(at - (acknowledgedAt.get(stream.userId) ?? started));
    last = Math.max(last, at);
  }
  return {
    writes,
    latencies: latencies.sort((a, b) => a - b),
    allMs: last - started,
    lost: streams.filter((s) => seen(s).length <= round).length,
    duplicated: streams.filter((s) => seen(s).length > round + 1).length,
  };
}

/** One in_app notification to each of `users` through the API (requests of 1,000, sent at once). */
async function fanOutThroughApi(
  apiUrl: string,
  apiKey: string,
  users: string[],
  streams: OpenStream[],
  round: number,
): Promise<FanOut> {
  const acceptedAt = new Map<string, number>();
  const requests: string[][] = [];
  for (let i = 0; i < users.length; i += recipientsPerRequest)
    requests.push(users.slice(i, i + recipientsPerRequest));
  const started = performance.now();
  await Promise.all(
    requests.map(async (recipients) => {
      const body = JSON.stringify({
        recipients,
        channels: ['in_app'],
        content: { default: { title: `Round ${String(round)}`, body: 'Something happened.' } },
      });
      await postAll(apiUrl, apiKey, [body], 1);
      const at = performance.now();
      for (const user of recipients) acceptedAt.set(user, at);
    }),
  );
  return arrivalsOf(streams, 'created', round, started, acceptedAt, requests.length);
}

/**
 * The query process's part alone: one `seen_all` event per user appended in one transaction
 * (appendInboxEvents, as the worker's fan-out does for `created`), then the worker's NOTIFY
 * (WakeNotifier: the user ids, or '*' past 500 users).
 */
async function fanOutFromDatabase(
  db: BenchDatabase,
  users: string[],
  streams: OpenStream[],
  round: number,
): Promise<FanOut> {
  const started = performance.now();
  await withTransaction(db.pool, (client) =>
    appendInboxEvents(
      client,
      users.map((userId) => ({
        userId,
        kind: 'seen_all',
        notificationId: null,
        notificationCreatedAt: null,
      })),
    ),
  );
  const committedAt = performance.now();
  const notifier = new WakeNotifier(db.pool, benchLogger);
  notifier.notifyInbox(users);
  await notifier.close();
  const acknowledged = new Map(users.map((u) => [u, committedAt]));
  return arrivalsOf(streams, 'seen_all', round, started, acknowledged, 1);
}

interface Case {
  label: string;
  users: number;
  perUser: number;
}

interface CaseResult {
  case: Case;
  streams: number;
  openPerSecond: number;
  idle: Memory;
  open: Memory;
  afterFanOut: Memory;
  queryCpuPercent: number;
  postgresCpuPercent: number | undefined;
  pingsPerStream: number;
  throughApi: FanOut;
  fromDatabase: FanOut;
  gaps: number;
  dropped: number;
}

async function runCase(
  db: BenchDatabase,
  apiUrl: string,
  tokens: UserTokens,
  agent: Agent,
  spec: Case,
  index: number,
): Promise<CaseResult> {
  const users = Array.from({ length: spec.users }, (_, i) => `stream-${String(index)}-${String(i)}`);
  const warmUsers = Array.from({ length: 50 }, (_, i) => `stream-${String(index)}-warm-${String(i)}`);
  const byUser = new Map<string, string>();
  for (const user of [...users, ...warmUsers]) byUser.set(user, (await tokens.issue(user, db.keyId)).token);

  const inspectPort = await freePort();
  const query = await startChild(
    [`--inspect=127.0.0.1:${String(inspectPort)}`, '--inspect-publish-uid=http', 'src/main.ts', 'query'],
    {
      DATABASE_URL: db.url,
      QUERY_PORT: '0',
      CONSOLE_PORT: '0',
      USER_TOKEN_SECRET: userTokenSecret,
      STREAM_MAX_CONNECTIONS: String(spec.users * spec.perUser + 100),
    },
  );
  const queryUrl = query.url ?? '';
  const pid = query.process.pid ?? 0;
  let inspector: InspectorSession | undefined;
  let streams: OpenStream[] = [];
  try {
    inspector = await InspectorSession.connect(inspectPort);
    const settled = async () => {
      await new Promise((r) => setTimeout(r, 2000));
      await inspector?.collectGarbage();
      return memoryOf(query);
    };
    // Warm-up: code paths compiled and the read pool's connections opened before "idle".
    const warm = await openAll(queryUrl, warmUsers, 1, byUser, agent);
    closeAll(warm);
    const idle = await settled();

    const opening = performance.now();
    streams = await openAll(queryUrl, users, spec.perUser, byUser, agent);
    const openPerSecond = streams.length / ((performance.now() - opening) / 1000);
    const open = await settled();
    if (open.streamsOpen !== undefined && open.streamsOpen !== streams.length)
      throw new Error(
        `the query process counts ${fmt(open.streamsOpen)} open streams; the bench opened ${fmt(streams.length)}`,
      );

    const pings = () => streams.reduce((n, s) => n + s.pings, 0);
    const pingsBefore = pings();
    const queryCpu = cpuSeconds(pid);
    const postgresCpu = await postgresCpuSeconds(db);
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const queryCpuPercent = ((cpuSeconds(pid) - queryCpu) / idleSeconds) * 100;
    const postgresCpuAfter = await postgresCpuSeconds(db);
    const postgresCpuPercent =
      postgresCpu === undefined || postgresCpuAfter === undefined
        ? undefined
        : ((postgresCpuAfter - postgresCpu) / idleSeconds) * 100;
    const pingsPerStream = (pings() - pingsBefore) / streams.length;

    // Round 0 warms each path (and creates the users' event streams); round 1 is measured.
    await fanOutThroughApi(apiUrl, db.apiKey, users, streams, 0);
    const throughApi = await fanOutThroughApi(apiUrl, db.apiKey, users, streams, 1);
    await fanOutFromDatabase(db, users, streams, 0);
    const fromDatabase = await fanOutFromDatabase(db, users, streams, 1);
    const afterFanOut = await settled();
    return {
      case: spec,
      streams: streams.length,
      openPerSecond,
      idle,
      open,
      afterFanOut,
      queryCpuPercent,
      postgresCpuPercent,
      pingsPerStream,
      throughApi,
      fromDatabase,
      gaps: streams.reduce((n, s) => n + s.gaps, 0),
      dropped: streams.filter((s) => s.droppedByServer).length,
    };
  } finally {
    closeAll(streams);
    inspector?.close();
    await stopChild(query);
  }
}

/** The soft limit on open files, which both this process (clients) and the query child (sockets) inherit. */
function openFileLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  return soft === undefined || soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const perStream = (from: number, to: number, streams: number): string => fmt((to - from) / streams);
const ms = (value: number): string => (value < 10 ? value.toFixed(1) : fmt(value));

async function main(): Promise<void> {
  const limit = openFileLimit();
  if (connections + 200 > limit)
    throw new Error(
      `--connections ${fmt(connections)} needs about ${fmt(connections + 200)} open files; this shell allows ${fmt(limit)} (raise it with ulimit -n, up to the hard limit)`,
    );
  const cases: Case[] = [
    { label: `baseline: ${fmt(baseline)} users × 1`, users: baseline, perUser: 1 },
    { label: `${fmt(connections)} users × 1`, users: connections, perUser: 1 },
  ];
  if (streamsPerUser > 1)
    cases.push({
      label: `${fmt(Math.floor(connections / streamsPerUser))} users × ${String(streamsPerUser)}`,
      users: Math.floor(connections / streamsPerUser),
      perUser: streamsPerUser,
    });

  const db = await benchDatabase('herald_bench_streams');
  const tokens = new UserTokens({ secret: Buffer.from(userTokenSecret, 'utf8'), defaultTtlSeconds: 3600 });
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const results: CaseResult[] = [];
  try {
    const system = await startSystem(db, 0, 1, {});
    try {
      for (const [index, spec] of cases.entries()) {
        results.push(await runCase(db, system.apiUrl, tokens, agent, spec, index));
        process.stderr.write(`done: ${spec.label}\n`);
      }
    } finally {
      await system.stop();
    }
  } finally {
    agent.destroy();
    await db.close();
    await stopEmbedded();
  }

  process.stdout.write(
    table(
      `realtime streams: memory and idle cost of one herald query process (RSS from /proc, V8 heap from /metrics, both after a forced GC); idle CPU over ${String(idleSeconds)} s; ${machine()}; open-file limit ${fmt(limit)}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      [
        'streams',
        'opened/s',
        'RSS idle → open MiB',
        'RSS B/stream',
        'heap idle → open MiB',
        'heap B/stream',
        'external B/stream',
        'idle CPU query %',
        'idle CPU PostgreSQL %',
        'pings/stream',
      ],
      results.map((r) => [
        r.case.label,
        fmt(r.openPerSecond),
        `${mib(r.idle.rss)} → ${mib(r.open.rss)}`,
        perStream(r.idle.rss, r.open.rss, r.streams),
        `${mib(r.idle.heapUsed)} → ${mib(r.open.heapUsed)}`,
        perStream(r.idle.heapUsed, r.open.heapUsed, r.streams),
        perStream(r.idle.external, r.open.external, r.streams),
        r.queryCpuPercent.toFixed(1),
        r.postgresCpuPercent === undefined ? '—' : r.postgresCpuPercent.toFixed(1),
        r.pingsPerStream.toFixed(1),
      ]),
    ),
  );
  const paths = [
    ['API → worker → stream (created)', (r: CaseResult) => r.throughApi],
    ['commit + NOTIFY → stream (seen_all)', (r: CaseResult) => r.fromDatabase],
  ] as const;
  process.stdout.write(
    table(
      `realtime streams: one event to every connected user, second of two rounds. Through the API: one in_app notification per user in requests of ${fmt(recipientsPerRequest)} recipients sent at once (api+scheduler and one worker process), timed from each request's 202; straight from the database: the query process's part alone, timed from the commit`,
      [
        'streams',
        'path',
        'writes',
        'p50 ms',
        'p99 ms',
        'max ms',
        'all received ms',
        'lost',
        'duplicated',
        'id gaps',
        'dropped',
        'RSS after MiB',
      ],
      results.flatMap((r) =>
        paths.map(([path, of], i) => {
          const f = of(r);
          return [
            i === 0 ? r.case.label : '',
            path,
            String(f.writes),
            ms(percentile(f.latencies, 50)),
            ms(percentile(f.latencies, 99)),
            ms(f.latencies.at(-1) ?? Number.NaN),
            ms(f.allMs),
            String(f.lost),
            String(f.duplicated),
            i === 0 ? String(r.gaps) : '',
            i === 0 ? String(r.dropped) : '',
            i === 0 ? mib(r.afterFanOut.rss) : '',
          ];
        }),
      ),
    ),
  );
}

runBenchmark(main);
