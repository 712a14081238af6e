// @ts-check
// The element's stylesheet, adopted by its shadow root (a constructed sheet: no <style> element,
// so a page whose CSP allows only its own stylesheets can still use the element). Every colour,
// the font, the radius and the spacing come from --herald-inbox-* custom properties, which pages
// set on the element or any ancestor (README.md lists them).

const css = `
:host {
  --_accent: var(--herald-inbox-accent, #2563eb);
  --_muted: var(--herald-inbox-muted, #6b7280);
  --_border: var(--herald-inbox-border, color-mix(in srgb, currentColor 15%, transparent));
  --_radius: var(--herald-inbox-radius, 0.4rem);
  --_gap: var(--herald-inbox-gap, 0.8rem);
  display: block;
  color: var(--herald-inbox-text, inherit);
  background: var(--herald-inbox-background, transparent);
  font-family: var(--herald-inbox-font, inherit);
  line-height: 1.45;
}
:host([hidden]) { display: none; }
[hidden] { display: none !important; }
h2 { margin: 0; font-size: 1.2em; }
h3 { margin: 0; font-size: 1em; font-weight: 500; }
button {
  padding: 0.25rem 0.7rem;
  border: 1px solid var(--_border);
  border-radius: var(--_radius);
  background: transparent;
  color: inherit;
  font: inherit;
  cursor: pointer;
}
button:disabled,
button[aria-disabled='true'] { cursor: default; opacity: 0.6; }
:focus-visible {
  outline: 2px solid var(--herald-inbox-focus, var(--_accent));
  outline-offset: 2px;
}
.bar {
  display: flex;
  flex-wrap: wrap;
  align-items: center;
  gap: 0.5rem var(--_gap);
  padding: var(--_gap) 0;
  border-bottom: 1px solid var(--_border);
}
.bar p { margin: 0; }
.tools { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem; margin-left: auto; }
.badge {
  display: inline-block;
  min-width: 1.4em;
  padding: 0 0.4em;
  border-radius: 999px;
  background: var(--_accent);
  color: var(--herald-inbox-accent-text, #fff);
  font-weight: 600;
  text-align: center;
}
.unread.is-zero .badge { background: var(--_muted); }
.connection { color: var(--_muted); font-size: 0.85em; }
.connection::before {
  content: '';
  display: inline-block;
  width: 0.6em;
  height: 0.6em;
  margin-right: 0.35em;
  border-radius: 50%;
  background: var(--_muted);
}
.connection[data-state='live']::before { background: var(--herald-inbox-live, #16a34a); }
.connection[data-state='connecting']::before { background: var(--herald-inbox-connecting, #d97706); }
.message {
  margin: var(--_gap) 0 0;
  padding: 0.6rem 0.8rem;
  border: 1px solid var(--herald-inbox-error, #dc2626);
  border-radius: var(--_radius);
}
.items { margin: 0; padding: 0; list-style: none; }
.item { padding: var(--_gap) 0; border-bottom: 1px solid var(--_border); }
.item.is-unread { background: var(--herald-inbox-unread-background, transparent); }
.item article { border-radius: var(--_radius); }
.item-head { display: flex; align-items: center; gap: 0.5rem; }
.item.is-unread h3 { font-weight: 700; }
.unread-marker { flex: none; width: 0.55em; height: 0.55em; border-radius: 50%; }
.item.is-unread .unread-marker { background: var(--_accent); }
.item-body, .item-link, .item-meta { margin: 0.25rem 0 0 1.05rem; }
.item-link a { color: var(--_accent); }
.item-meta, .empty, .hint { color: var(--_muted); }
.item-meta { font-size: 0.85em; }
.item-actions { display: flex; flex-wrap: wrap; gap: 0.4rem; margin: 0.5rem 0 0 1.05rem; }
.load-more { margin-top: var(--_gap); }
.preferences {
  margin-top: var(--_gap);
  padding: var(--_gap);
  border: 1px solid var(--_border);
  border-radius: var(--_radius);
}
.preferences fieldset { margin: var(--_gap) 0 0; border: 1px solid var(--_border); border-radius: var(--_radius); }
.preferences label { display: block; }
.preferences .actions { display: flex; gap: 0.4rem; margin-top: var(--_gap); }
.visually-hidden {
  position: absolute;
  width: 1px;
  height: 1px;
  overflow: hidden;
  clip-path: inset(50%);
  white-space: nowrap;
}
`;

/** @type {CSSStyleSheet | undefined} */
let sheet;

/** One sheet shared by every instance. */
export function inboxStyleSheet() {
  if (sheet === undefined) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
  }
  return sheet;
}
