// A stand-in for an app that uses <herald-inbox>: a small static HTTP server on its own port
// (so its pages are of another origin than Herald's query role) that serves one page placing
// the element, the element's modules from packages/inbox/src as they are, and POST /token,
// where the app's backend asks Herald for a user token with its service key.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

const elementDir = join(import.meta.dirname, '..', 'src');

export interface AppServer {
  origin: string;
  /** How often the page asked the backend for a user token. */
  tokensIssued(): number;
  close(): Promise<void>;
}

export interface AppPage {
  /** The query role's base URL, read when a page is served (Herald starts after the server). */
  queryUrl: () => string;
  userId: string;
  /** The page's token: issued through POST /token (a function) or given as it is. */
  token: { kind: 'function'; issue: () => Promise<string> } | { kind: 'string'; value: () => string };
}

export async function startAppServer(page: AppPage): Promise<AppServer> {
  let issued = 0;
  const server: Server = createServer((request, response) => {
    void (async () => {
      const path = new URL(request.url ?? '/', 'http://app').pathname;
      if (path === '/') {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        response.end(html(page));
        return;
      }
      if (path === '/token' && request.method === 'POST' && page.token.kind === 'function') {
        issued += 1;
        const token = await page.token.issue();
        response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        response.end(JSON.stringify({ token }));
        return;
      }
      const module = /^\/herald-inbox\/([a-z-]+\.js)$/.exec(path)?.[1];
      if (module !== undefined) {
        const body = await readFile(join(elementDir, module)).catch(() => undefined);
        if (body !== undefined) {
          response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
          response.end(body);
          return;
        }
      }
      response.writeHead(404).end();
    })().catch(() => response.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${String(port)}`,
    tokensIssued: () => issued,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The app's page: the element, its events recorded in window.heraldEvents, and its token. */
function html(page: AppPage): string {
  const token =
    page.token.kind === 'function'
      ? `async () => (await (await fetch('/token', { method: 'POST' })).json()).token`
      : JSON.stringify(page.token.value());
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>An app</title>
    <script type="module">
      import '/herald-inbox/herald-inbox.js';
      const inbox = document.querySelector('herald-inbox');
      window.heraldEvents = [];
      for (const type of ['herald-inbox-item', 'herald-inbox-unread', 'herald-inbox-connection', 'herald-inbox-error'])
        inbox.addEventListener(type, (event) => window.heraldEvents.push({ type, detail: event.detail }));
      inbox.token = ${token};
    </script>
  </head>
  <body>
    <main>
      <herald-inbox base-url="${page.queryUrl()}" user-id="${page.userId}" style="--herald-inbox-accent: rgb(1, 2, 3)"></herald-inbox>
    </main>
  </body>
</html>`;
}
