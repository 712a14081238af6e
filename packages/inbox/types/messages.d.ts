/** @param {string | null} locale a BCP 47 tag such as `de-CH`; null: English */
export function messagesFor(locale: string | null): Messages;
export type Messages = {
    heading: string;
    unread: string;
    unreadOnly: string;
    readAll: string;
    preferences: string;
    loadMore: string;
    empty: string;
    markRead: string;
    markUnread: string;
    archive: string;
    remove: string;
    open: string;
    unreadState: string;
    newItem: (title: string) => string;
    connection: Record<"connecting" | "live" | "offline", string>;
    unreachable: string;
    channels: string;
    categories: string;
    alwaysDelivered: string;
    noMarketing: string;
    save: string;
    close: string;
    saved: string;
    loading: string;
    channelNames: Record<string, string>;
};
