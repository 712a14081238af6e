// Headless Chromium for the browser tests: Debian's chromium (apt), never a browser playwright
// downloads; .ci/run installs it when missing. playwright adds --headless and a fresh temporary
// profile (--user-data-dir) itself.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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
