// Headless Chromium for the browser tests: Debian's chromium (apt), never a browser playwright
// downloads; .ci/run installs it when missing. playwright adds --headless and a fresh temporary
// profile (--user-data-dir) itself.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { packageRoot } from '../../src/db/package-root.js';

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath))
    throw new Error(`${chromiumPath} is missing: apt-get install chromium (.ci/run does)`);
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
}

/** With HERALD_SCREENSHOTS=1, saves the page as docs/console/<name>.png (the pictures in docs/console.md). */
export async function consoleScreenshot(page: Page, name: string): Promise<void> {
  if (process.env['HERALD_SCREENSHOTS'] !== '1') return;
  await page.screenshot({ path: join(packageRoot, 'docs', 'console', `${name}.png`), fullPage: true });
}
