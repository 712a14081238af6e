// One-shot commands: migrate, create services and keys, revoke keys, run retention once, create
// console accounts, rebuild the engagement figures, change the lane settings.
import type { Config } from '../config/schema.js';
import { createPool, type Pool } from '../db/pools.js';
import { startEmbeddedPostgres } from '../db/embedded-postgres.js';
import { migrate } from '../db/migrate.js';
import { ensurePartitions } from '../db/partitions.js';
import { createApiKey, ensureService, grantPermissions, revokeApiKey } from '../db/stores/api-key-store.js';
import { parsePermissions, permissionAliases, permissions, type Permission } from '../domain/permissions.js';
import { serviceNamePattern } from '../domain/ids.js';
import type { Logger } from '../observability/logger.js';
import { archiveDatabaseUrl, openArchive } from '../archive/archive-store.js';
import { runLifecycle } from '../archive/lifecycle.js';
import { formatLifecycleReport } from '../archive/lifecycle-report.js';
import { lifecycleSettings } from './scheduler-role.js';
import { consoleUserCommand } from './console-user-command.js';
import { engagementCommand } from './engagement-command.js';
import { settingsCommand } from './settings-command.js';

/** `--roles a,b`: permissions and the aliases `sender` and `all`; without it, `sender`. */
function parseRoles(args: string[]): Permission[] | undefined {
  const index = args.indexOf('--roles');
  if (index === -1) return parsePermissions('sender');
  return parsePermissions(args[index + 1] ?? '');
}

const usage = `usage: herald service create <name> [--roles …] | herald key create <service> [--roles …]
       herald key grant <key> --roles … | herald key revoke <key>
--roles takes a comma-separated list of: ${[...permissions, ...Object.keys(permissionAliases)].join(', ')}
  (sender = send,notifications:read; all = every permission)`;

export async function runAdminCommand(
  command: 'migrate' | 'service' | 'key' | 'retention' | 'console-user' | 'engagement' | 'settings',
  args: string[],
  config: Config,
  logger: Logger,
): Promise<number> {
  const embedded =
    config.DATABASE_URL === undefined
      ? await startEmbeddedPostgres({
          dataDir: config.HERALD_DATA_DIR,
          port: config.EMBEDDED_PG_PORT,
          logger,
        })
      : undefined;
  const databaseUrl = config.DATABASE_URL ?? embedded?.url ?? '';
  const pool = createPool(databaseUrl, 2, logger, 'admin');
  try {
    const applied = await migrate(pool);
    await ensurePartitions(pool, new Date(), config.PARTITION_MONTHS_AHEAD);
    if (command === 'migrate') {
      process.stdout.write(applied.length === 0 ? 'schema is current\n' : `applied: ${applied.join(', ')}\n`);
      return 0;
    }
    if (command === 'retention') return await retentionCommand(args, config, databaseUrl, pool, logger);
    if (command === 'console-user') return await consoleUserCommand(args, pool);
    if (command === 'engagement') return await engagementCommand(args, pool);
    if (command === 'settings') return await settingsCommand(args, pool, config);
    const [verb, subject] = args;
    const roles = parseRoles(args);
    if (roles === undefined) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    if (command === 'service' && verb === 'create' && subject !== undefined) {
      if (!serviceNamePattern.test(subject)) {
        process.stderr.write(
          'a service name is lower case letters, digits, _ and -, starting with a letter (at most 63)\n',
        );
        return 2;
      }
      const key = await createApiKey(pool, await ensureService(pool, subject), roles);
      process.stdout.write(
        `service ${subject}: API key (shown once) ${key}\npermissions: ${roles.join(', ')}\n`,
      );
      return 0;
    }
    if (command === 'key' && verb === 'create' && subject !== undefined) {
      const found = await pool.query<{ id: number }>('SELECT id FROM services WHERE name = $1', [subject]);
      const serviceId = found.rows[0]?.id;
      if (serviceId === undefined) {
        process.stderr.write(`no service named ${subject}\n`);
        return 1;
      }
      process.stdout.write(`${await createApiKey(pool, serviceId, roles)}\n`);
      return 0;
    }
    if (command === 'key' && verb === 'grant' && subject !== undefined && args.includes('--roles')) {
      const granted = await grantPermissions(pool, subject, roles);
      process.stdout.write(granted ? `granted: ${roles.join(', ')}\n` : 'no such active key\n');
      return granted ? 0 : 1;
    }
    if (command === 'key' && verb === 'revoke' && subject !== undefined) {
      const revoked = await revokeApiKey(pool, subject);
      process.stdout.write(revoked ? 'revoked\n' : 'no such active key\n');
      return revoked ? 0 : 1;
    }
    process.stderr.write(`${usage}\n`);
    return 2;
  } finally {
    await pool.end();
    await embedded?.stop();
  }
}

/** `herald retention [--dry-run]`: one run of the lifecycle job, its report as plain lines. */
async function retentionCommand(
  args: string[],
  config: Config,
  databaseUrl: string,
  pool: Pool,
  logger: Logger,
): Promise<number> {
  const unknown = args.filter((a) => a !== '--dry-run');
  if (unknown.length > 0) {
    process.stderr.write('usage: herald retention [--dry-run]\n');
    return 2;
  }
  const archivePool = await openArchive({
    url: archiveDatabaseUrl(databaseUrl, config.ARCHIVE_DATABASE_URL),
    serviceUrl: databaseUrl,
    poolSize: 2,
    logger,
  });
  try {
    const report = await runLifecycle({
      pool,
      archivePool,
      now: () => new Date(),
      logger,
      settings: lifecycleSettings(config),
      dryRun: args.includes('--dry-run'),
    });
    process.stdout.write(`${formatLifecycleReport(report).join('\n')}\n`);
    return report.ran ? 0 : 75; // EX_TEMPFAIL: another process is running it; try later
  } finally {
    await archivePool.end();
  }
}
