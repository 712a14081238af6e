// Preference APIs: a service's category settings (critical, marketing, per-channel defaults,
// frequency caps; API key) and a user's preferences, no-marketing switch and quiet hours
// (userPreferenceRoutes: on the api role for services, on the query role for apps acting for
// users as well). The fan-out stage applies them (src/domain/preferences.ts).
import type { FastifyPluginAsync, onRequestAsyncHookHandler } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../db/pools.js';
import {
  CategoryCapsSchema,
  CategoryDefaultsSchema,
  getCategory,
  listCategories,
  putCategory,
  type ListedCategory,
} from '../db/stores/category-store.js';
import {
  getUserPreferences,
  replaceUserPreferences,
  type UserPreferences,
} from '../db/stores/preference-store.js';
import { channels } from '../domain/notification.js';
import { anyChannel, formatLocalTime, parseLocalTime, type QuietHours } from '../domain/preferences.js';
import { ProblemError, type ProblemDetail } from '../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../http/api-key-auth.js';

const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' });
const CategoryName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });
const LocalTime = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, 24-hour' });

const CategoryBody = Type.Object(
  {
    critical: Type.Optional(
      Type.Boolean({ description: 'Always delivered: preferences, quiet hours and caps do not apply.' }),
    ),
    marketing: Type.Optional(Type.Boolean({ description: 'Suppressed for users whose no_marketing is on.' })),
    defaults: Type.Optional(CategoryDefaultsSchema),
    caps: Type.Optional(CategoryCapsSchema),
  },
  { additionalProperties: false },
);

const PreferenceItem = Type.Object(
  {
    channel: Type.Union([Type.Literal(anyChannel), ...channels.map((c) => Type.Literal(c))]),
    category: Type.Union([Type.Literal('*'), CategoryName]),
    enabled: Type.Boolean(),
  },
  { additionalProperties: false },
);

const QuietHoursBody = Type.Object(
  { start: LocalTime, end: LocalTime },
  {
    additionalProperties: false,
    description: "Local times in the user's time_zone; start > end crosses midnight.",
  },
);

const PreferencesBody = Type.Object(
  {
    preferences: Type.Array(PreferenceItem, {
      maxItems: 500,
      description: 'Replaces every preference of the user.',
    }),
    no_marketing: Type.Optional(Type.Boolean()),
    quiet_hours: Type.Optional(Type.Union([QuietHoursBody, Type.Null()])),
  },
  { additionalProperties: false },
);

function presentCategory(
  category: string,
  s: { critical: boolean; marketing: boolean; defaults: object; caps: object; updatedAt: Date | null },
) {
  return {
    category,
    critical: s.critical,
    marketing: s.marketing,
    defaults: s.defaults,
    caps: s.caps,
    updated_at: s.updatedAt?.toISOString() ?? null,
  };
}

