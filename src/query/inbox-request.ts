// What the inbox routes share: their dependencies, parameter schemas, and who a caller's answers
// are scoped to (a service's key: its own items; the user's token: the whole inbox).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Pool } from '../db/pools.js';
import type { Authenticate } from '../http/api-key-auth.js';
import type { WakeNotifier } from '../db/wake-notifier.js';
import { serviceScope, type ServiceScope } from '../db/stores/inbox-store.js';
import type { InboxPresenter } from './inbox-presenter.js';
import type { InboxCaller, UserTokens } from './user-auth.js';
import type { InboxStreams } from './inbox-stream.js';
import type { CredentialRevocations } from './credential-revocations.js';

export interface InboxRouteDeps {
  /** Reads: the replica when DATABASE_READ_URL is set. */
  readPool: Pool;
  /** Changes (read state): always the primary. */
  pool: Pool;
  tokens: UserTokens;
  authenticate: Authenticate;
  revocations: CredentialRevocations;
  notifier: WakeNotifier;
  streams: InboxStreams;
  presenter: InboxPresenter;
  /** Signs cursors to the user they were given to. */
  cursorKey: Uint8Array;
  maxTokenTtlSeconds?: number;
  /** User tokens one key may have issued per minute (per query process). */
  tokenIssuesPerMinute: number;
  now: () => Date;
}

/** A service's key sees only its own items; a user's token sees the whole inbox. */
export function scopeOf(caller: InboxCaller): ServiceScope {
  return caller.kind === 'service' ? serviceScope(caller.caller.serviceName) : undefined;
}

export const UserId = Type.String({ minLength: 1, maxLength: 128 });
export const NotificationId = Type.String({ minLength: 1, maxLength: 200 });
export const UserParams = Type.Object({ userId: UserId });
export const ItemParams = Type.Object({ userId: UserId, notificationId: NotificationId });
export const Category = Type.String({ minLength: 1, maxLength: 64 });

/** A POST whose options are all optional may come without a body: it means `{}`. */
export function emptyBodyAllowed(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  request.body ??= {};
  done();
}
