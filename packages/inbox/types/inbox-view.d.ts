/**
 * @typedef {import('./messages.js').Messages} Messages
 * @typedef {import('./item-list.js').ItemList} ItemList
 * @typedef {import('./preferences-panel.js').PreferencesPanel} PreferencesPanel
 */
/**
 * Fills the shadow root for one locale; returns the parts the element updates.
 * @param {ShadowRoot} root @param {Messages} m @param {ItemList} list @param {PreferencesPanel} panel
 */
export function buildInboxView(root: ShadowRoot, m: Messages, list: ItemList, panel: PreferencesPanel): {
    badge: HTMLSpanElement;
    unread: HTMLParagraphElement;
    connection: HTMLParagraphElement;
    unreadOnly: HTMLInputElement;
    readAll: HTMLButtonElement;
    preferences: HTMLButtonElement;
    heading: HTMLHeadingElement;
    message: HTMLParagraphElement;
    announcer: HTMLDivElement;
    empty: HTMLParagraphElement;
    loadMore: HTMLButtonElement;
};
export type Messages = import("./messages.js").Messages;
export type ItemList = import("./item-list.js").ItemList;
export type PreferencesPanel = import("./preferences-panel.js").PreferencesPanel;
export type InboxView = ReturnType<typeof buildInboxView>;
