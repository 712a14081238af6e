// The roles a Herald process can run (each scales as its own process). `start` runs all of them in
// one process (intake only when INTAKE_SERVICES is set).
export const roleNames = ['api', 'query', 'worker', 'scheduler', 'console', 'intake'] as const;
export type RoleName = (typeof roleNames)[number];

export function isRoleName(text: string): text is RoleName {
  return (roleNames as readonly string[]).includes(text);
}
