// Console accounts: people who sign in to the console, their role and their failed sign-ins.
import type { Pool, PoolClient } from '../pools.js';
import type { ConsoleRole } from '../../domain/console-roles.js';

export interface ConsoleUser {
  id: number;
  email: string;
  name: string;
  role: ConsoleRole;
  disabled: boolean;
  lockedUntil: Date | null;
  lastLoginAt: Date | null;
  createdAt: Date;
}

interface ConsoleUserRow {
  id: string;
  email: string;
  name: string;
  role: ConsoleRole;
  disabled: boolean;
  locked_until: Date | null;
  last_login_at: Date | null;
  created_at: Date;
}

const columns = 'id, email, name, role, disabled, locked_until, last_login_at, created_at';

function toUser(row: ConsoleUserRow): ConsoleUser {
  return {
    id: Number(row.id),
    email: row.email,
    name: row.name,
    role: row.role,
    disabled: row.disabled,
    lockedUntil: row.locked_until,
    lastLoginAt: row.last_login_at,
    createdAt: row.created_at,
  };
}

/** The new account, or undefined when the email is taken. */
export async function createConsoleUser(
  db: Pool | PoolClient,
  user: { email: string; name: string; role: ConsoleRole; passwordHash: string },
): Promise<ConsoleUser | undefined> {
  const result = await db.query<ConsoleUserRow>(
    `INSERT INTO console_users (email, name, role, password_hash) VALUES ($1, $2, $3, $4)
     ON CONFLICT (email) DO NOTHING RETURNING ${columns}`,
    [user.email.toLowerCase(), user.name, user.role, user.passwordHash],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toUser(row);
}

export async function findConsoleUser(db: Pool | PoolClient, id: number): Promise<ConsoleUser | undefined> {
  const result = await db.query<ConsoleUserRow>(`SELECT ${columns} FROM console_users WHERE id = $1`, [id]);
  const row = result.rows[0];
  return row === undefined ? undefined : toUser(row);
}

/** The account with this email (any case), for a single sign-on. */
export async function findConsoleUserByEmail(
  db: Pool | PoolClient,
  email: string,
): Promise<ConsoleUser | undefined> {
  const result = await db.query<ConsoleUserRow>(`SELECT ${columns} FROM console_users WHERE email = $1`, [
    email.toLowerCase(),
  ]);
  const row = result.rows[0];
  return row === undefined ? undefined : toUser(row);
}

/** The account and its password hash, for a sign-in; locked so concurrent attempts count one by one. */
export async function findForLogin(
  client: PoolClient,
  email: string,
): Promise<{ user: ConsoleUser; passwordHash: string; failedLogins: number } | undefined> {
  const result = await client.query<ConsoleUserRow & { password_hash: string; failed_logins: number }>(
    `SELECT ${columns}, password_hash, failed_logins FROM console_users WHERE email = $1 FOR UPDATE`,
    [email.toLowerCase()],
  );
  const row = result.rows[0];
  return row === undefined
    ? undefined
    : { user: toUser(row), passwordHash: row.password_hash, failedLogins: row.failed_logins };
}

/** Counts a failed sign-in; at `lockAfter` failures the account locks until `lockedUntil`. */
export async function recordFailedLogin(
  client: PoolClient,
  id: number,
  lockAfter: number,
  lockedUntil: Date,
): Promise<void> {
  await client.query(
    `UPDATE console_users
        SET failed_logins = failed_logins + 1,
            locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END
      WHERE id = $1`,
    [id, lockAfter, lockedUntil],
  );
}

export async function recordLogin(client: PoolClient, id: number, at: Date): Promise<void> {
  await client.query(
    'UPDATE console_users SET failed_logins = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1',
    [id, at],
  );
}

/**
 * A single sign-on: only the time. The failed password count and its lock stay as they are,
 * since they guard the password, which a single sign-on did not use.
 */
export async function recordSingleSignOn(db: Pool | PoolClient, id: number, at: Date): Promise<void> {
  await db.query('UPDATE console_users SET last_login_at = $2 WHERE id = $1', [id, at]);
}

export async function listConsoleUsers(db: Pool | PoolClient): Promise<ConsoleUser[]> {
  const result = await db.query<ConsoleUserRow>(`SELECT ${columns} FROM console_users ORDER BY email`);
  return result.rows.map(toUser);
}

/** Changes an account's role or disables it; returns the account before and after. */
export async function updateConsoleUser(
  client: PoolClient,
  id: number,
  change: { role?: ConsoleRole; disabled?: boolean },
): Promise<{ before: ConsoleUser; after: ConsoleUser } | undefined> {
  const found = await client.query<ConsoleUserRow>(
    `SELECT ${columns} FROM console_users WHERE id = $1 FOR UPDATE`,
    [id],
  );
  const row = found.rows[0];
  if (row === undefined) return undefined;
  const updated = await client.query<ConsoleUserRow>(
    `UPDATE console_users SET role = coalesce($2, role), disabled = coalesce($3, disabled), updated_at = now()
      WHERE id = $1 RETURNING ${columns}`,
    [id, change.role ?? null, change.disabled ?? null],
  );
  const after = updated.rows[0];
  if (after === undefined) return undefined;
  return { before: toUser(row), after: toUser(after) };
}

export async function countConsoleUsers(db: Pool | PoolClient): Promise<number> {
  const result = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM console_users');
  return result.rows[0]?.n ?? 0;
}
