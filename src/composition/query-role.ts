// The query role: users' inboxes (user tokens, list, counts, read state, realtime streams), the
// user's own preferences, the /inbox page and the support lookup, on QUERY_PORT. Reads go to the
// read pool (DATABASE_READ_URL when set); changes, LISTEN and revocation checks to the primary.
import type { Config } from '../config/schema.js';
import { ensureSigningKey } from '../db/stores/signing-key-store.js';
import { wakeChannels } from '../db/wake-notifier.js';
import { buildServer } from '../http/build-server.js';
import { userPreferenceRoutes } from '../preferences/user-preference-routes.js';
import { userTopicOptOutRoutes } from '../query/topic-opt-out-routes.js';
import { inboxRoutes } from '../query/inbox-routes.js';
import { InboxPresenter } from '../query/inbox-presenter.js';
import { InboxStreams } from '../query/inbox-stream.js';
import { requireInboxAccess, UserTokens } from '../query/user-auth.js';
import { CredentialRevocations } from '../query/credential-revocations.js';
import { supportRoutes } from '../query/support-routes.js';
import { inboxPageRoutes } from '../query/inbox-page-routes.js';
import { engagementRoutes, trackingLinkRoutes } from '../query/engagement-routes.js';
import type { Infrastructure } from './infrastructure.js';
import { operationsRoutes, serve, type StartedHttpRole } from './ops-server.js';

export async function startQueryRole(infra: Infrastructure, config: Config): Promise<StartedHttpRole> {
  const { pool, readPool, now, logger, metrics, listener, authenticate } = infra;
  const tokens = await userTokens(infra, config);
  const presenter = new InboxPresenter(infra.renderer);
  // Revocations are read from the primary: a replica's lag would extend a revoked token's life.
  const revocations = new CredentialRevocations({ pool, now: () => now().getTime() });
  listener.subscribe(wakeChannels.auth, (payload) => revocations.forget(payload));
  const streams = new InboxStreams({
    readPool,
    // NOTIFY is delivered by the primary only: the listener is on it even with a replica.
    listener,
    presenter,
    metrics,
    logger,
    revocations,
    pollMs: config.STREAM_POLL_MS,
    maxConnections: config.STREAM_MAX_CONNECTIONS,
    maxPerUser: config.STREAM_MAX_PER_USER,
    maxPerKey: config.STREAM_MAX_PER_KEY,
    // Often enough that an idle stream never meets HTTP_IDLE_TIMEOUT_MS.
    heartbeatMs: Math.min(20_000, Math.floor(config.HTTP_IDLE_TIMEOUT_MS / 3)),
  });
  const access = { tokens, authenticate, revocations };
  const app = await buildServer(
    {
      role: 'query',
      ...infra.serverOptions,
      corsOrigins: config.CORS_ORIGINS?.split(',').map((o) => o.trim()),
      title: 'Herald query API',
      description: 'Read notifications: inboxes, realtime streams and lookups.',
    },
    [
      ...operationsRoutes(infra).onRolePorts,
      inboxRoutes({
        readPool,
        pool,
        tokens,
        authenticate,
        revocations,
        notifier: infra.notifier,
        streams,
        presenter,
        cursorKey: await ensureSigningKey(pool, 'inbox-cursor'),
        tokenIssuesPerMinute: config.USER_TOKEN_ISSUE_PER_MINUTE,
        now,
      }),
      // The user's own preferences (a token for that user), or a key of the user directory.
      userPreferenceRoutes({
        pool,
        guards: {
          read: requireInboxAccess(access, ['users:read', 'users:write']),
          write: requireInboxAccess(access, ['users:write']),
        },
      }),
      // The user's opt-outs of topics (a token for that user), or a key for its own service's topics.
      userTopicOptOutRoutes({ pool, access }),
      supportRoutes({ readPool, archivePool: infra.archivePool, authenticate, now }),
      ...[engagementRoutes, trackingLinkRoutes].map((routes) =>
        routes({
          pool,
          access,
          links: infra.trackingLinks,
          prefetchWindowSeconds: config.TRACKING_PREFETCH_SECONDS,
          metrics,
          now,
        }),
      ),
      inboxPageRoutes(),
    ],
  );
  const url = await serve(infra, app, config.QUERY_PORT);
  // Runs before the server's close (stops run newest first): open streams would hold it open.
  infra.onStop(() => streams.stop());
  return { url, document: () => app.swagger() };
}

/** Herald's own user tokens, and an identity provider's when USER_JWKS_URL is set. */
async function userTokens(infra: Infrastructure, config: Config): Promise<UserTokens> {
  const external =
    config.USER_JWKS_URL !== undefined &&
    config.USER_JWT_ISSUER !== undefined &&
    config.USER_JWT_AUDIENCE !== undefined
      ? {
          jwksUrl: config.USER_JWKS_URL,
          issuer: config.USER_JWT_ISSUER,
          audience: config.USER_JWT_AUDIENCE,
          userClaim: config.USER_JWT_USER_CLAIM,
        }
      : undefined;
  return new UserTokens({
    secret:
      config.USER_TOKEN_SECRET !== undefined
        ? Buffer.from(config.USER_TOKEN_SECRET, 'utf8')
        : await ensureSigningKey(infra.pool, 'user-token'),
    defaultTtlSeconds: config.USER_TOKEN_TTL_SECONDS,
    now: infra.now,
    ...(external === undefined ? {} : { external }),
  });
}
