// Who is calling with an API key: the key, its service and what it was granted.
import type { Permission } from './permissions.js';

export interface Caller {
  keyId: number;
  serviceId: number;
  serviceName: string;
  permissions: Permission[];
}
