// Console sessions: a signed-in browser. Looked up by the SHA-256 of the cookie's id; a
// session ends at logout, after its idle time without a request, at its expiry, or when its
// account is disabled.
import type { Pool, PoolClient } from '../pools.js';
import type { ConsoleRole } from '../../domain/console-roles.js';

export interface ActiveSession {
  userId: number;
  email: string;
  name: string;
  role: ConsoleRole;
  csrfToken: string;
}

export async function createConsoleSession(
  db: Pool | PoolClient,
  session: {
    idHash: Buffer;
    userId: number;
    csrfToken: string;
    now: Date;
    expiresAt: Date;
    clientAddress: string;
    userAgent: string;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO console_sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, client_address, user_agent)
     VALUES ($1, $2, $3, $4, $4, $5, $6, $7)`,
    [
      session.idHash,
      session.userId,
      session.csrfToken,
      session.now,
      session.expiresAt,
      session.clientAddress,
      session.userAgent.slice(0, 512),
    ],
  );
}

/**
 * The session and its account when the session is live (seen within `idleMs`, not expired, the
 * account enabled), marking it seen now; undefined otherwise, and a dead session is removed.
 */
export async function touchConsoleSession(
  db: Pool,
  idHash: Buffer,
  now: Date,
  idleMs: number,
): Promise<ActiveSession | undefined> {
  const result = await db.query<{
    user_id: string;
    email: string;
    name: string;
    role: ConsoleRole;
    csrf_token: string;
  }>(
    `UPDATE console_sessions s SET last_seen_at = $2
       FROM console_users u
      WHERE s.id_hash = $1 AND u.id = s.user_id AND NOT u.disabled
        AND s.expires_at > $2 AND s.last_seen_at > $2 - make_interval(secs => $3::double precision / 1000)
     RETURNING s.user_id, u.email, u.name, u.role, s.csrf_token`,
    [idHash, now, idleMs],
  );
  const row = result.rows[0];
  if (row === undefined) {
    await deleteConsoleSession(db, idHash);
    return undefined;
  }
  return {
    userId: Number(row.user_id),
    email: row.email,
    name: row.name,
    role: row.role,
    csrfToken: row.csrf_token,
  };
}

export async function deleteConsoleSession(db: Pool | PoolClient, idHash: Buffer): Promise<void> {
  await db.query('DELETE FROM console_sessions WHERE id_hash = $1', [idHash]);
}

/** Ends every session of an account (it was disabled or its role changed). */
export async function deleteSessionsOf(db: Pool | PoolClient, userId: number): Promise<void> {
  await db.query('DELETE FROM console_sessions WHERE user_id = $1', [userId]);
}
