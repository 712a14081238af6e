// How an inbox item looks to apps: its current in-app content (a template's in_app variant in
// the user's locale, or the inline content: a PATCHed notification shows its latest version)
// and its read state. Shared by the inbox routes and the realtime stream. Each present() call
// (a page, one item, a realtime batch) renders within one render budget (budgeted-renderer.ts).
import type { Pool } from '../db/pools.js';
import type { InboxRow } from '../db/stores/inbox-store.js';
import type { ChannelContent } from '../domain/notification.js';
import { contentFor } from '../domain/notification.js';
import { TemplateVersionCache } from '../templates/template-versions.js';
import type { BudgetedRenderer, RenderBudget } from '../templates/budgeted-renderer.js';
import { Type } from 'typebox';
import { Answer, FreeForm, Nullable, Timestamp } from '../http/openapi-contract.js';

/** An inbox item as apps see it (InboxItem): the description of every answer carrying one. */
export const InboxItemSchema = Answer({
  id: Type.String({ description: 'The notification id.' }),
  category: Type.String(),
  version: Type.Integer({ description: 'The notification version shown (a PATCH makes a new one).' }),
  title: Type.Optional(Type.String()),
  body: Type.Optional(Type.String()),
  url: Type.Optional(Type.String()),
  status: Type.Optional(Type.String()),
  data: Nullable(FreeForm()),
  renderable: Type.Boolean({
    description: 'false: its template cannot be rendered now; title, body and url are then absent.',
  }),
  read: Type.Boolean(),
  seen: Type.Boolean(),
  archived: Type.Boolean(),
  read_at: Nullable(Timestamp()),
  seen_at: Nullable(Timestamp()),
  archived_at: Nullable(Timestamp()),
  created_at: Timestamp('When the item arrived in the inbox.'),
  updated_at: Timestamp(),
});

export interface InboxItem extends ChannelContent {
  id: string;
  category: string;
  version: number;
  data: Record<string, unknown> | null;
  read: boolean;
  seen: boolean;
  archived: boolean;
  read_at: string | null;
  seen_at: string | null;
  archived_at: string | null;
  /**
   * false: its template could not be rendered within Herald's limits or fails with its params;
   * title, body and url are then absent (docs/inbox.md).
   */
  renderable: boolean;
  /** When the item arrived in the inbox. */
  created_at: string;
  updated_at: string;
}

export class InboxPresenter {
  // Template versions never change: each is read once per process, not once per item.
  private readonly templates = new TemplateVersionCache();

  constructor(private readonly renderer: BudgetedRenderer) {}

  async present(pool: Pool, rows: readonly InboxRow[]): Promise<InboxItem[]> {
    const withTemplates = rows.map((r) => ({
      row: r,
      serviceId: r.service_id,
      template:
        r.template === null || r.template_version === null
          ? null
          : { key: r.template, version: r.template_version },
    }));
    await this.templates.prepare(pool, withTemplates);
    const budget = this.renderer.budget();
    // A realtime batch holds the same notification for many users: render each alike item once.
    const rendered = new Map<string, ChannelContent | undefined>();
    const items: InboxItem[] = [];
    for (const { row: r, template } of withTemplates) {
      const alike = template === null ? undefined : alikeKey(r, template);
      const content =
        alike !== undefined && rendered.has(alike)
          ? rendered.get(alike)
          : await this.inAppContent(r, template, budget);
      if (alike !== undefined) rendered.set(alike, content);
      items.push({
        id: r.id,
        category: r.category,
        version: r.version,
        ...(content ?? {}),
        data: r.data,
        renderable: content !== undefined,
        read: r.read_at !== null,
        seen: r.seen_at !== null,
        archived: r.archived_at !== null,
        read_at: r.read_at?.toISOString() ?? null,
        seen_at: r.seen_at?.toISOString() ?? null,
        archived_at: r.archived_at?.toISOString() ?? null,
        created_at: r.arrived_at.toISOString(),
        updated_at: r.updated_at.toISOString(),
      });
    }
    return items;
  }

  /** The item's in-app content, or undefined when its template cannot be rendered now. */
  private async inAppContent(
    r: InboxRow,
    template: { key: string; version: number } | null,
    budget: RenderBudget,
  ): Promise<ChannelContent | undefined> {
    if (template === null) return contentFor(r.content, 'in_app');
    const version = this.templates.get(r.service_id, template.key, template.version);
    if (version === undefined) return undefined;
    // Checked at ingest; should a version still fail or be too slow, show the item without
    // text rather than fail (or stall) the inbox.
    const result = await this.renderer.render(budget, {
      version,
      channel: 'in_app',
      locale: r.locale,
      params: r.params ?? {},
    });
    return result.ok ? result.variant.content : undefined;
  }
}

/** Items of one notification version that render alike: same template version, locale and params. */
function alikeKey(r: InboxRow, template: { key: string; version: number }): string {
  return [r.service_id, template.key, template.version, r.locale ?? '', JSON.stringify(r.params)].join(
    '\u0000',
  );
}
