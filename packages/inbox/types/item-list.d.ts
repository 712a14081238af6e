/**
 * @typedef {import('./inbox-client.js').InboxItem} InboxItem
 * @typedef {import('./messages.js').Messages} Messages
 * @typedef {'toggle-read' | 'archive' | 'delete'} RowAction
 */
export class ItemList {
    /**
     * @param {{
     *   messages: Messages, timeFormat: Intl.DateTimeFormat, labelledBy: string,
     *   onAction: (id: string, action: RowAction, button: HTMLButtonElement) => void,
     *   onLinkOpened: (id: string) => void,
     *   onFocusLost: () => void,
     * }} options
     */
    constructor(options: {
        messages: Messages;
        timeFormat: Intl.DateTimeFormat;
        labelledBy: string;
        onAction: (id: string, action: RowAction, button: HTMLButtonElement) => void;
        onLinkOpened: (id: string) => void;
        onFocusLost: () => void;
    });
    options: {
        messages: Messages;
        timeFormat: Intl.DateTimeFormat;
        labelledBy: string;
        onAction: (id: string, action: RowAction, button: HTMLButtonElement) => void;
        onLinkOpened: (id: string) => void;
        onFocusLost: () => void;
    };
    element: HTMLUListElement;
    /** Brings the rows in line with `items`, keeping existing rows (and their focus) in place. @param {InboxItem[]} items */
    render(items: InboxItem[]): void;
    #private;
}
export type InboxItem = import("./inbox-client.js").InboxItem;
export type Messages = import("./messages.js").Messages;
export type RowAction = "toggle-read" | "archive" | "delete";
