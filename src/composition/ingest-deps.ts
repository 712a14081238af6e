// What accepting a notification needs, for each role that accepts them (api over HTTP, intake
// from a broker): its own group commit, drained when the process stops, and the services'
// current templates and rate budget ids, cached and dropped by the herald_settings NOTIFY of a
// change.
import type { Config } from '../config/schema.js';
import { findTopic } from '../db/stores/topic-store.js';
import { settingsChange } from '../db/settings-change.js';
import type { AcceptDeps } from '../ingest/accept-notifications.js';
import { IngestBatcher, ingestBatchSize } from '../ingest/ingest-batcher.js';
import { IngestQuota } from '../ingest/ingest-quota.js';
import { SettingsCache, settingsCacheLifetime } from '../pipeline/settings-cache.js';
import type { Infrastructure } from './infrastructure.js';

/** Ingest checks templates against half the render cap, so what it accepts renders in time on a busier machine. */
export function templateCheckMs(config: Config): number {
  return Math.max(1, Math.floor(config.RENDER_ITEM_LIMIT_MS / 2));
}

export interface IngestDeps {
  accept: AcceptDeps;
  /** Drops a saved template from the cache (the api role's template routes call it). */
  forgetTemplates: (serviceId: number, keys: readonly string[]) => void;
  /** Drops a created or deleted budget from the cache (the api role's budget routes call it). */
  forgetBudget: (serviceId: number, name: string) => void;
}

/**
 * `quota`: whether INGEST_QUOTA_PER_MINUTE applies (over HTTP it does; a broker queue holds
 * what arrives faster than the commit pipeline takes it, so intake needs no quota).
 */
export function openIngest(infra: Infrastructure, config: Config, options: { quota: boolean }): IngestDeps {
  const { pool, now, providers } = infra;
  const cache = new SettingsCache(infra.listener, {
    ...settingsCacheLifetime,
    maxEntries: 10_000,
    now: () => now().getTime(),
    random: infra.random,
  });
  const batcher = new IngestBatcher(pool, {
    maxBatch: ingestBatchSize,
    maxConcurrentCommits: config.INGEST_CONCURRENT_COMMITS,
  });
  // Registered before the role's own stops, so it runs after them: what was answered or
  // acknowledged is committed.
  infra.onStop(() => batcher.drain());
  return {
    accept: {
      batcher,
      now,
      notifier: infra.notifier,
      metrics: infra.metrics,
      availableChannels: providers.availableChannels(),
      contentProblems: (channel, content, data) => providers.contentProblems(channel, content, data),
      maxRecipients: config.MAX_RECIPIENTS_PER_REQUEST,
      templateRenderMs: templateCheckMs(config),
      resolveTemplate: (serviceId, key) => cache.currentTemplate(pool, serviceId, key),
      // Read from the primary: a topic created a moment ago can be sent to at once.
      resolveTopic: (serviceId, key) => findTopic(pool, serviceId, key),
      // Every bulk send without a budget looks up the service's `default`: cached, not a statement each.
      resolveBudget: (serviceId, name, named) => cache.rateBudgetId(pool, serviceId, name, !named),
      quota:
        options.quota && config.INGEST_QUOTA_PER_MINUTE > 0
          ? new IngestQuota(config.INGEST_QUOTA_PER_MINUTE, () => now().getTime())
          : undefined,
    },
    forgetTemplates: (serviceId, keys) => {
      for (const key of keys) cache.invalidate(settingsChange.template(serviceId, key));
    },
    forgetBudget: (serviceId, name) => cache.invalidate(settingsChange.budget(serviceId, name)),
  };
}
