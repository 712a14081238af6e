// Metrics of the delivery pipeline: fan-out, claims, provider calls through their guards,
// recorded outcomes, and the lease rescuer.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface PipelineMetrics {
  deliveryOutcomes: Counter<'channel' | 'outcome'>;
  claimBatchSize: Histogram<'stage'>;
  bulkSlots: Gauge;
  outcomesFenced: Counter<'channel' | 'outcome'>;
  deliveriesDeferred: Counter<'channel' | 'reason'>;
  deliveriesSuppressed: Counter<'channel' | 'reason'>;
  circuitsOpened: Counter<'provider'>;
  providerRateShare: Gauge<'provider'>;
  providerSharingWorkers: Gauge<'provider'>;
  providerCircuitsOpen: Gauge<'provider'>;
  deliveriesCreated: Counter<'channel'>;
  leasesRescued: Counter;
  providerSendSeconds: Histogram<'channel' | 'provider'>;
  providerFallbacks: Counter<'from' | 'to'>;
}

/**
 * The delivery pipeline: fan-out, claims, provider calls through their guards, recorded
 * outcomes, and the lease rescuer that hands lost leases back to it.
 */
export function pipelineMetrics(registry: Registry): PipelineMetrics {
  return {
    deliveryOutcomes: new Counter({
      name: 'herald_delivery_outcomes_total',
      help: 'Delivery attempts by channel and outcome (sent, retry, target_invalid, failed, dead, delivered).',
      labelNames: ['channel', 'outcome'],
      registers: [registry],
    }),
    bulkSlots: new Gauge({
      name: 'herald_worker_bulk_slots',
      help: "Bulk deliveries this worker may hold now: the bulk lane's cap, halved while the event loop's delay is over BULK_EVENT_LOOP_DELAY_TARGET_MS.",
      registers: [registry],
    }),
    claimBatchSize: new Histogram({
      name: 'herald_claim_batch_size',
      help: 'Rows claimed per claim statement, by stage (fan_out, delivery).',
      labelNames: ['stage'],
      buckets: [0, 1, 5, 10, 25, 50, 100, 200, 500, 1000, 2000],
      registers: [registry],
    }),
    outcomesFenced: new Counter({
      name: 'herald_outcomes_fenced_total',
      help: "Outcomes not recorded because the delivery's lease was lost during the provider call (rescued or claimed again): a possible duplicate send. A provider's acceptance is recorded late instead, unless the delivery was sent or ended since. Per channel and outcome.",
      labelNames: ['channel', 'outcome'],
      registers: [registry],
    }),
    deliveriesDeferred: new Counter({
      name: 'herald_deliveries_deferred_total',
      help: "Deliveries postponed without an attempt, per channel and reason: at send, because their provider circuit was open, its rate limit reached or its concurrency cap full, or the claimed batch had spent its render budget (render_budget); at fan-out, for the user's quiet hours (quiet_hours) or a frequency cap (cap).",
      labelNames: ['channel', 'reason'],
      registers: [registry],
    }),
    deliveriesSuppressed: new Counter({
      name: 'herald_deliveries_suppressed_total',
      help: "Deliveries not sent because of the user's preferences (preference), their no-marketing switch (marketing) or a frequency cap (cap), per channel and reason.",
      labelNames: ['channel', 'reason'],
      registers: [registry],
    }),
    circuitsOpened: new Counter({
      name: 'herald_circuits_opened_total',
      help: 'Times a provider circuit (for webhooks: one receiving origin) opened in this worker, per provider.',
      labelNames: ['provider'],
      registers: [registry],
    }),
    providerRateShare: new Gauge({
      name: 'herald_provider_rate_share_per_second',
      help: "This worker's share of its rate-limited providers' deployment-wide limits, per provider (for webhooks: summed over the receiving origins it calls). Summed over the workers: the deployment's allowed rate.",
      labelNames: ['provider'],
      registers: [registry],
    }),
    providerSharingWorkers: new Gauge({
      name: 'herald_provider_sharing_workers',
      help: "Worker processes sharing a rate-limited provider's limit as this worker last counted them (for webhooks: the most for any origin), per provider.",
      labelNames: ['provider'],
      registers: [registry],
    }),
    providerCircuitsOpen: new Gauge({
      name: 'herald_provider_circuits_open',
      help: 'Provider circuits (for webhooks: receiving origins) open deployment-wide as this worker last read them, per provider.',
      labelNames: ['provider'],
      registers: [registry],
    }),
    deliveriesCreated: new Counter({
      name: 'herald_deliveries_created_total',
      help: 'Deliveries created by the fan-out stage, per channel.',
      labelNames: ['channel'],
      registers: [registry],
    }),
    leasesRescued: new Counter({
      name: 'herald_leases_rescued_total',
      help: 'Deliveries whose lease expired or whose worker session ended (worker died or hung), made claimable again.',
      registers: [registry],
    }),
    providerSendSeconds: new Histogram({
      name: 'herald_provider_send_seconds',
      help: 'Duration of provider calls, per channel and provider.',
      labelNames: ['channel', 'provider'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    providerFallbacks: new Counter({
      name: 'herald_provider_fallbacks_total',
      help: 'Calls handed to a fallback provider after the previous one failed or was held back.',
      labelNames: ['from', 'to'],
      registers: [registry],
    }),
  };
}
