// The console's pages: Liquid views in src/console/views/, read from the package root (in dev
// and after a build alike). Every output is HTML-escaped unless a view says otherwise, and a
// name a view uses but the handler did not give is an error, not an empty string.
import { join } from 'node:path';
import { Liquid } from 'liquidjs';
import { packageRoot } from '../db/package-root.js';
import { consoleCapabilities, roleAllows } from '../domain/console-roles.js';
import type { ActiveSession } from '../db/stores/console-session-store.js';

export type RenderView = (view: string, data: Record<string, unknown>) => Promise<string>;

export function consoleViews(dir = join(packageRoot, 'src', 'console', 'views')): RenderView {
  const engine = new Liquid({
    root: dir,
    extname: '.liquid',
    outputEscape: 'escape',
    strictVariables: true,
    strictFilters: true,
    ownPropertyOnly: true,
    cache: true,
  });
  return (view, data) => engine.renderFile(view, data) as Promise<string>;
}

/** What the layout shows about the signed-in person: name, role, the sections they may open. */
export function layoutData(session: ActiveSession, title: string): Record<string, unknown> {
  // Every capability is named (true or false): views test them, and a missing name is an error.
  const can = Object.fromEntries(
    consoleCapabilities.map((c) => [c.replace(/[:]/g, '_'), roleAllows(session.role, c)]),
  );
  return {
    title,
    me: { email: session.email, name: session.name, role: session.role },
    can,
    csrf: session.csrfToken,
    notice: '',
  };
}

/** A time as the console shows it: UTC, to the second ('' for none). */
export function consoleTime(d: Date | null | undefined): string {
  return d === null || d === undefined ? '' : d.toISOString().replace('T', ' ').slice(0, 19);
}
