// Lane settings changed at runtime (`herald settings`, docs/budgets.md): the reserved
// transactional share and the claim batch size, one row for the deployment. A column left null
// is the configured value. A change NOTIFYs herald_settings 'lanes' in its transaction, so
// running workers reload it when it commits (src/pipeline/lane-settings.ts).
import type { Pool, PoolClient } from '../pools.js';
import { notifySettingsChanged, settingsChange } from '../settings-change.js';

export interface LaneSettingsRow {
  reservedShare: number | null;
  batchSize: number | null;
}

export const laneSettingNames = {
  'transactional-reserved-share': 'transactional_reserved_share',
  'claim-batch-size': 'claim_batch_size',
} as const;
export type LaneSettingName = keyof typeof laneSettingNames;

export async function loadLaneSettings(pool: Pool | PoolClient): Promise<LaneSettingsRow> {
  const found = await pool.query<{
    transactional_reserved_share: number | null;
    claim_batch_size: number | null;
  }>('SELECT transactional_reserved_share, claim_batch_size FROM lane_settings');
  const row = found.rows[0];
  return {
    reservedShare: row?.transactional_reserved_share ?? null,
    batchSize: row?.claim_batch_size ?? null,
  };
}

/**
 * Sets one setting (null: back to the configured value) and tells running workers. The value
 * is checked by the table's constraints (a check_violation for one out of range).
 */
export async function setLaneSetting(
  client: PoolClient,
  name: LaneSettingName,
  value: number | null,
): Promise<void> {
  // The column comes from the fixed map above, never from input.
  const column = laneSettingNames[name];
  await client.query(
    `INSERT INTO lane_settings (id, ${column}) VALUES (true, $1)
     ON CONFLICT (id) DO UPDATE SET ${column} = EXCLUDED.${column}, updated_at = now()`,
    [value],
  );
  await notifySettingsChanged(client, [settingsChange.lanes]);
}
