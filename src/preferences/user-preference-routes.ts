// A user's preferences, no-marketing switch and quiet hours. Served by both roles: on the api
// role for the user directory (API key), on the query role for apps acting for their users (user
// token). The fan-out stage applies them (src/domain/preferences.ts).
import type { FastifyPluginAsync, onRequestAsyncHookHandler } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../db/pools.js';
import {
  CategoryDefaultsSchema,
  CategoryNameSchema,
  listCategories,
  type ListedCategory,
} from '../db/stores/category-store.js';
import { Answer, answers, Nullable } from '../http/openapi-contract.js';
import {
  getUserPreferences,
  replaceUserPreferences,
  type UserPreferences,
} from '../db/stores/preference-store.js';
import { channels } from '../domain/notification.js';
import { anyChannel, formatLocalTime, parseLocalTime, type QuietHours } from '../domain/preferences.js';
import { ProblemError, type ProblemDetail } from '../domain/problems.js';

const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' });
export const CategoryName = CategoryNameSchema;
const LocalTime = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, 24-hour' });

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

const preferenceProperties = {
  preferences: Type.Array(PreferenceItem),
  no_marketing: Type.Boolean(),
  quiet_hours: Nullable(QuietHoursBody),
  time_zone: Type.String({ description: 'The IANA time zone quiet hours are read in.' }),
};

/** The api role's answer (the user directory's view). */
const PreferencesSchema = Answer(preferenceProperties);

/** The query role's answer: also the categories a user can set. */
const UserFacingPreferencesSchema = Answer({
  ...preferenceProperties,
  categories: Type.Array(
    Answer({
      category: Type.String(),
      service: Type.String({ description: 'The service whose category it is.' }),
      critical: Type.Boolean({ description: 'Always delivered: an opt-out is refused.' }),
      marketing: Type.Boolean(),
      defaults: CategoryDefaultsSchema,
    }),
  ),
});

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
  const response = answers({ 200: userFacing ? UserFacingPreferencesSchema : PreferencesSchema });
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/v1/users/:userId/preferences',
      {
        onRequest: deps.guards.read,
        schema: {
          summary: "A user's preferences, no-marketing switch and quiet hours",
          operationId: 'getUserPreferences',
          tags: ['preferences'],
          params: Type.Object({ userId: UserId }),
          response,
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
          operationId: 'setUserPreferences',
          tags: ['preferences'],
          params: Type.Object({ userId: UserId }),
          body: PreferencesBody,
          response,
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
