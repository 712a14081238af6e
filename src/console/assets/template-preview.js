// @ts-check
// The template page's live preview: as the channel, locale or sample params change, posts them to
// the page's preview route (with the session's CSRF token) and shows the rendered text, the
// provider limits it breaks and why it could not be rendered. Once the edit form is typed in,
// the preview renders the unsaved text instead (the route checks it as a save would). Without
// this script the form's Preview button renders saved versions with a page load. Text is set
// with textContent, never as HTML.

/**
 * @typedef {{ locale: string, parts: { name: string, text: string }[], limits: string[],
 *   notes: string[], errors: string[] }} PreviewResult
 */

/** @type {HTMLFormElement | null} */
const form = document.querySelector('form.preview');
const out = document.getElementById('preview-result');
/** @type {HTMLInputElement | null} */
const tokenField = document.querySelector('input[name="_csrf"]');
/** @type {HTMLFormElement | null} */
const editForm = document.querySelector('form.edit');
/** Set once the edit form is typed in: from then on the preview shows the unsaved text. */
let editing = false;

/** The edit form's fields as typed (not the CSRF token), or undefined before any edit. */
function draftFields() {
  if (!editing || editForm === null) return undefined;
  /** @type {Record<string, string>} */
  const fields = {};
  for (const [name, value] of new FormData(editForm))
    if (typeof value === 'string' && name !== '_csrf') fields[name] = value;
  return fields;
}

/** @param {string} tag @param {string} [className] @param {string} [text] */
function element(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {HTMLElement} out @param {PreviewResult} result */
function show(out, result) {
  /** @type {HTMLElement[]} */
  const shown = [];
  for (const error of result.errors) shown.push(element('p', 'error', error));
  if (result.locale !== '')
    shown.push(
      element(
        'p',
        'preview-locale',
        `${editing ? 'Your unsaved edit, rendered' : 'Rendered'} in ${result.locale}`,
      ),
    );
  const parts = element('dl', 'parts rendered');
  for (const part of result.parts) {
    parts.append(element('dt', '', part.name));
    const dd = element('dd');
    dd.append(element('pre', '', part.text));
    parts.append(dd);
  }
  shown.push(parts);
  const limits = element('ul', 'limits');
  for (const limit of result.limits) limits.append(element('li', 'error', `Over a provider limit: ${limit}`));
  shown.push(limits);
  const notes = element('ul', 'notes');
  for (const note of result.notes) notes.append(element('li', '', note));
  shown.push(notes);
  out.replaceChildren(...shown);
}

/** @param {string} message @returns {PreviewResult} */
const failure = (message) => ({ errors: [message], locale: '', parts: [], limits: [], notes: [] });

if (form !== null && out !== null && tokenField !== null) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let asked = 0;
  const preview = async () => {
    const mine = ++asked;
    const data = new FormData(form);
    /** @param {string} name */
    const field = (name) => {
      const value = data.get(name);
      return typeof value === 'string' ? value : '';
    };
    const body = {
      channel: field('channel'),
      locale: field('locale'),
      params: field('params'),
      version: Number(field('version')),
      draft: draftFields(),
    };
    try {
      const response = await fetch(form.dataset['previewUrl'] ?? '', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': tokenField.value },
        body: JSON.stringify(body),
      });
      /** @type {unknown} */
      const json = await response.json();
      const answer = /** @type {PreviewResult & { detail?: string, title?: string }} */ (json);
      if (mine !== asked) return;
      show(out, response.ok ? answer : failure(answer.detail ?? answer.title ?? 'The preview failed.'));
    } catch {
      if (mine === asked) show(out, failure('The preview could not be fetched.'));
    }
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void preview(), 250);
  };
  form.addEventListener('input', later);
  editForm?.addEventListener('input', () => {
    editing = true;
    later();
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(timer);
    void preview();
  });
  void preview();
}
