// A console client over HTTP as a browser would be: it keeps the cookies the console sets, reads
// the CSRF token from the page's forms, and posts forms URL-encoded. Redirects are not followed,
// so tests see them.
import assert from 'node:assert/strict';
import type { Pool } from '../../src/db/pools.js';
import { createConsoleUser } from '../../src/db/stores/console-user-store.js';
import type { ConsoleRole } from '../../src/domain/console-roles.js';
import { hashPassword } from '../../src/console/passwords.js';

export interface ConsoleAnswer {
  status: number;
  headers: Headers;
  text: string;
}

export class ConsoleClient {
  private readonly cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  private keep(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at);
      const value = pair.slice(at + 1);
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  setCookie(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  async request(
    method: string,
    path: string,
    /** URL-encoded; URLSearchParams for a field given more than once (checkboxes). */
    form?: Record<string, string> | URLSearchParams,
    headers: Record<string, string> = {},
  ): Promise<ConsoleAnswer> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(`${this.base}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        ...(cookie === '' ? {} : { cookie }),
        ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
        ...headers,
      },
      ...(form === undefined ? {} : { body: new URLSearchParams(form).toString() }),
    });
    this.keep(response.headers);
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  /** A request with any body (JSON, multipart) and the session's cookies; the raw response. */
  async send(
    path: string,
    init: { method?: string; body?: string | FormData; headers?: Record<string, string> },
  ) {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(`${this.base}${path}`, {
      method: init.method ?? 'POST',
      redirect: 'manual',
      headers: { ...(cookie === '' ? {} : { cookie }), ...init.headers },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    this.keep(response.headers);
    return response;
  }

  get(path: string): Promise<ConsoleAnswer> {
    return this.request('GET', path);
  }

  /** The CSRF token in a page's forms. */
  static csrfOf(page: string): string {
    const match = /name="_csrf" value="([^"]+)"/.exec(page);
    assert.ok(match?.[1] !== undefined, 'the page has no CSRF token');
    return match[1];
  }

  /** Posts a form of the page at `pagePath`, with its CSRF token. */
  async submit(pagePath: string, action: string, form: Record<string, string>): Promise<ConsoleAnswer> {
    const page = await this.get(pagePath);
    return this.request('POST', action, { _csrf: ConsoleClient.csrfOf(page.text), ...form });
  }

  async signIn(email: string, password: string): Promise<ConsoleAnswer> {
    return this.submit('/login', '/login', { email, password });
  }
}

/** A console account with `role` (its email is `<role>@example.com`), signed in. */
export async function signedInAs(
  pool: Pool,
  consoleUrl: string,
  role: ConsoleRole,
  password: string,
): Promise<ConsoleClient> {
  const email = `${role}@example.com`;
  await createConsoleUser(pool, { email, name: '', role, passwordHash: await hashPassword(password) });
  const c = new ConsoleClient(consoleUrl);
  assert.equal((await c.signIn(email, password)).status, 303);
  return c;
}
