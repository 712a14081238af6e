// The types of @herald/inbox: the element class, whose declarations in types/ are emitted from
// the JSDoc of src/ (tsconfig.types.json), and the tag and events for TypeScript pages.
import type { HeraldInbox } from './types/herald-inbox.js';
import type { ConnectionState, InboxItem } from './types/inbox-client.js';

export { HeraldInbox } from './types/herald-inbox.js';
export type { ConnectionState, InboxItem, TokenSource } from './types/inbox-client.js';

/** What the `herald-inbox-unauthenticated` and `herald-inbox-error` events carry. */
export interface InboxProblem {
  /** The HTTP status; 0 when Herald could not be reached (or the origin is not allowed). */
  status: number;
  message: string;
}

declare global {
  interface HTMLElementTagNameMap {
    'herald-inbox': HeraldInbox;
  }
  interface HTMLElementEventMap {
    'herald-inbox-unread': CustomEvent<{ unread: number }>;
    'herald-inbox-item': CustomEvent<{ item: InboxItem }>;
    'herald-inbox-connection': CustomEvent<{ state: ConnectionState }>;
    'herald-inbox-error': CustomEvent<InboxProblem>;
    'herald-inbox-unauthenticated': CustomEvent<InboxProblem>;
  }
}
