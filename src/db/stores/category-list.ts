// Every calling service's category settings, for the settings screens of apps acting for users:
// which categories exist, which are critical (preferences do not apply) or marketing, and their
// per-channel defaults. Reads only; the settings are written by preference-store.ts.
import { Value } from 'typebox/value';
import type { Pool, PoolClient } from '../pools.js';
import { CategoryDefaultsSchema, type CategoryDefaults } from './preference-store.js';

export interface ListedCategory {
  category: string;
  /** The calling service whose category it is (categories belong to services). */
  service: string;
  critical: boolean;
  marketing: boolean;
  defaults: CategoryDefaults;
}

/** Ordered by category, then service. */
export async function listCategories(db: Pool | PoolClient): Promise<ListedCategory[]> {
  const result = await db.query<{
    category: string;
    service: string;
    critical: boolean;
    marketing: boolean;
    defaults: unknown;
  }>(
    `SELECT c.category, s.name AS service, c.critical, c.marketing, c.defaults
       FROM categories c JOIN services s ON s.id = c.service_id
      ORDER BY c.category, s.name`,
  );
  return result.rows.map((r) => ({
    category: r.category,
    service: r.service,
    critical: r.critical,
    marketing: r.marketing,
    // Written through the API's schema; checked again because a JSON column is outside input.
    defaults: Value.Check(CategoryDefaultsSchema, r.defaults) ? r.defaults : {},
  }));
}
