// `herald console-user create <email> --role <role> [--name <name>]`: the first console account
// (and any later one from the shell). The password is generated and printed once; only its
// scrypt hash is stored. The creation is in the audit log, by `system`.
import type { Pool } from '../db/pools.js';
import { consoleRoles, isConsoleRole } from '../domain/console-roles.js';
import { isEmailAddress } from '../domain/contact.js';
import { createAccount } from '../console/console-accounts.js';

export const consoleUserUsage = `usage: herald console-user create <email> --role <${consoleRoles.join('|')}> [--name <name>]`;

function option(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index === -1 ? undefined : args[index + 1];
}

export async function consoleUserCommand(args: string[], pool: Pool): Promise<number> {
  const [verb, email] = args;
  const role = option(args, '--role');
  if (verb !== 'create' || email === undefined || role === undefined || !isConsoleRole(role)) {
    process.stderr.write(`${consoleUserUsage}\n`);
    return 2;
  }
  if (!isEmailAddress(email)) {
    process.stderr.write(`${email} is not an email address\n`);
    return 2;
  }
  const created = await createAccount(
    pool,
    { email, name: option(args, '--name') ?? '', role },
    { actorKind: 'system', actorId: 'cli', actorName: 'herald console-user create' },
  );
  if (created === undefined) {
    process.stderr.write(`a console account with the email ${email} exists\n`);
    return 1;
  }
  process.stdout.write(
    `console account ${created.user.email} (${created.user.role}) created; its password, shown this once:\n${created.password}\n`,
  );
  return 0;
}
