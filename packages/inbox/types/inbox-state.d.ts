/**
 * @typedef {import('./inbox-client.js').InboxItem} InboxItem
 * @typedef {import('./inbox-client.js').InboxPage} InboxPage
 * @typedef {import('./inbox-client.js').StreamData} StreamData
 */
export class InboxState {
    /** @type {InboxItem[]} */
    items: InboxItem[];
    /** @type {string | null} */
    nextCursor: string | null;
    listLoaded: boolean;
    /** The list shows unread items only. */
    unreadOnly: boolean;
    unread: number;
    reset(): void;
    /** @param {InboxPage} page @param {boolean} append a next page rather than the first */
    setPage(page: InboxPage, append: boolean): void;
    /** @param {number} unread @param {number | null} seq null: from a plain read, always taken */
    setCount(unread: number, seq: number | null): void;
    /** Puts an item's latest state in the list, or takes it out when the list should not show it. @param {InboxItem} item */
    upsert(item: InboxItem): void;
    /** @param {string} id */
    remove(id: string): void;
    /** A read or unread answer: the item's new state, or (should it be anything else) the shown one patched. @param {string} id @param {boolean} read @param {InboxItem | undefined} answer */
    setRead(id: string, read: boolean, answer: InboxItem | undefined): void;
    markAllRead(): void;
    /**
     * Applies one stream event; true when the list must be loaded anew instead.
     * @param {string} kind @param {StreamData} data
     */
    apply(kind: string, data: StreamData): boolean;
    #private;
}
export type InboxItem = import("./inbox-client.js").InboxItem;
export type InboxPage = import("./inbox-client.js").InboxPage;
export type StreamData = import("./inbox-client.js").StreamData;
