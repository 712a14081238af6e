// Whether a process can serve (GET /readyz): its database reachable and migrated.
export type Readiness =
  | { status: 'ready' }
  | { status: 'migrations pending'; pending: string[] }
  | { status: 'migrations invalid'; detail: string }
  | { status: 'database unreachable' };
