// The console's roles and what each may do. A page or action names the capability it needs;
// the console shows a control only to people whose role holds it, and checks it again on the
// request, so a hidden button is never the only guard.

export const consoleRoles = ['admin', 'operator', 'support', 'viewer'] as const;
export type ConsoleRole = (typeof consoleRoles)[number];

export const consoleCapabilities = [
  /** See the overview, notifications and dead letters (targets masked). */
  'read',
  /** Find a user by id, email or phone and read their history (masked); each lookup is audited. */
  'support:lookup',
  /** Edit and import templates, set categories. */
  'templates:write',
  /** Replay dead letters. */
  'dead_letters:replay',
  /** Create services and keys, rotate webhook secrets. */
  'services:manage',
  /** Create console accounts and change their roles. */
  'console_users:manage',
  /** Search the audit log. */
  'audit:read',
] as const;
export type ConsoleCapability = (typeof consoleCapabilities)[number];

const granted: Record<ConsoleRole, readonly ConsoleCapability[]> = {
  admin: consoleCapabilities,
  operator: ['read', 'templates:write', 'dead_letters:replay'],
  support: ['read', 'support:lookup'],
  viewer: ['read'],
};

export function isConsoleRole(text: string): text is ConsoleRole {
  return (consoleRoles as readonly string[]).includes(text);
}

export function roleAllows(role: ConsoleRole, capability: ConsoleCapability): boolean {
  return granted[role].includes(capability);
}

export function capabilitiesOf(role: ConsoleRole): readonly ConsoleCapability[] {
  return granted[role];
}
