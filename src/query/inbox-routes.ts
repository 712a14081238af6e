// Query role: reads for apps and services, from the read pool only (a replica when configured),
// so users can read while ingest is down. This first read lists a user's in-app inbox: every
// service's notifications to that user, since users are shared (docs/decisions/0002); user
// tokens, so apps can read on a user's behalf, arrive with the inbox work.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../db/pools.js';
import { requireCaller, type Authenticate } from '../http/api-key-auth.js';
import type { ChannelContent, NotificationContent } from '../domain/notification.js';
import { contentFor } from '../domain/notification.js';
import { TemplateVersionCache } from '../templates/template-versions.js';
import { renderVariant, TemplateRenderError } from '../templates/template-renderer.js';

export function inboxRoutes(deps: { readPool: Pool; authenticate: Authenticate }): FastifyPluginAsync {
  // Template versions never change: each is read once per process, not once per item.
  const templates = new TemplateVersionCache();
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/v1/users/:userId/inbox',
      {
        onRequest: requireCaller(deps.authenticate, ['sender', 'support']),
        schema: {
          summary: "A user's in-app notifications, newest first, showing each one's latest version",
          tags: ['inbox'],
          params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 128 }) }),
          querystring: Type.Object(
            { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const result = await deps.readPool.query<{
          id: string;
          created_at: Date;
          updated_at: Date;
          category: string;
          version: number;
          content: NotificationContent;
          data: Record<string, unknown> | null;
          read_at: Date | null;
          service_id: number;
          template: string | null;
          template_version: number | null;
          params: Record<string, unknown> | null;
          locale: string | null;
        }>(
          `SELECT n.id, n.created_at, n.updated_at, i.category, n.version, n.content, n.data, i.read_at,
                  n.service_id, n.template, n.template_version, n.params, u.locale
             FROM inbox_items i
             JOIN notifications n ON n.id = i.notification_id AND n.created_at = i.notification_created_at
             LEFT JOIN users u ON u.id = i.user_id
            WHERE i.user_id = $1 AND i.archived_at IS NULL
              AND i.notification_created_at > now() - interval '90 days'
            ORDER BY i.notification_created_at DESC, i.notification_id DESC
            LIMIT $2`,
          [request.params.userId, request.query.limit ?? 50],
        );
        const rows = result.rows.map((r) => ({
          ...r,
          serviceId: r.service_id,
          template:
            r.template === null || r.template_version === null
              ? null
              : { key: r.template, version: r.template_version },
        }));
        await templates.prepare(deps.readPool, rows);
        return {
          items: rows.map((r) => ({
            id: r.id,
            category: r.category,
            version: r.version,
            ...inAppContent(r, templates),
            data: r.data,
            read: r.read_at !== null,
            created_at: r.created_at.toISOString(),
            updated_at: r.updated_at.toISOString(),
          })),
        };
      },
    );
  };
}

/** What the inbox shows: a template's in_app variant in the user's locale, or the inline content. */
function inAppContent(
  r: {
    content: NotificationContent;
    serviceId: number;
    template: { key: string; version: number } | null;
    params: Record<string, unknown> | null;
    locale: string | null;
  },
  templates: TemplateVersionCache,
): ChannelContent {
  if (r.template === null) return contentFor(r.content, 'in_app');
  const version = templates.get(r.serviceId, r.template.key, r.template.version);
  if (version === undefined) return {};
  try {
    return renderVariant(version, 'in_app', r.locale, r.params ?? {}).content;
  } catch (error) {
    // Checked at ingest; should a version still fail, show the item without text rather than fail the inbox.
    if (error instanceof TemplateRenderError) return {};
    throw error;
  }
}
