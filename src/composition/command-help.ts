// What `herald <command> --help` prints, and `herald --version`. Printing help never reads
// the configuration or touches the database.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../db/package-root.js';
import { roleNames } from './roles.js';
import { settingsUsage } from './settings-command.js';

const settings = 'Settings come from the environment: docs/configuration.md lists them.';

const roleHelp: Record<string, string> = {
  api: 'the api role: accepts notifications and manages users, templates and keys (API_PORT, 3000; PORT is accepted too)',
  query: 'the query role: inbox reads, realtime streams and notification status (QUERY_PORT, 3001)',
  worker: 'the worker role: fans notifications out into deliveries and sends them through the providers',
  scheduler: 'the scheduler role: lease rescue, early receipts, overview upkeep, partitions and retention',
  console: 'the console role: the web console for people (CONSOLE_PORT, 3002)',
  intake:
    'the intake role: accepts notification requests published to RabbitMQ, NATS JetStream or SQS (INTAKE_SERVICES and a broker URL; docs/intake.md)',
};

const help: Record<string, string> = {
  start: `usage: herald start\n  Runs every role (${roleNames.join(', ')}) in one process (intake when INTAKE_SERVICES is set); without DATABASE_URL on an embedded PostgreSQL.\n  ${settings}`,
  migrate: `usage: herald migrate\n  Applies the database migrations (service store and archive) and exits.\n  ${settings}`,
  retention: `usage: herald retention [--dry-run]\n  Copies months past SERVICE_RETENTION_DAYS to the archive, verifies and drops them, and drops archive\n  months past ARCHIVE_RETENTION_MONTHS, once. --dry-run prints the plan and changes nothing.\n  ${settings}`,
  service: `usage: herald service create <name> [--roles …]\n  Creates a calling service and prints an API key for it once.\n  --roles: comma-separated permissions, sender (the default) or all.`,
  key: `usage: herald key create <service> [--roles …]\n       herald key grant <key> --roles …\n       herald key revoke <key>\n  Prints a new API key once, adds permissions to a key, or revokes one.`,
  engagement: `usage: herald engagement rebuild [--from YYYY-MM-DD] [--to YYYY-MM-DD]\n  Recomputes the engagement figures of those UTC days (default: every day with events) from the raw\n  delivery and engagement events; writers to those tables wait while it runs.\n  ${settings}`,
  settings: `${settingsUsage}\n  Running workers reload a change without a restart; unset goes back to the configured value.`,
  'console-user': `usage: herald console-user create <email> --role admin|operator|support|viewer [--name …]\n  Creates a console account and prints its password once.`,
};

/** The help of a command or role, or undefined for a name that is neither. */
export function commandHelp(command: string): string | undefined {
  const role = roleHelp[command];
  if (role !== undefined)
    return `usage: herald ${command} [other roles…]\n  Runs ${role}.\n  Several roles run together in one process: herald worker scheduler.\n  ${settings}`;
  return help[command];
}

/** This package's version, from its package.json. */
export function heraldVersion(): string {
  const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}