export function preferenceRoutes(deps: { pool: Pool; authenticate: Authenticate }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    // Category settings are the operator's: changing them takes an admin key.
    const adminGuard = requirePermission(deps.authenticate, ['admin']);

    app.put(
      '/v1/categories/:category',
      {
        onRequest: adminGuard,
        schema: {
          summary: "Set one of the calling service's categories (replaces its settings)",
          tags: ['preferences'],
          params: Type.Object({ category: CategoryName }),
          body: CategoryBody,
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const body = request.body;
        const settings = {
          critical: body.critical ?? false,
          marketing: body.marketing ?? false,
          defaults: body.defaults ?? {},
          caps: body.caps ?? {},
        };
        if (settings.critical && settings.marketing)
          throw new ProblemError('validation_failed', 'A category cannot be both critical and marketing.', [
            { field: 'body/marketing', message: 'must be false when critical is true' },
          ]);
        const updatedAt = await withTransaction(deps.pool, (client) =>
          putCategory(client, caller.serviceId, request.params.category, settings),
        );
        return presentCategory(request.params.category, { ...settings, updatedAt });
      },
    );

    app.get(
      '/v1/categories/:category',
      {
        onRequest: requirePermission(deps.authenticate, ['send', 'templates', 'admin']),
        schema: {
          summary: "One of the calling service's categories (the defaults when never set)",
          tags: ['preferences'],
          params: Type.Object({ category: CategoryName }),
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const found = await getCategory(deps.pool, caller.serviceId, request.params.category);
        return presentCategory(
          request.params.category,
          found ?? { critical: false, marketing: false, defaults: {}, caps: {}, updatedAt: null },
        );
      },
    );

    // The user's own preferences, behind this role's API-key guard, with the answers services know.
    // Preferences are written by the user directory (users:write), like contact targets.
    await app.register(
      userPreferenceRoutes({
        pool: deps.pool,
        guards: {
          read: requirePermission(deps.authenticate, ['users:read', 'users:write']),
          write: requirePermission(deps.authenticate, ['users:write']),
        },
        userFacing: false,
      }),
    );
  };
}

export interface UserPreferenceRouteDeps {
  pool: Pool;
  /** Who may read (GET) and change (PUT) the preferences of :userId (onRequest hooks). */
  guards: { read: onRequestAsyncHookHandler; write: onRequestAsyncHookHandler };
  /**
   * For apps acting for their users (default; the query role): answers also list the categories
   * a user can set, and PUT refuses opting out of a critical category (critical ones are always
   * delivered, src/domain/preferences.ts). False keeps the api role's answers as services know them.
   */
  userFacing?: boolean;
}

/** GET and PUT /v1/users/:userId/preferences: a user's preferences, no-marketing switch and quiet hours. */
export function userPreferenceRoutes(deps: UserPreferenceRouteDeps): FastifyPluginAsync {
  const userFacing = deps.userFacing ?? true;
  const present = (p: UserPreferences, categories: ListedCategory[] | undefined) =>
    categories === undefined ? presentPreferences(p) : { ...presentPreferences(p), categories };
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/v1/users/:userId/preferences',
      {
        onRequest: deps.guards.read,
        schema: {
          summary: "A user's preferences, no-marketing switch and quiet hours",
          tags: ['preferences'],
          params: Type.Object({ userId: UserId }),
        },
      },
      async (request) => {
        const found = await getUserPreferences(deps.pool, request.params.userId);
        if (found === undefined) throw new ProblemError('not_found', 'No user with this id.');
        return present(found, userFacing ? await listCategories(deps.pool) : undefined);
      },
    );

    app.put(
      '/v1/users/:userId/preferences',
      {
        onRequest: deps.guards.write,
        schema: {
          summary: "Replace a user's preferences; set no_marketing and quiet hours when given",
          tags: ['preferences'],
          params: Type.Object({ userId: UserId }),
          body: PreferencesBody,
        },
      },
      async (request) => {
        const { preferences, no_marketing: noMarketing, quiet_hours: quiet } = request.body;
        const errors: ProblemDetail[] = [];
        const seen = new Set<string>();
        preferences.forEach((p, i) => {
          const key = `${p.channel}/${p.category}`;
          if (seen.has(key))
            errors.push({ field: `body/preferences/${String(i)}`, message: `repeats ${key}` });
          seen.add(key);
        });
        let quietHours: QuietHours | null | undefined;
        if (quiet === null) quietHours = null;
        else if (quiet !== undefined) {
          const startMinutes = parseLocalTime(quiet.start);
          const endMinutes = parseLocalTime(quiet.end);
          if (startMinutes === undefined || endMinutes === undefined || startMinutes === endMinutes)
            errors.push({
              field: 'body/quiet_hours',
              message: 'start and end must be different HH:MM times',
            });
          else quietHours = { startMinutes, endMinutes };
        }
        const categories = userFacing ? await listCategories(deps.pool) : undefined;
        if (categories !== undefined) {
          // Preferences do not apply to a critical category: an opt-out would be stored and ignored.
          const critical = new Set(categories.filter((c) => c.critical).map((c) => c.category));
          preferences.forEach((p, i) => {
            if (!p.enabled && critical.has(p.category))
              errors.push({
                field: `body/preferences/${String(i)}`,
                message: `opts out of ${p.category}, a critical category, which is always delivered`,
              });
          });
        }
        const first = errors[0];
        if (first !== undefined)
          throw new ProblemError('validation_failed', `${first.field ?? 'body'} ${first.message}.`, errors);
        const found = await withTransaction(deps.pool, (client) =>
          replaceUserPreferences(client, request.params.userId, {
            preferences: preferences,
            ...(noMarketing === undefined ? {} : { noMarketing }),
            ...(quietHours === undefined ? {} : { quietHours }),
          }),
        );
        if (!found) throw new ProblemError('not_found', 'No user with this id.');
        const current = await getUserPreferences(deps.pool, request.params.userId);
        if (current === undefined) throw new ProblemError('not_found', 'No user with this id.');
        return present(current, categories);
      },
    );
  };
}

function presentPreferences(p: UserPreferences) {
  return {
    preferences: p.preferences.map((x) => ({ channel: x.channel, category: x.category, enabled: x.enabled })),
    no_marketing: p.noMarketing,
    quiet_hours:
      p.quietHours === null
        ? null
        : {
            start: formatLocalTime(p.quietHours.startMinutes),
            end: formatLocalTime(p.quietHours.endMinutes),
          },
    time_zone: p.timeZone,
  };
}
