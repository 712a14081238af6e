// Serves the inbox page (GET /inbox) and the <herald-inbox> element it places: plain HTML, JS and
// CSS that use the query role's inbox API from the same origin (docs/inbox.md). The element's
// modules (packages/inbox/src/*.js, the @herald/inbox package) are served as they are, under
// /inbox/ beside the page's own files (/inbox/herald-inbox.js is the entry). Files are read once,
// when the plugin registers, from under the package root, in dev and after a build alike: tsc
// copies no non-TS files to dist/, just as migrations/ is read from the package root.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { packageRoot } from '../db/package-root.js';

const pageFiles = [
  { url: '/inbox', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/inbox/inbox.js', file: 'inbox.js', type: 'text/javascript; charset=utf-8' },
  { url: '/inbox/inbox.css', file: 'inbox.css', type: 'text/css; charset=utf-8' },
] as const;

// Nothing inline and nothing from another origin: a notification's text cannot become script,
// and the token can only be sent back to Herald. form-action 'none' keeps a login form submitted
// before inbox.js runs from putting the token in a URL.
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders = {
  'content-security-policy': contentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function inboxPageRoutes(options: { dir?: string; elementDir?: string } = {}): FastifyPluginAsync {
  const dir = options.dir ?? join(packageRoot, 'src', 'query', 'inbox-page');
  const elementDir = options.elementDir ?? join(packageRoot, 'packages', 'inbox', 'src');
  return async (app) => {
    const elementFiles = (await readdir(elementDir))
      .filter((name) => name.endsWith('.js'))
      .map((name) => ({ url: `/inbox/${name}`, path: join(elementDir, name), type: pageFiles[1].type }));
    const files = [...pageFiles.map((p) => ({ ...p, path: join(dir, p.file) })), ...elementFiles];
    for (const page of files) {
      const body = await readFile(page.path);
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      app.get(page.url, { schema: { hide: true } }, async (request, reply) => {
        // The page is small and changes with each release: browsers revalidate every time and
        // get a 304 while it is unchanged, so a new inbox.js is never paired with an old page.
        reply.headers({ ...securityHeaders, 'cache-control': 'no-cache', etag });
        const ifNoneMatch = request.headers['if-none-match'];
        if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim() === etag))
          return reply.code(304).send();
        return reply.type(page.type).send(body);
      });
    }
  };
}
