// The dispatcher's template versions. Versions never change, so a version loaded once serves
// every delivery rendered with it: a claimed batch costs one query for the versions it has not
// seen yet, instead of each delivery carrying its template's variants from the database.
import type { Pool } from '../db/pools.js';
import { loadTemplateVersions, templateVersionKey } from '../db/stores/template-store.js';
import type { StoredTemplateVersion } from '../domain/template.js';

export class TemplateVersionCache {
  private readonly versions = new Map<string, StoredTemplateVersion>();

  constructor(private readonly maxEntries = 1000) {}

  /** Loads the versions these deliveries need that are not cached yet. */
  async prepare(
    pool: Pool,
    deliveries: readonly { serviceId: number; template?: { key: string; version: number } | null }[],
  ): Promise<void> {
    const missing = new Map<string, { serviceId: number; key: string; version: number }>();
    for (const d of deliveries) {
      if (d.template == null) continue;
      const key = templateVersionKey(d.serviceId, d.template.key, d.template.version);
      if (!this.versions.has(key)) missing.set(key, { serviceId: d.serviceId, ...d.template });
    }
    if (missing.size === 0) return;
    for (const [key, version] of await loadTemplateVersions(pool, [...missing.values()])) {
      if (this.versions.size >= this.maxEntries) {
        const oldest = this.versions.keys().next();
        if (oldest.done !== true) this.versions.delete(oldest.value);
      }
      this.versions.set(key, version);
    }
  }

  get(serviceId: number, key: string, version: number): StoredTemplateVersion | undefined {
    return this.versions.get(templateVersionKey(serviceId, key, version));
  }
}
