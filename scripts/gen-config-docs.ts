// Writes docs/configuration.md from src/config/schema.ts (npm run docs:config). A test fails
// when the committed file differs from what this produces.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/db/package-root.js';
import { renderConfigDocs } from '../src/config/config-docs.js';

writeFileSync(join(packageRoot, 'docs/configuration.md'), renderConfigDocs());
