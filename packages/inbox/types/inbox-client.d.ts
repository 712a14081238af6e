/**
 * An inbox item as the query API presents it.
 * @typedef {{
 *   id: string, category: string, version: number, title?: string, body?: string, url?: string,
 *   status?: string, data?: Record<string, unknown> | null, renderable?: boolean, read: boolean,
 *   seen: boolean, archived: boolean, read_at: string | null, seen_at: string | null,
 *   archived_at?: string | null, created_at: string, updated_at: string
 * }} InboxItem
 * @typedef {{ items: InboxItem[], next_cursor: string | null }} InboxPage
 * @typedef {{ channel: string, category: string, enabled: boolean }} Preference
 * @typedef {{ category: string, service: string, critical: boolean, marketing: boolean }} ListedCategory
 * @typedef {{
 *   preferences: Preference[], no_marketing: boolean, categories?: ListedCategory[],
 *   quiet_hours: { start: string, end: string } | null, time_zone: string | null
 * }} UserPreferences
 * @typedef {{ seq?: number, id?: string | null, item?: InboxItem | null, unread_count?: number }} StreamData
 * @typedef {string | (() => string | Promise<string>)} TokenSource
 * @typedef {'read' | 'unread' | 'archive' | 'delete'} ItemAction
 * @typedef {'connecting' | 'live' | 'offline'} ConnectionState
 */
/**
 * The stream's events the element follows: every kind of inbox change (inboxEventKinds in
 * src/db/stores/inbox-store.ts; the Chromium test checks the two agree), `ready` and `reset`.
 * `revoked` needs no listener: the server closes the stream after it, and reopening finds out why.
 */
export const streamEvents: readonly ["ready", "created", "updated", "read", "unread", "seen", "archived", "unarchived", "deleted", "read_all", "seen_all", "reset"];
export class InboxError extends Error {
    /** @param {number} status 0: Herald could not be reached (or the origin is not allowed) @param {string} message */
    constructor(status: number, message: string);
    status: number;
}
export class InboxClient {
    /** @param {{ baseUrl: URL, userId: string, token: TokenSource, unreachable: string }} options */
    constructor(options: {
        baseUrl: URL;
        userId: string;
        token: TokenSource;
        unreachable: string;
    });
    options: {
        baseUrl: URL;
        userId: string;
        token: TokenSource;
        unreachable: string;
    };
    root: URL;
    /** Uses this token (or token function) from the next request on. @param {TokenSource} source */
    setToken(source: TokenSource): void;
    /** The current token; `refresh` asks a token function for a new one. @param {boolean} [refresh] */
    token(refresh?: boolean): Promise<string>;
    /**
     * Calls the API; resolves to the JSON body (typed by the caller after the API's documented
     * shapes), rejects with InboxError carrying the problem's detail.
     * @param {string} method @param {string} path relative to /v1/users/:userId/ @param {unknown} [body]
     * @returns {Promise<unknown>}
     */
    request(method: string, path: string, body?: unknown): Promise<unknown>;
    /** @param {{ cursor: string | null, unreadOnly: boolean, limit: number }} options */
    list({ cursor, unreadOnly, limit }: {
        cursor: string | null;
        unreadOnly: boolean;
        limit: number;
    }): Promise<InboxPage>;
    count(): Promise<{
        unread: number;
        unseen: number;
    }>;
    /** The item's new state (read, unread), or undefined (archive, delete). @param {string} id @param {ItemAction} action */
    act(id: string, action: ItemAction): Promise<InboxItem | undefined>;
    /** Reports that the user followed the item's link (counted once). @param {string} id */
    clicked(id: string): Promise<void>;
    readAll(): Promise<{
        changed: number;
    }>;
    preferences(): Promise<UserPreferences>;
    /** @param {{ preferences: Preference[], no_marketing: boolean }} body */
    savePreferences(body: {
        preferences: Preference[];
        no_marketing: boolean;
    }): Promise<UserPreferences>;
    /**
     * The stream's URL. EventSource cannot send headers, so the token goes in `access_token`.
     * @param {string | null} lastEventId resume after this event
     */
    streamUrl(lastEventId: string | null): Promise<URL>;
    #private;
}
/**
 * The realtime stream with resume: EventSource reconnects by itself with Last-Event-ID; when the
 * connection is closed for good (refused, or the server went away), this reopens it after a
 * backoff with the last event id it saw, so nothing in between is missed. A 401 ends it.
 */
export class InboxStream {
    /**
     * @param {InboxClient} client
     * @param {{
     *   onEvent: (kind: string, data: StreamData, fresh: boolean) => void,
     *   onState: (state: ConnectionState) => void,
     *   onRefused: (error: InboxError) => void,
     * }} handlers `fresh`: a `ready` on a connection that did not resume, so events may have been missed
     */
    constructor(client: InboxClient, handlers: {
        onEvent: (kind: string, data: StreamData, fresh: boolean) => void;
        onState: (state: ConnectionState) => void;
        onRefused: (error: InboxError) => void;
    });
    client: InboxClient;
    handlers: {
        onEvent: (kind: string, data: StreamData, fresh: boolean) => void;
        onState: (state: ConnectionState) => void;
        onRefused: (error: InboxError) => void;
    };
    start(): void;
    stop(): void;
    get isLive(): boolean;
    #private;
}
/**
 * An inbox item as the query API presents it.
 */
export type InboxItem = {
    id: string;
    category: string;
    version: number;
    title?: string;
    body?: string;
    url?: string;
    status?: string;
    data?: Record<string, unknown> | null;
    renderable?: boolean;
    read: boolean;
    seen: boolean;
    archived: boolean;
    read_at: string | null;
    seen_at: string | null;
    archived_at?: string | null;
    created_at: string;
    updated_at: string;
};
/**
 * An inbox item as the query API presents it.
 */
export type InboxPage = {
    items: InboxItem[];
    next_cursor: string | null;
};
/**
 * An inbox item as the query API presents it.
 */
export type Preference = {
    channel: string;
    category: string;
    enabled: boolean;
};
/**
 * An inbox item as the query API presents it.
 */
export type ListedCategory = {
    category: string;
    service: string;
    critical: boolean;
    marketing: boolean;
};
/**
 * An inbox item as the query API presents it.
 */
export type UserPreferences = {
    preferences: Preference[];
    no_marketing: boolean;
    categories?: ListedCategory[];
    quiet_hours: {
        start: string;
        end: string;
    } | null;
    time_zone: string | null;
};
/**
 * An inbox item as the query API presents it.
 */
export type StreamData = {
    seq?: number;
    id?: string | null;
    item?: InboxItem | null;
    unread_count?: number;
};
/**
 * An inbox item as the query API presents it.
 */
export type TokenSource = string | (() => string | Promise<string>);
/**
 * An inbox item as the query API presents it.
 */
export type ItemAction = "read" | "unread" | "archive" | "delete";
/**
 * An inbox item as the query API presents it.
 */
export type ConnectionState = "connecting" | "live" | "offline";
