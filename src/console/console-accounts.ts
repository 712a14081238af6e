// Creating a console account, from the People page and from `herald console-user create` alike:
// a generated password (returned once, stored only as its scrypt hash) and the audit entry, in
// one transaction.
import { withTransaction, type Pool } from '../db/pools.js';
import { appendAudit, type AuditEntry } from '../db/stores/audit-store.js';
import { createConsoleUser, type ConsoleUser } from '../db/stores/console-user-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';
import { generatePassword, hashPassword } from './passwords.js';

/** What the audit log keeps of an account: never its password. */
export function auditedAccount(u: ConsoleUser) {
  return { email: u.email, name: u.name, role: u.role, disabled: u.disabled };
}

/** The new account and its password; undefined when the email is taken. */
export async function createAccount(
  pool: Pool,
  account: { email: string; name: string; role: ConsoleRole },
  actor: Pick<AuditEntry, 'actorKind' | 'actorId' | 'actorName' | 'clientAddress'>,
): Promise<{ user: ConsoleUser; password: string } | undefined> {
  const password = generatePassword();
  const passwordHash = await hashPassword(password);
  return withTransaction(pool, async (client) => {
    const user = await createConsoleUser(client, { ...account, passwordHash });
    if (user === undefined) return undefined;
    await appendAudit(client, {
      ...actor,
      action: 'console_user.create',
      target: `console_user:${String(user.id)}`,
      after: auditedAccount(user),
    });
    return { user, password };
  });
}
