/**
 * @typedef {import('./inbox-client.js').InboxClient} InboxClient
 * @typedef {import('./inbox-client.js').Preference} Preference
 * @typedef {import('./messages.js').Messages} Messages
 */
/** Herald's channels, in the order the panel lists them. */
export const preferenceChannels: readonly ["in_app", "push", "email", "sms", "chat", "webhook"];
export class PreferencesPanel {
    /**
     * @param {{ messages: Messages, onError: (error: unknown) => void, onClose: () => void }} options
     */
    constructor(options: {
        messages: Messages;
        onError: (error: unknown) => void;
        onClose: () => void;
    });
    options: {
        messages: Messages;
        onError: (error: unknown) => void;
        onClose: () => void;
    };
    status: HTMLParagraphElement;
    switches: HTMLDivElement;
    noMarketing: HTMLInputElement;
    saveButton: HTMLButtonElement;
    closeButton: HTMLButtonElement;
    form: HTMLFormElement;
    element: HTMLElement;
    /** Shows the panel and loads the user's preferences into it. @param {InboxClient} client */
    open(client: InboxClient): Promise<void>;
    close(): void;
    #private;
}
export type InboxClient = import("./inbox-client.js").InboxClient;
export type Preference = import("./inbox-client.js").Preference;
export type Messages = import("./messages.js").Messages;
