// How an inbox item looks to apps: its current in-app content (a template's in_app variant in
// the user's locale, or the inline content: a PATCHed notification shows its latest version)
// and its read state. Shared by the inbox routes and the realtime stream.
import type { Pool } from '../db/pools.js';
import type { InboxRow } from '../db/stores/inbox-store.js';
import type { ChannelContent } from '../domain/notification.js';
import { contentFor } from '../domain/notification.js';
import { TemplateVersionCache } from '../templates/template-versions.js';
import { renderVariant, TemplateRenderError } from '../templates/template-renderer.js';

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
  /** When the item arrived in the inbox. */
  created_at: string;
  updated_at: string;
}

export class InboxPresenter {
  // Template versions never change: each is read once per process, not once per item.
  private readonly templates = new TemplateVersionCache();

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
    return withTemplates.map(({ row: r, template }) => ({
      id: r.id,
      category: r.category,
      version: r.version,
      ...this.inAppContent(r, template),
      data: r.data,
      read: r.read_at !== null,
      seen: r.seen_at !== null,
      archived: r.archived_at !== null,
      read_at: r.read_at?.toISOString() ?? null,
      seen_at: r.seen_at?.toISOString() ?? null,
      archived_at: r.archived_at?.toISOString() ?? null,
      created_at: r.arrived_at.toISOString(),
      updated_at: r.updated_at.toISOString(),
    }));
  }

  private inAppContent(r: InboxRow, template: { key: string; version: number } | null): ChannelContent {
    if (template === null) return contentFor(r.content, 'in_app');
    const version = this.templates.get(r.service_id, template.key, template.version);
    if (version === undefined) return {};
    try {
      return renderVariant(version, 'in_app', r.locale, r.params ?? {}).content;
    } catch (error) {
      // Checked at ingest; should a version still fail, show the item without text rather than fail the inbox.
      if (error instanceof TemplateRenderError) return {};
      throw error;
    }
  }
}
