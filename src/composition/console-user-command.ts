// `herald console-user create <email> --role <role> [--name <name>]`: the first console account
// (and any later one from the shell). The password is generated and printed once; only its
// scrypt hash is stored. The creation is in the audit log, by `system`.
import { withTransaction, type Pool } from '../db/pools.js';
import { createConsoleUser } from '../db/stores/console-user-store.js';
import { appendAudit } from '../db/stores/audit-store.js';
import { consoleRoles, isConsoleRole } from '../domain/console-roles.js';
import { isEmailAddress } from '../domain/contact.js';
import { generatePassword, hashPassword } from '../console/passwords.js';

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
  const password = generatePassword();
  const name = option(args, '--name') ?? '';
  const created = await withTransaction(pool, async (client) => {
    const user = await createConsoleUser(client, {
      email,
      name,
      role,
      passwordHash: await hashPassword(password),
    });
    if (user !== undefined)
      await appendAudit(client, {
        actorKind: 'system',
        actorId: 'cli',
        actorName: 'herald console-user create',
        action: 'console_user.create',
        target: `console_user:${String(user.id)}`,
        after: { email: user.email, name: user.name, role: user.role, disabled: false },
      });
    return user;
  });
  if (created === undefined) {
    process.stderr.write(`a console account with the email ${email} exists\n`);
    return 1;
  }
  process.stdout.write(
    `console account ${created.email} (${created.role}) created; its password, shown this once:\n${password}\n`,
  );
  return 0;
}
