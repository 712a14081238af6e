// The intake role: consumes the configured brokers' intake queues and accepts each message as
// POST /v1/notifications would (docs/intake.md). `herald intake` runs it alone; `herald start`
// includes it when INTAKE_SERVICES is set.
import type { Config } from '../config/schema.js';
import { findServiceIds } from '../db/stores/api-key-store.js';
import { isConnectionError } from '../db/pg-errors.js';
import { IntakeProcessor } from '../intake/intake-processor.js';
import type { IntakeSource, SourceOptions } from '../intake/intake-source.js';
import { NatsSource } from '../intake/nats-source.js';
import { RabbitMqSource } from '../intake/rabbitmq-source.js';
import { SqsSource } from '../intake/sqs-source.js';
import type { Infrastructure } from './infrastructure.js';
import { openIngest } from './ingest-deps.js';

export async function startIntakeRole(infra: Infrastructure, config: Config): Promise<IntakeSource[]> {
  const names = (config.INTAKE_SERVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) {
    throw new Error('the intake role needs INTAKE_SERVICES and a broker (docs/intake.md)');
  }
  const services = await findServiceIds(infra.pool, names);
  const missing = names.filter((name) => !services.has(name));
  if (missing.length > 0) {
    throw new Error(
      `INTAKE_SERVICES names services that do not exist: ${missing.join(', ')} (create them: herald service create <name>)`,
    );
  }
  const ingest = openIngest(infra, config, { quota: false });
  const processor = new IntakeProcessor({
    accept: ingest.accept,
    services,
    maxBytes: config.BODY_LIMIT_BYTES,
    isUnavailable: isConnectionError,
    logger: infra.logger,
  });
  const sources: IntakeSource[] = [];
  const optionsFor = (broker: string): SourceOptions => ({
    services: names,
    prefetch: config.INTAKE_PREFETCH,
    processor,
    logger: infra.logger.child({ broker }),
    count: (service, outcome) => infra.metrics.intakeMessages.inc({ broker, service, outcome }),
  });
  if (config.INTAKE_RABBITMQ_URL !== undefined) {
    sources.push(new RabbitMqSource(config.INTAKE_RABBITMQ_URL, optionsFor('rabbitmq')));
  }
  if (config.INTAKE_SQS_ENDPOINT !== undefined) {
    sources.push(new SqsSource(config.INTAKE_SQS_ENDPOINT, config.INTAKE_SQS_REGION, optionsFor('sqs')));
  }
  if (config.INTAKE_NATS_URL !== undefined) {
    const servers = config.INTAKE_NATS_URL.split(',').map((s) => s.trim());
    sources.push(new NatsSource(servers, optionsFor('nats')));
  }
  for (const source of sources) {
    await source.start();
    infra.onStop(() => source.stop());
  }
  return sources;
}
