// NATS JetStream behind the intake fault scenarios' IntakeBroker interface.
//
// The kill and PostgreSQL scenarios use the machine's nats-server with the run's own service
// (its stream HERALD_INTAKE_<service>, deleted afterwards, and its subject of the shared dead
// stream, purged afterwards); the broker-restart scenario starts a private nats-server (own free
// port, own JetStream store directory) and restarts it on the same port and store, so the
// machine's server is never touched. Only the private server's process is signalled, by pid.
//
// A message is published with Nats-Msg-Id = its key (JetStream stores a retried publish once
// within the duplicate window; Herald accepts it under that id) and the PubAck is awaited. Herald
// drops Nats-* headers from a dead letter but copies the others, so the key also travels in a
// header of the suite's own, `herald-faults-key`, to tell which message a dead letter was.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { natsDeadStreamConfig, natsNames, natsStreamConfig } from '../../src/intake/nats-source.js';
import { freePort } from '../helpers/free-port.js';
import type { DeadLetter, IntakeBroker } from './intake-broker.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const keyHeader = 'herald-faults-key';

export class NatsIntakeBroker implements IntakeBroker {
  readonly name = 'nats';
  /** The consumer's ack wait (nats-source.ts). */
  readonly redeliveryMs = 30_000;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private readonly deadReader: string;

  constructor(
    readonly url: string,
    readonly service: string,
    private readonly server?: PrivateNats,
  ) {
    this.deadReader = `faults-dead-${service}`;
  }

  heraldEnv(): Record<string, string> {
    return { INTAKE_SERVICES: this.service, INTAKE_NATS_URL: this.url };
  }

  /** One connection, reconnecting by itself (to a restarted server too). */
  private async open(): Promise<{ js: JetStreamClient; jsm: JetStreamManager }> {
    if (this.nc === undefined) {
      this.nc = await connect({
        servers: this.url,
        name: 'herald-faults-publisher',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
      this.js = jetstream(this.nc);
    }
    this.jsm ??= await jetstreamManager(this.nc);
    if (this.js === undefined) throw new Error('no JetStream client');
    return { js: this.js, jsm: this.jsm };
  }

  async prepare(): Promise<void> {
    // Retried: a private server that has just started may not have JetStream ready yet.
    for (let attempt = 0; ; attempt++) {
      try {
        const { jsm } = await this.open();
        for (const config of [natsStreamConfig(this.service), natsDeadStreamConfig]) {
          try {
            await jsm.streams.info(config.name);
          } catch {
            await jsm.streams.add(config).catch(() => jsm.streams.info(config.name));
          }
        }
        try {
          await jsm.consumers.info(natsNames.deadStream, this.deadReader);
        } catch {
          await jsm.consumers.add(natsNames.deadStream, {
            durable_name: this.deadReader,
            filter_subject: natsNames.dead(this.service),
            ack_policy: AckPolicy.Explicit,
          });
        }
        return;
      } catch (error) {
        if (attempt >= 50) throw error;
        await sleep(200);
      }
    }
  }

  async publish(key: string, body: string, deadline: number): Promise<boolean> {
    let failedBefore = false;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`message ${key} not acknowledged before the deadline`);
      try {
        const { js } = await this.open();
        const headers = natsHeaders();
        headers.set(keyHeader, key);
        await js.publish(natsNames.intake(this.service), body, { msgID: key, headers, timeout: 10_000 });
        return failedBefore;
      } catch {
        failedBefore = true;
        await sleep(200);
      }
    }
  }

  async readDead(): Promise<DeadLetter[]> {
    const { js } = await this.open();
    const consumer = await js.consumers.get(natsNames.deadStream, this.deadReader);
    const letters: DeadLetter[] = [];
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 500, expires: 1000 });
      let n = 0;
      for await (const m of batch) {
        n += 1;
        letters.push({
          key: m.headers?.get(keyHeader) ?? '',
          code: m.headers?.get('herald-problem-code') ?? '',
        });
        // Acknowledged and confirmed, so a letter is not read twice.
        await m.ackAck();
      }
      if (n === 0) return letters;
    }
  }

  async ready(): Promise<number> {
    const { jsm } = await this.open();
    try {
      return (await jsm.consumers.info(natsNames.stream(this.service), natsNames.consumer(this.service)))
        .num_pending;
    } catch {
      // Herald has not declared its consumer yet: everything in the stream is ready.
      return (await jsm.streams.info(natsNames.stream(this.service))).state.messages;
    }
  }

  async restartBroker(downMs: number): Promise<{ stopMs: number; startMs: number }> {
    if (this.server === undefined) throw new Error('restartBroker needs a private nats-server');
    const t0 = Date.now();
    await this.server.stop();
    const stopMs = Date.now() - t0;
    await sleep(downMs);
    const t1 = Date.now();
    await this.server.start();
    return { stopMs, startMs: Date.now() - t1 };
  }

  async close(): Promise<void> {
    try {
      if (this.server === undefined) {
        const { jsm } = await this.open();
        await jsm.consumers.delete(natsNames.deadStream, this.deadReader).catch(() => undefined);
        await jsm.streams.purge(natsNames.deadStream, { filter: natsNames.dead(this.service) });
        await jsm.streams.delete(natsNames.stream(this.service));
      }
    } finally {
      await this.nc?.close().catch(() => undefined);
      await this.server?.destroy();
    }
  }
}

/**
 * A nats-server of the suite's own: `-a 127.0.0.1 -p <free port> -js -sd <temporary dir>`,
 * stopped by SIGTERM to its pid (SIGKILL after 10 s) and started again on the same port and
 * store directory, so its streams come back with what they held.
 */
export class PrivateNats {
  readonly dir = mkdtempSync(join(tmpdir(), 'herald-faults-nats-'));
  port = 0;
  private child: ChildProcess | undefined;
  private output = '';

  get url(): string {
    return `nats://127.0.0.1:${String(this.port)}`;
  }

  async allocate(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
  }

  async start(timeoutMs = 30_000): Promise<void> {
    await this.allocate();
    this.output = '';
    const child = spawn(
      '/usr/sbin/nats-server',
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    child.stdout.on('data', (c: Buffer) => (this.output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (this.output += c.toString()));
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes('Server is ready')) {
      if (child.exitCode !== null) throw new Error(`private nats-server exited: ${this.output.slice(-2000)}`);
      if (Date.now() > deadline)
        throw new Error(`private nats-server did not start: ${this.output.slice(-2000)}`);
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const forced = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(forced);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
