// `herald engagement rebuild [--from YYYY-MM-DD] [--to YYYY-MM-DD]`: recomputes the engagement
// figures of those UTC days (default: every day with rows) from delivery_events and
// engagement_events (docs/tracking.md).
import type { Pool } from '../db/pools.js';
import { rawDayRange, rebuildEngagementCounts } from '../db/stores/engagement-store.js';

export const engagementUsage = 'usage: herald engagement rebuild [--from YYYY-MM-DD] [--to YYYY-MM-DD]';

const dayPattern = /^\d{4}-\d{2}-\d{2}$/;

function flag(args: readonly string[], name: string): string | undefined | null {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const value = args[index + 1];
  return value !== undefined && dayPattern.test(value) && !Number.isNaN(Date.parse(value)) ? value : null;
}

export async function engagementCommand(args: readonly string[], pool: Pool): Promise<number> {
  const [verb, ...rest] = args;
  const from = flag(rest, '--from');
  const to = flag(rest, '--to');
  const known = rest.every(
    (a, i) => a === '--from' || a === '--to' || rest[i - 1] === '--from' || rest[i - 1] === '--to',
  );
  if (verb !== 'rebuild' || from === null || to === null || !known) {
    process.stderr.write(`${engagementUsage}\n`);
    return 2;
  }
  const span = await rawDayRange(pool);
  const range = { from: from ?? span?.from, to: to ?? span?.to };
  if (range.from === undefined || range.to === undefined) {
    process.stdout.write('no delivery or engagement events: nothing to rebuild\n');
    return 0;
  }
  if (range.from > range.to) {
    process.stderr.write('--from is after --to\n');
    return 2;
  }
  const rows = await rebuildEngagementCounts(pool, { from: range.from, to: range.to });
  process.stdout.write(
    `rebuilt the engagement figures of ${range.from} to ${range.to}: ${String(rows)} rows\n`,
  );
  return 0;
}
