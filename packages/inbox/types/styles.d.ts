/** One sheet shared by every instance. */
export function inboxStyleSheet(): CSSStyleSheet;
