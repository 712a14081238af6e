export class HeraldInbox extends HTMLElement {
    static observedAttributes: string[];
    set baseUrl(value: string);
    /** The query role's base URL, resolved against the document (default: the document's directory). */
    get baseUrl(): string;
    set userId(value: string);
    get userId(): string;
    set locale(value: string | null);
    get locale(): string | null;
    set token(value: import("./inbox-client.js").TokenSource | null);
    /** The user token: a string, or a function returning one (called again when Herald answers 401). */
    get token(): import("./inbox-client.js").TokenSource | null;
    /** The unread count shown. */
    get unreadCount(): number;
    /** Reloads the list and the unread count. */
    refresh(): Promise<void>;
    connectedCallback(): void;
    disconnectedCallback(): void;
    /** @param {string} name @param {string | null} before @param {string | null} after */
    attributeChangedCallback(name: string, before: string | null, after: string | null): void;
    #private;
}
export type InboxItem = import("./inbox-client.js").InboxItem;
export type StreamData = import("./inbox-client.js").StreamData;
export type TokenSource = import("./inbox-client.js").TokenSource;
export type ItemAction = import("./inbox-client.js").ItemAction;
export type ConnectionState = import("./inbox-client.js").ConnectionState;
export type RowAction = import("./item-list.js").RowAction;
export type Messages = import("./messages.js").Messages;
export type InboxView = import("./inbox-view.js").InboxView;
