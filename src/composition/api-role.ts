// The api role: ingest (notifications), users and devices, the service's settings, dead letters,
// categories and preferences, templates, provider callbacks and unsubscribe links, on API_PORT.
import type { Config } from '../config/schema.js';
import { buildServer } from '../http/build-server.js';
import { notificationRoutes, type NotificationRouteDeps } from '../api/notifications/notification-routes.js';
import { notificationChangeRoutes } from '../api/notifications/notification-change-routes.js';
import { bulkUserRoutes, userRoutes } from '../api/users/user-routes.js';
import { deviceRoutes } from '../api/users/device-routes.js';
import { serviceRoutes } from '../api/service/service-routes.js';
import { deadLetterRoutes } from '../api/dead-letters/dead-letter-routes.js';
import { callbackRoutes } from '../api/callbacks/callback-routes.js';
import {
  subscriptionChangeRoutes,
  subscriptionRoutes,
} from '../api/callback-subscriptions/subscription-routes.js';
import { callbackDeadLetterRoutes } from '../api/callback-subscriptions/callback-dead-letter-routes.js';
import { categoryRoutes } from '../api/categories/category-routes.js';
import { rateBudgetRoutes } from '../api/rate-budgets/rate-budget-routes.js';
import { directoryPreferenceRoutes } from '../api/users/directory-preference-routes.js';
import { templateRoutes } from '../api/templates/template-routes.js';
import { templateSheetRoutes } from '../api/templates/template-sheet-routes.js';
import { templateImportRoutes } from '../api/templates/template-import-routes.js';
import { templatePreviewRoutes } from '../api/templates/template-preview-routes.js';
import { topicOptOutRoutes, topicRoutes, topicSubscriberRoutes } from '../api/topics/topic-routes.js';
import { scheduleRoutes, scheduleStateRoutes } from '../api/schedules/schedule-routes.js';
import { unsubscribeRoutes } from '../api/unsubscribe/unsubscribe-routes.js';
import { engagementRoutes } from '../api/engagement/engagement-routes.js';
import { openIngest } from './ingest-deps.js';
import type { Infrastructure } from './infrastructure.js';
import { operationsRoutes, serve, type StartedHttpRole } from './ops-server.js';

export async function startApiRole(infra: Infrastructure, config: Config): Promise<StartedHttpRole> {
  const { pool, now, providers, authenticate, notifier, metrics } = infra;
  const ingest = openIngest(infra, config, { quota: true });
  const templateRenderMs = ingest.accept.templateRenderMs;
  const notificationDeps: NotificationRouteDeps = { ...ingest.accept, pool, authenticate };
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
      ...[subscriptionRoutes, subscriptionChangeRoutes].map((routes) =>
        routes({
          pool,
          authenticate,
          outbound: infra.outbound,
          ...(infra.outboundLookup === undefined ? {} : { lookup: infra.outboundLookup }),
        }),
      ),
      callbackDeadLetterRoutes({ pool, authenticate, notifier }),
      categoryRoutes({ pool, authenticate }),
      rateBudgetRoutes({ pool, authenticate, onChanged: ingest.forgetBudget }),
      engagementRoutes({ pool, authenticate }),
      topicRoutes({ pool, authenticate }),
      topicSubscriberRoutes({ pool, authenticate }),
      topicOptOutRoutes({ pool, authenticate }),
      scheduleRoutes({ pool, authenticate, accept: notificationDeps }),
      scheduleStateRoutes({ pool, authenticate, accept: notificationDeps }),
      directoryPreferenceRoutes({ pool, authenticate }),
      ...[templateRoutes, templatePreviewRoutes, templateSheetRoutes, templateImportRoutes].map((routes) =>
        routes({
          pool,
          authenticate,
          templateRenderMs,
          onSaved: ingest.forgetTemplates,
        }),
      ),
      ...(infra.unsubscribeTokens === undefined
        ? []
        : [unsubscribeRoutes({ pool, tokens: infra.unsubscribeTokens })]),
    ],
  );
  return { url: await serve(infra, app, config.API_PORT), document: () => app.swagger() };
}
