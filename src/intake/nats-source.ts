// NATS JetStream intake: stream HERALD_INTAKE on subjects `herald.intake.<service>`, read by one
// durable pull consumer per service (explicit acks). Each fetch asks for at most the service's
// share of INTAKE_PREFETCH messages and the next fetch waits until the whole batch is settled,
// so a slow database slows consumption; the batch is processed concurrently, so the group
// commit takes it at once. A message is acked after its commit; a refused one is published to
// `herald.dead.<service>` (stream HERALD_INTAKE_DEAD) with its problem in headers, and acked
// once JetStream acknowledged that publish. While the database is unreachable the processor's
// heartbeat extends the message's ack deadline (`working()`).
//
// The client reconnects by itself (to any server of INTAKE_NATS_URL); a fetch that fails while
// it does is retried with a backoff, declaring the stream and consumer again if they are gone.
// What was fetched but not acked is redelivered after the ack wait and deduplicated by its key.
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { IntakeMessage } from './intake-processor.js';
import {
  countOf,
  problemHeaders,
  reconnectDelayMs,
  type IntakeSource,
  type SourceOptions,
  sleep,
  waitBrieflyFor,
} from './intake-source.js';

const nanos = (ms: number): number => ms * 1_000_000;

/** The names Herald uses on the server (docs/intake.md). */
export const natsNames = {
  /**
   * A stream per service: JetStream deduplicates Nats-Msg-Id across a whole stream, so in a
   * shared one a service could make JetStream drop another service's messages by reusing
   * their ids.
   */
  stream: (service: string) => `HERALD_INTAKE_${service}`,
  deadStream: 'HERALD_INTAKE_DEAD',
  intake: (service: string) => `herald.intake.${service}`,
  dead: (service: string) => `herald.dead.${service}`,
  consumer: (service: string) => `herald-intake-${service}`,
};

/**
 * The settings Herald creates a service's stream with when it does not exist (an existing
 * stream, e.g. one an operator created with three replicas, is used as it is). Work-queue
 * retention removes a message once it is acked. Publishes with the same Nats-Msg-Id within
 * the duplicate window are stored once; Herald's own idempotency (the key is kept for
 * IDEMPOTENCY_KEY_RETENTION_DAYS) covers a re-publish after it.
 */
export function natsStreamConfig(service: string) {
  return {
    name: natsNames.stream(service),
    subjects: [natsNames.intake(service)],
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    duplicate_window: nanos(2 * 60_000),
  };
}

export const natsDeadStreamConfig = {
  name: natsNames.deadStream,
  subjects: ['herald.dead.*'],
  storage: StorageType.File,
  duplicate_window: nanos(2 * 60_000),
};

/** How long a fetched message may stay unacked before it is handed out again. */
const ackWaitMs = 30_000;
/** A message handed out this often without an ack (it crashes the process) is no longer delivered. */
const maxDeliver = 50;
/** How long one fetch waits for messages before asking again. */
const fetchExpiresMs = 5_000;
/**
 * The server's heartbeat while a fetch waits: a fetch that misses two ends with an error. Well
 * under half the expiry, so an idle fetch is not given up just as the server ends it (a message
 * delivered to a fetch given up on waits for the ack wait before it is handed out again).
 */
const fetchHeartbeatMs = 1_000;

/** The consumer of one service's subject: durable, pull, explicit acks (nats-server 2.9 and later). */
export function natsConsumerConfig(service: string, maxAckPending: number) {
  return {
    durable_name: natsNames.consumer(service),
    filter_subject: natsNames.intake(service),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ackWaitMs),
    max_deliver: maxDeliver,
    max_ack_pending: maxAckPending,
  };
}

function header(headers: MsgHdrs | undefined, name: string): string | undefined {
  const value = headers?.get(name);
  if (value !== undefined && value !== '') return value;
  // Header names are case-insensitive for a caller used to HTTP.
  for (const [key, values] of headers ?? []) {
    if (key.toLowerCase() === name.toLowerCase() && values[0] !== undefined && values[0] !== '')
      return values[0];
  }
  return undefined;
}

export class NatsSource implements IntakeSource {
  readonly broker = 'nats' as const;
  private connection: NatsConnection | undefined;
  private readonly stopping = new AbortController();
  private connecting: Promise<void> = Promise.resolve();
  private readonly loops: Promise<void>[] = [];
  private readonly fetches = new Set<ConsumerMessages>();
  private readonly perService: number;

  constructor(
    private readonly servers: readonly string[],
    private readonly options: SourceOptions,
  ) {
    this.perService = Math.max(1, Math.floor(options.prefetch / options.services.length));
  }

  async start(): Promise<void> {
    const connected = this.connect();
    this.connecting = connected;
    await waitBrieflyFor(connected, this.options.logger, 'NATS');
  }

