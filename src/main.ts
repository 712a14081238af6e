#!/usr/bin/env node
// `herald <command>`: start | api | query | worker | scheduler | console | intake | migrate | retention | service create <name> | key revoke <key> | console-user create <email> | engagement rebuild | settings.
// Loads config once, composes, runs, and stops cleanly on SIGINT/SIGTERM.
import { loadConfig, ConfigError } from './config/load-config.js';
import { createLogger } from './observability/logger.js';
import { startHerald, type Herald } from './composition/create-herald.js';
import { isRoleName, roleNames, type RoleName } from './composition/roles.js';
import { runAdminCommand } from './composition/admin-commands.js';
import { commandHelp, heraldVersion } from './composition/command-help.js';

const usage = `usage: herald <command>   (herald <command> --help explains one; herald --version)
  start                 run every role (${roleNames.join(', ')}) in one process (intake: when INTAKE_SERVICES is set)
  api | query | worker | scheduler | console | intake   run one role (several: herald worker scheduler)
  migrate               apply database migrations and exit
  retention [--dry-run] move months past retention to the archive and drop old partitions once (--dry-run: print the plan only)
  service create <name> [--roles …]   create a calling service and print an API key
  key create <service> [--roles …]   print a new API key for an existing service
  key grant <key> --roles …          add permissions to an API key
  key revoke <key>      revoke an API key (its streams close, the user tokens it issued stop working)
  console-user create <email> --role admin|operator|support|viewer [--name …]
                        create a console account and print its password once
  engagement rebuild [--from YYYY-MM-DD] [--to YYYY-MM-DD]
                        recompute the engagement figures from the raw events
  settings show | set <name> <value> | unset <name>
                        the lane settings running workers reload (transactional-reserved-share, claim-batch-size)
  --roles: a comma-separated list of permissions (send, notifications:read, users:read, users:write,
           templates, inbox, user_tokens, support, admin, budgets) or sender (= send,notifications:read,
           the default) or all`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(`${usage}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`herald ${heraldVersion()}\n`);
    return 0;
  }
  // `herald <command> --help` explains the command and does nothing else.
  if (rest.includes('--help') || rest.includes('-h')) {
    const help = commandHelp(command);
    process.stdout.write(`${help ?? usage}\n`);
    return help === undefined ? 2 : 0;
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 78; // EX_CONFIG
    }
    throw error;
  }
  const logger = createLogger(config.LOG_LEVEL);

  if (
    command === 'migrate' ||
    command === 'service' ||
    command === 'key' ||
    command === 'retention' ||
    command === 'console-user' ||
    command === 'engagement' ||
    command === 'settings'
  ) {
    return runAdminCommand(command, rest, config, logger);
  }
  let roles: RoleName[];
  if (command === 'start')
    roles = roleNames.filter((role) => role !== 'intake' || config.INTAKE_SERVICES !== undefined);
  else {
    const asked = [command, ...rest];
    const unknown = asked.filter((r) => !isRoleName(r));
    if (unknown.length > 0) {
      process.stderr.write(`unknown command or role: ${unknown.join(' ')}\n${usage}\n`);
      return 2;
    }
    roles = asked.filter(isRoleName);
  }

  const running: { herald?: Herald } = {};
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping !== undefined) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    logger.info({ signal }, 'stopping');
    const herald = running.herald;
    if (herald === undefined) {
      // Still starting: main() stops Herald as soon as start-up completes.
      stopping = Promise.resolve();
      return;
    }
    stopping = herald.stop().then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const herald = await startHerald({ config, roles, logger, env: process.env });
  running.herald = herald;
  // A signal during start-up waited for it; stop now that there is something to stop.
  if (stopping !== undefined) {
    await herald.stop();
    return 0;
  }
  const lines = ['', 'Herald is running.'];
  // With an api role, the ops port listens only when OPS_ENDPOINTS=ops-port: the docs are there.
  const docs = herald.opsUrl === undefined ? `${herald.apiUrl ?? ''}/docs` : `${herald.opsUrl}/api/docs`;
  if (herald.apiUrl !== undefined) lines.push(`  API:       ${herald.apiUrl}   (OpenAPI docs at ${docs})`);
  if (herald.queryUrl !== undefined) lines.push(`  Query API: ${herald.queryUrl}`);
  if (herald.consoleUrl !== undefined)
    lines.push(
      `  Console:   ${herald.consoleUrl}   (first admin: herald console-user create <email> --role admin)`,
    );
  if (herald.opsUrl !== undefined)
    lines.push(`  Ops:       ${herald.opsUrl}   (/healthz, /readyz, /metrics)`);
  if (herald.devApiKey !== undefined)
    lines.push(`  Development API key (service "dev"): ${herald.devApiKey}`);
  lines.push('  Stop with Ctrl-C.', '');
  process.stdout.write(`${lines.join('\n')}\n`);
  return -1; // keep running until a signal
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(
      `herald failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    if (error instanceof Error && error.cause instanceof Error)
      process.stderr.write(`  cause: ${error.cause.message}\n`);
    process.exit(1);
  },
);
