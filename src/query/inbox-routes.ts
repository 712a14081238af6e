// Query role: a user's inbox, for apps acting for one user (a user token: every service's items)
// or services acting for any user (an API key with the inbox permission: only the service's own
// items, docs/security.md). Lists read from the read pool (a replica when
// configured), so users can read while ingest is down; changes go to the primary and append to
// the user's event stream, which the realtime stream (inbox-stream.ts) follows. docs/inbox.md.
import type { FastifyPluginAsync } from 'fastify';
import type { InboxRouteDeps } from './inbox-request.js';
import { userTokenRoutes } from './user-token-routes.js';
import { inboxListRoutes } from './inbox-list-routes.js';
import { inboxItemRoutes } from './inbox-item-routes.js';

export type { InboxRouteDeps } from './inbox-request.js';

export function inboxRoutes(deps: InboxRouteDeps): FastifyPluginAsync {
  return async (app) => {
    await app.register(userTokenRoutes(deps));
    await app.register(inboxListRoutes(deps));
    await app.register(inboxItemRoutes(deps));
  };
}