  private async connect(): Promise<void> {
    for (let attempt = 0; !this.stopping.signal.aborted; attempt += 1) {
      try {
        this.connection = await connect({
          servers: [...this.servers],
          name: 'herald-intake',
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          // A server cut off by the network is noticed within ~30 s, not after the default 4 min.
          pingInterval: 10_000,
          maxPingOut: 2,
        });
        break;
      } catch (error) {
        this.options.logger.warn({ err: error }, 'intake: cannot connect to NATS, retrying');
        await sleep(reconnectDelayMs(attempt), this.stopping.signal);
      }
    }
    const nc = this.connection;
    if (nc === undefined) return;
    void this.watch(nc);
    const js = jetstream(nc);
    for (const service of this.options.services) this.loops.push(this.consume(nc, js, service));
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect') {
        this.options.logger.warn({ status: status.type, server: status.server }, 'intake: NATS connection');
      }
    }
  }

  /** The fetch loop of one service: survives a server restart, a lost stream or consumer. */
  private async consume(nc: NatsConnection, js: JetStreamClient, service: string): Promise<void> {
    let keyPrefix: string | undefined;
    for (let attempt = 0; !this.stopped();) {
      try {
        keyPrefix ??= await this.declare(await jetstreamManager(nc), service);
        const consumer = await js.consumers.get(natsNames.stream(service), natsNames.consumer(service));
        while (!this.stopped()) {
          await this.fetchOnce(js, consumer, service, keyPrefix);
          attempt = 0;
        }
      } catch (error) {
        if (this.stopped()) break;
        this.options.logger.warn({ err: error, service }, 'intake: NATS fetch failed, retrying');
        // The stream or consumer may have been lost with a server's state: declare them again.
        keyPrefix = undefined;
        await sleep(reconnectDelayMs(attempt), this.stopping.signal);
        attempt += 1;
      }
    }
  }

  /** Fetches one batch, processes it at once, and returns when every message is settled. */
  private async fetchOnce(
    js: JetStreamClient,
    consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>>,
    service: string,
    keyPrefix: string,
  ): Promise<void> {
    const batch = await consumer.fetch({
      max_messages: this.perService,
      expires: fetchExpiresMs,
      idle_heartbeat: fetchHeartbeatMs,
    });
    this.fetches.add(batch);
    if (this.stopped()) batch.stop();
    const work: Promise<void>[] = [];
    try {
      for await (const msg of batch) work.push(this.handle(js, service, keyPrefix, msg));
    } finally {
      this.fetches.delete(batch);
      await Promise.allSettled(work);
    }
  }

  /**
   * Declares both streams (if missing) and the service's consumer. Returns the prefix of the
   * key a message without one is accepted under: the stream's name and creation time, so the
   * stream sequence that follows it never repeats, not even in a stream created again.
   */
  private async declare(jsm: JetStreamManager, service: string): Promise<string> {
    const info = await ensureStream(jsm, natsStreamConfig(service));
    await ensureStream(jsm, natsDeadStreamConfig);
    const config = natsConsumerConfig(service, this.perService);
    try {
      await jsm.consumers.info(natsNames.stream(service), config.durable_name);
      // Existing: bring the settings that may change (the prefetch) up to date.
      await jsm.consumers.update(natsNames.stream(service), config.durable_name, {
        ack_wait: config.ack_wait,
        max_deliver: config.max_deliver,
        max_ack_pending: config.max_ack_pending,
      });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await jsm.consumers.add(natsNames.stream(service), config);
    }
    return `${natsNames.stream(service)}:${String(Date.parse(info.created))}:`;
  }

  private async handle(js: JetStreamClient, service: string, keyPrefix: string, msg: JsMsg): Promise<void> {
    const message: IntakeMessage = {
      service,
      body: msg.data,
      idempotencyKey: header(msg.headers, 'Idempotency-Key'),
      brokerMessageId: header(msg.headers, 'Nats-Msg-Id') ?? `${keyPrefix}${String(msg.seq)}`,
      traceparent: header(msg.headers, 'traceparent'),
    };
    const outcome = await this.options.processor.process(message, this.stopping.signal, () => msg.working());
    try {
      if (outcome.kind === 'invalid') {
        const deadHeaders = natsHeaders();
        for (const [key, values] of msg.headers ?? []) {
          // Nats-* headers are the server's (a copied Nats-Msg-Id would dedup against the original's).
          if (key.toLowerCase().startsWith('nats-')) continue;
          for (const value of values) deadHeaders.append(key, value);
        }
        for (const [key, value] of Object.entries(problemHeaders(outcome.problem)))
          deadHeaders.set(key, value);
        deadHeaders.set('herald-intake-sequence', String(msg.seq));
        await js.publish(natsNames.dead(service), msg.data, {
          headers: deadHeaders,
          msgID: `${keyPrefix}${String(msg.seq)}`,
        });
      }
      // Stopping while the database is down: hand it to another intake process now.
      if (outcome.kind === 'retry') msg.nak();
      else msg.ack();
      this.options.count(service, countOf(outcome));
    } catch (error) {
      // Not settled: JetStream hands it out again after the ack wait, its key dedups it.
      this.options.logger.warn({ err: error, service }, 'intake: could not settle a NATS message');
    }
  }

  private stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const batch of this.fetches) batch.stop();
    // The fetch loops start once connected: wait for that, then for them to settle what they hold.
    await this.connecting;
    await Promise.allSettled(this.loops);
    await this.connection?.drain().catch(() => this.connection?.close());
  }
}

async function ensureStream(
  jsm: JetStreamManager,
  config: ReturnType<typeof natsStreamConfig> | typeof natsDeadStreamConfig,
): Promise<{ created: string }> {
  try {
    return await jsm.streams.info(config.name);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  try {
    return await jsm.streams.add(config);
  } catch (error) {
    // Another intake process created it meanwhile.
    return jsm.streams.info(config.name).catch(() => Promise.reject(error as Error));
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && /not found/i.test(error.message);
}
