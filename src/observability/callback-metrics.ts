// Status callbacks' metrics (docs/callbacks.md): attempts by result, messages given up on, and
// the backlog (read on each scrape, by scheduler processes only, like the delivery backlog).
import { Counter, Gauge, type Registry } from 'prom-client';

export interface CallbackMetrics {
  callbackAttempts: Counter<'result'>;
  callbacksDead: Counter;
  callbackBacklog: Gauge<'state'>;
}

export function callbackMetrics(
  registry: Registry,
  readBacklog: (() => Promise<{ pending: number; dead: number }>) | undefined,
): CallbackMetrics {
  return {
    callbackAttempts: new Counter({
      name: 'herald_callback_attempts_total',
      help: 'Status callback POSTs by result: sent (2xx), failed (any other answer, or none).',
      labelNames: ['result'],
      registers: [registry],
    }),
    callbacksDead: new Counter({
      name: 'herald_callbacks_dead_total',
      help: 'Status callback messages given up on (out of attempts or past the maximum age, or refused by the outbound policy).',
      registers: [registry],
    }),
    callbackBacklog: new Gauge({
      name: 'herald_callback_messages',
      help: 'Status callback messages waiting to be sent (state pending) or given up on (state dead).',
      labelNames: ['state'],
      registers: readBacklog === undefined ? [] : [registry],
      async collect() {
        const counts = await readBacklog?.().catch(() => undefined);
        if (counts === undefined) return;
        this.set({ state: 'pending' }, counts.pending);
        this.set({ state: 'dead' }, counts.dead);
      },
    }),
  };
}
