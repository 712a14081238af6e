// The broker side of the intake fault scenarios, behind one small interface (RabbitMQ here,
// NATS JetStream in intake-broker-nats.ts, SQS in intake-broker-sqs.ts, the list of them in
// intake-brokers.ts): a publisher that counts a message only
// once the broker confirmed it (retrying with the same message id until it does), a reader of
// the dead-letter queue, and, for a broker the suite owns, a restart.
//
// RabbitMQ: the kill and PostgreSQL scenarios use the machine's RabbitMQ with queues of their
// own (deleted afterwards); the broker-restart scenario starts a private RabbitMQ node (own node
// name, ports, data and log directories, no plugins) so the machine's broker is never touched.
// Only processes started here are signalled, by pid.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { rabbitMqQueueArguments, rabbitMqQueues } from '../../src/intake/rabbitmq-source.js';
import { freePort } from '../helpers/free-port.js';

export interface DeadLetter {
  /** The message's id (the publisher's idempotency key). */
  key: string;
  /** herald-problem-code, or '' when the broker dead-lettered it without a problem. */
  code: string;
}

export interface IntakeBroker {
  readonly name: string;
  /**
   * How long a message fetched by a consumer that went away (killed, cut off) may stay
   * invisible before the broker hands it out again: the checker waits that much longer for the
   * last dead letters.
   */
  readonly redeliveryMs: number;
  /** The environment that points Herald's intake role at this broker for `service`. */
  heraldEnv(): Record<string, string>;
  /** Declares what Herald would (so nothing published before Herald is up is dropped). */
  prepare(): Promise<void>;
  /**
   * Publishes `body` with message id `key`; resolves once the broker confirmed it. Until then it
   * retries with the same id (reconnecting as needed); resolves `true` when an attempt before the
   * confirmed one failed (the broker may hold two copies).
   */
  publish(key: string, body: string, deadline: number): Promise<boolean>;
  /** Takes every message now in the dead-letter queue (acknowledged: they are read once). */
  readDead(): Promise<DeadLetter[]>;
  /** Messages ready in the intake queue (not handed out), for progress reports. */
  ready(): Promise<number>;
  /** Stops the broker for `downMs` and starts it again; only for a broker the suite owns. */
  restartBroker?(downMs: number): Promise<{ stopMs: number; startMs: number }>;
  /** Deletes the scenario's queues (or the private broker) and disconnects. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class RabbitMqIntakeBroker implements IntakeBroker {
  readonly name = 'rabbitmq';
  /** Unacknowledged messages are requeued as soon as the consumer's channel closes. */
  readonly redeliveryMs = 0;
  private model: ChannelModel | undefined;
  private channel: ConfirmChannel | undefined;
  private connecting: Promise<ConfirmChannel> | undefined;

  constructor(
    readonly url: string,
    readonly service: string,
    private readonly node?: PrivateRabbitMq,
  ) {}

  heraldEnv(): Record<string, string> {
    return { INTAKE_SERVICES: this.service, INTAKE_RABBITMQ_URL: this.url };
  }

