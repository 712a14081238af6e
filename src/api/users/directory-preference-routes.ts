// The api role's copy of a user's preferences, behind the API-key guard, with the answers
// services know. Preferences are written by the user directory (users:write), like contact targets.
import type { FastifyPluginAsync } from 'fastify';
import type { Pool } from '../../db/pools.js';
import { requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { userPreferenceRoutes } from '../../preferences/user-preference-routes.js';

export function directoryPreferenceRoutes(deps: {
  pool: Pool;
  authenticate: Authenticate;
}): FastifyPluginAsync {
  return userPreferenceRoutes({
    pool: deps.pool,
    guards: {
      read: requirePermission(deps.authenticate, ['users:read', 'users:write']),
      write: requirePermission(deps.authenticate, ['users:write']),
    },
    userFacing: false,
  });
}
