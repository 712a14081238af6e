// Who is calling with an API key: the key, its service and what it was granted.
import type { Permission } from './permissions.js';

export interface Caller {
  keyId: number;
  /** The key's first characters, as the console lists keys and the audit log names them. */
  keyPrefix: string;
  serviceId: number;
  serviceName: string;
  permissions: Permission[];
}