  /** One confirm channel shared by every publish; replaced after the connection broke. */
  private open(): Promise<ConfirmChannel> {
    if (this.channel !== undefined) return Promise.resolve(this.channel);
    this.connecting ??= (async () => {
      try {
        const model = await connect(this.url);
        const channel = await model.createConfirmChannel();
        channel.setMaxListeners(0); // one 'close' listener per publish in flight
        const drop = () => {
          if (this.model === model) {
            this.model = undefined;
            this.channel = undefined;
          }
        };
        model.on('error', drop);
        model.on('close', drop);
        channel.on('error', drop);
        channel.on('close', drop);
        this.model = model;
        this.channel = channel;
        return channel;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  async prepare(): Promise<void> {
    const channel = await this.open();
    await channel.assertQueue(rabbitMqQueues.dead(this.service), {
      durable: true,
      arguments: { 'x-queue-type': 'quorum' },
    });
    await channel.assertQueue(rabbitMqQueues.intake(this.service), {
      durable: true,
      arguments: rabbitMqQueueArguments(this.service),
    });
  }

  async publish(key: string, body: string, deadline: number): Promise<boolean> {
    let failedBefore = false;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`message ${key} not confirmed before the deadline`);
      try {
        const channel = await this.open();
        await new Promise<void>((resolve, reject) => {
          // A channel that closes drops its callbacks: fail the attempt instead of hanging.
          const closed = () => reject(new Error('channel closed'));
          channel.once('close', closed);
          const timer = setTimeout(() => {
            channel.off('close', closed);
            reject(new Error('no confirm within 10 s'));
          }, 10_000);
          channel.sendToQueue(
            rabbitMqQueues.intake(this.service),
            Buffer.from(body),
            { persistent: true, messageId: key, contentType: 'application/json' },
            (error: unknown) => {
              clearTimeout(timer);
              channel.off('close', closed);
              if (error === null || error === undefined) resolve();
              else reject(new Error('nacked'));
            },
          );
        });
        return failedBefore;
      } catch {
        failedBefore = true;
        await sleep(200);
      }
    }
  }

  async readDead(): Promise<DeadLetter[]> {
    const channel = await this.open();
    const letters: DeadLetter[] = [];
    for (;;) {
      const message = await channel.get(rabbitMqQueues.dead(this.service), { noAck: false });
      if (message === false) return letters;
      const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
      const code = headers['herald-problem-code'];
      letters.push({
        key: String(message.properties.messageId ?? ''),
        code: typeof code === 'string' ? code : Buffer.isBuffer(code) ? code.toString() : '',
      });
      channel.ack(message);
    }
  }

  async ready(): Promise<number> {
    const channel = await this.open();
    return (await channel.checkQueue(rabbitMqQueues.intake(this.service))).messageCount;
  }

  async restartBroker(downMs: number): Promise<{ stopMs: number; startMs: number }> {
    if (this.node === undefined) throw new Error('restartBroker needs a private RabbitMQ node');
    const t0 = Date.now();
    await this.node.stop();
    const stopMs = Date.now() - t0;
    await sleep(downMs);
    const t1 = Date.now();
    await this.node.start();
    return { stopMs, startMs: Date.now() - t1 };
  }

  async close(): Promise<void> {
    try {
      if (this.node === undefined) {
        const channel = await this.open();
        await channel.deleteQueue(rabbitMqQueues.intake(this.service));
        await channel.deleteQueue(rabbitMqQueues.dead(this.service));
      }
    } finally {
      await this.model?.close().catch(() => undefined);
      await this.node?.destroy();
    }
  }
}

/**
 * A RabbitMQ node of the suite's own: node name herald-faults-<pid>@localhost, free ports for
 * AMQP and distribution, data, logs, config and an empty plugin list in a temporary directory.
 * Stopped by SIGTERM to its Erlang VM (by pid; SIGKILL after 20 s) and started again on the
 * same data directory, so its quorum queues come back with what they held.
 */
export class PrivateRabbitMq {
  readonly dir = mkdtempSync(join(tmpdir(), 'herald-faults-rmq-'));
  readonly nodeName = `herald-faults-${String(process.pid)}@localhost`;
  amqpPort = 0;
  private distPort = 0;
  private script: ChildProcess | undefined;
  private output = '';

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${String(this.amqpPort)}`;
  }

  /** Picks the node's ports and writes its configuration (so its URL is known before it runs). */
  async allocate(): Promise<void> {
    if (this.amqpPort === 0) {
      this.amqpPort = await freePort();
      this.distPort = await freePort();
      writeFileSync(join(this.dir, 'env.conf'), '');
      writeFileSync(join(this.dir, 'enabled_plugins'), '');
      writeFileSync(
        join(this.dir, 'rabbitmq.conf'),
        `listeners.tcp.1 = 127.0.0.1:${String(this.amqpPort)}\n`,
      );
    }
  }

  async start(timeoutMs = 120_000): Promise<void> {
    await this.allocate();
    this.output = '';
    // The script under /usr/lib (the one in /usr/sbin switches to the rabbitmq user).
    const script = spawn('/usr/lib/rabbitmq/bin/rabbitmq-server', [], {
      cwd: this.dir,
      env: {
        ...process.env,
        HOME: this.dir, // its own Erlang cookie
        RABBITMQ_CONF_ENV_FILE: join(this.dir, 'env.conf'),
        RABBITMQ_NODENAME: this.nodeName,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(this.amqpPort),
        RABBITMQ_DIST_PORT: String(this.distPort),
        RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
        RABBITMQ_LOG_BASE: join(this.dir, 'log'),
        RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
        RABBITMQ_PLUGINS_EXPAND_DIR: join(this.dir, 'plugins-expand'),
        ERL_EPMD_ADDRESS: '127.0.0.1',
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.script = script;
    script.stdout.on('data', (c: Buffer) => (this.output += c.toString()));
    script.stderr.on('data', (c: Buffer) => (this.output += c.toString()));
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes('completed with')) {
      if (script.exitCode !== null) throw new Error(`private RabbitMQ exited: ${this.output.slice(-2000)}`);
      if (Date.now() > deadline)
        throw new Error(`private RabbitMQ did not start: ${this.output.slice(-2000)}`);
      await sleep(200);
    }
  }

  /** The Erlang VM under the start script (the script does not exec it). */
  private vmPid(): number | undefined {
    const pid = this.script?.pid;
    if (pid === undefined || this.script?.exitCode !== null) return undefined;
    const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).trim();
    const vm = Number(out.split('\n')[0]);
    return vm > 0 ? vm : undefined;
  }

  async stop(): Promise<void> {
    const script = this.script;
    if (script === undefined || script.exitCode !== null || script.signalCode !== null) return;
    const exited = new Promise<void>((r) => script.once('exit', () => r()));
    const vm = this.vmPid();
    if (vm !== undefined) process.kill(vm, 'SIGTERM');
    else script.kill('SIGTERM');
    const forced = setTimeout(() => {
      if (vm !== undefined) {
        try {
          process.kill(vm, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      script.kill('SIGKILL');
    }, 20_000);
    await exited;
    clearTimeout(forced);
    // The VM may outlive the script by a moment.
    for (let i = 0; vm !== undefined && i < 100 && isAlive(vm); i++) await sleep(100);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
