// The api role: ingest (notifications), users and devices, the service's settings, dead letters,
// categories and preferences, templates, provider callbacks and unsubscribe links, on API_PORT.
import type { Config } from '../config/schema.js';
import { settingsChange } from '../db/settings-change.js';
import { buildServer } from '../http/build-server.js';
import { notificationRoutes, type NotificationRouteDeps } from '../api/notifications/notification-routes.js';
import { notificationChangeRoutes } from '../api/notifications/notification-change-routes.js';
import { IngestBatcher, ingestBatchSize } from '../api/notifications/ingest-batcher.js';
import { IngestQuota } from '../api/notifications/ingest-quota.js';
import { bulkUserRoutes, userRoutes } from '../api/users/user-routes.js';
import { deviceRoutes } from '../api/users/device-routes.js';
import { serviceRoutes } from '../api/service/service-routes.js';
import { deadLetterRoutes } from '../api/dead-letters/dead-letter-routes.js';
import { callbackRoutes } from '../api/callbacks/callback-routes.js';
import { categoryRoutes } from '../api/categories/category-routes.js';
import { directoryPreferenceRoutes } from '../api/users/directory-preference-routes.js';
import { templateRoutes } from '../api/templates/template-routes.js';
import { templateSheetRoutes } from '../api/templates/template-sheet-routes.js';
import { templateImportRoutes } from '../api/templates/template-import-routes.js';
import { templatePreviewRoutes } from '../api/templates/template-preview-routes.js';
import { unsubscribeRoutes } from '../api/unsubscribe/unsubscribe-routes.js';
import { SettingsCache, settingsCacheLifetime } from '../pipeline/settings-cache.js';
import type { Infrastructure } from './infrastructure.js';
import { operationsRoutes, serve, type StartedHttpRole } from './ops-server.js';

/** Ingest checks templates against half the render cap, so what it accepts renders in time on a busier machine. */
export function templateCheckMs(config: Config): number {
  return Math.max(1, Math.floor(config.RENDER_ITEM_LIMIT_MS / 2));
}

export async function startApiRole(infra: Infrastructure, config: Config): Promise<StartedHttpRole> {
  const { pool, now, providers, authenticate, notifier, metrics } = infra;
  // Templates' current versions, cached and dropped by the herald_settings NOTIFY of a save.
  const templateCache = new SettingsCache(infra.listener, {
    ...settingsCacheLifetime,
    maxEntries: 10_000,
    now: () => now().getTime(),
    random: infra.random,
  });
  const batcher = new IngestBatcher(pool, {
    maxBatch: ingestBatchSize,
    maxConcurrentCommits: config.INGEST_CONCURRENT_COMMITS,
  });
  // Registered before the server's close, so it runs after it: answered requests are committed.
  infra.onStop(() => batcher.drain());
  const templateRenderMs = templateCheckMs(config);
  const notificationDeps: NotificationRouteDeps = {
    pool,
    batcher,
    now,
    notifier,
    metrics,
    authenticate,
    availableChannels: providers.availableChannels(),
    contentProblems: (channel, content, data) => providers.contentProblems(channel, content, data),
    maxRecipients: config.MAX_RECIPIENTS_PER_REQUEST,
    templateRenderMs,
    resolveTemplate: (serviceId, key) => templateCache.currentTemplate(pool, serviceId, key),
    quota:
      config.INGEST_QUOTA_PER_MINUTE > 0
        ? new IngestQuota(config.INGEST_QUOTA_PER_MINUTE, () => now().getTime())
        : undefined,
  };
  const app = await buildServer(
    {
      role: 'api',
      ...infra.serverOptions,
      title: 'Herald API',
      serverUrl: config.PUBLIC_URL,
      description: 'Send notifications; manage users, devices and dead letters.',
    },
    [
      ...operationsRoutes(infra).onRolePorts,
      notificationRoutes(notificationDeps),
      notificationChangeRoutes(notificationDeps),
      userRoutes({ pool, authenticate, outbound: infra.outbound }),
      bulkUserRoutes({ pool, authenticate, outbound: infra.outbound }),
      deviceRoutes({ pool, authenticate }),
      serviceRoutes({ pool, authenticate, outbound: infra.outbound }),
      deadLetterRoutes({
        pool,
        authenticate,
        notifier,
        now,
        // A month leaves the service store a day after this: nothing becomes live in between.
        replayableDays: Math.max(1, config.SERVICE_RETENTION_DAYS - 1),
      }),
      callbackRoutes({ pool, providers, metrics, publicUrl: config.PUBLIC_URL }),
      categoryRoutes({ pool, authenticate }),
      directoryPreferenceRoutes({ pool, authenticate }),
      ...[templateRoutes, templatePreviewRoutes, templateSheetRoutes, templateImportRoutes].map((routes) =>
        routes({
          pool,
          authenticate,
          templateRenderMs,
          onSaved: (serviceId, keys) => {
            for (const key of keys) templateCache.invalidate(settingsChange.template(serviceId, key));
          },
        }),
      ),
      ...(infra.unsubscribeTokens === undefined
        ? []
        : [unsubscribeRoutes({ pool, tokens: infra.unsubscribeTokens })]),
    ],
  );
  return { url: await serve(infra, app, config.API_PORT), document: () => app.swagger() };
}
