/**
 * An element with attributes and children (strings become text nodes).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attributes]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes?: Record<string, string>, children?: (Node | string)[]): HTMLElementTagNameMap[K];
/** @param {string | undefined} value only http(s) links are shown */
export function safeLink(value: string | undefined): string | null;
/**
 * Runs `work` with the button marked busy, ignoring presses meanwhile. aria-disabled, not
 * disabled: a disabled button drops keyboard focus to the page.
 * @param {HTMLButtonElement} button @param {() => Promise<void>} work
 */
export function whileBusy(button: HTMLButtonElement, work: () => Promise<void>): Promise<void>;
