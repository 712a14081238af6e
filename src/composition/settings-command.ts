// `herald settings show | set <name> <value> | unset <name>`: the lane settings running
// workers reload without a restart (docs/budgets.md#lane-settings-at-runtime). `unset` goes
// back to the configured value.
import type { Config } from '../config/schema.js';
import { withTransaction, type Pool } from '../db/pools.js';
import { pgErrors, sqlState } from '../db/pg-errors.js';
import {
  laneSettingNames,
  loadLaneSettings,
  setLaneSetting,
  type LaneSettingName,
} from '../db/stores/lane-settings-store.js';

export const settingsUsage = `usage: herald settings show
       herald settings set <name> <value> | herald settings unset <name>
  names: transactional-reserved-share (0 to 0.9), claim-batch-size (1 to 5000)`;

const isSettingName = (name: string | undefined): name is LaneSettingName =>
  name !== undefined && Object.hasOwn(laneSettingNames, name);

export async function settingsCommand(args: readonly string[], pool: Pool, config: Config): Promise<number> {
  const [verb, name, value] = args;
  if (verb === 'show' && args.length === 1) {
    const row = await loadLaneSettings(pool);
    const show = (n: number | null, configured: number) =>
      n === null ? `${String(configured)} (configured)` : `${String(n)} (set)`;
    process.stdout.write(
      `transactional-reserved-share ${show(row.reservedShare, config.TRANSACTIONAL_RESERVED_SHARE)}\n` +
        `claim-batch-size ${show(row.batchSize, config.CLAIM_BATCH_SIZE)}\n`,
    );
    return 0;
  }
  const parsed = verb === 'set' && args.length === 3 ? Number(value) : null;
  const valid =
    isSettingName(name) &&
    ((verb === 'unset' && args.length === 2) ||
      (parsed !== null &&
        value?.trim() !== '' &&
        Number.isFinite(parsed) &&
        (name !== 'claim-batch-size' || Number.isInteger(parsed))));
  if (!valid) {
    process.stderr.write(`${settingsUsage}\n`);
    return 2;
  }
  try {
    await withTransaction(pool, (client) => setLaneSetting(client, name, parsed));
  } catch (error) {
    if (sqlState(error) === pgErrors.checkViolation) {
      process.stderr.write(`${name}: ${String(value)} is out of range\n${settingsUsage}\n`);
      return 2;
    }
    throw error;
  }
  process.stdout.write(`${name} ${parsed === null ? 'unset' : String(parsed)}; running workers reload it\n`);
  return 0;
}
