// What an API key may do. A key holds a set of permissions, granted when it is created; every
// keyed route names the permissions that let a key call it (docs/security.md has the table).
// Sending never implies writing a user's contact data: that belongs to whoever owns the user
// directory (docs/decisions/0005-trust-boundaries.md).

export const permissions = [
  /** Create, update (PATCH) and cancel the service's own notifications. */
  'send',
  /** Read the service's own notifications and dead letters. */
  'notifications:read',
  /** Read users, their devices and preferences with contact targets in full (URL secrets never). */
  'users:read',
  /** Create, change and delete users, their contact targets, devices and preferences. */
  'users:write',
  /** Write the service's templates (import, save); reading them needs send or templates. */
  'templates',
  /** Act in users' inboxes on the query role: only the service's own items. */
  'inbox',
  /** Issue and revoke user tokens on the query role. */
  'user_tokens',
  /** The support lookup: any user's history across services, masked. */
  'support',
  /** The service's settings (webhook and chat URLs, signing secret), categories, dead-letter replay. */
  'admin',
  /** Create, change and delete the service's rate budgets for bulk sends (docs/budgets.md). */
  'budgets',
] as const;
export type Permission = (typeof permissions)[number];

/**
 * Names `--roles` accepts besides the permissions themselves: `sender` is what a plain sending
 * service needs and nothing more; `all` is every permission (the development key holds it).
 */
export const senderPermissions: readonly Permission[] = ['send', 'notifications:read'];
export const permissionAliases: Readonly<Record<string, readonly Permission[]>> = {
  sender: senderPermissions,
  all: permissions,
};

export function isPermission(name: string): name is Permission {
  return (permissions as readonly string[]).includes(name);
}

/**
 * Parses a comma-separated list of permissions and aliases into a sorted set, or undefined
 * when it is empty or names something unknown.
 */
export function parsePermissions(list: string): Permission[] | undefined {
  const names = list
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  if (names.length === 0) return undefined;
  const granted = new Set<Permission>();
  for (const name of names) {
    const expanded = isPermission(name) ? [name] : permissionAliases[name];
    if (expanded === undefined) return undefined;
    for (const p of expanded) granted.add(p);
  }
  return permissions.filter((p) => granted.has(p));
}

/** True when `held` contains at least one of `anyOf`. */
export function holdsAny(held: readonly Permission[], anyOf: readonly Permission[]): boolean {
  return anyOf.some((p) => held.includes(p));
}
