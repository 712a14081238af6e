// npm run bench: every benchmark in turn, each in its own process, printing its table.
import { spawnSync } from 'node:child_process';
import { packageRoot } from '../src/db/package-root.js';

let failed = 0;
for (const name of ['ingest', 'pipeline', 'channels', 'lanes', 'scale']) {
  process.stdout.write(`\n== bench:${name} ==\n`);
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', `bench/${name}.ts`, ...process.argv.slice(2)],
    { cwd: packageRoot, stdio: 'inherit' },
  );
  if (result.status !== 0) failed += 1;
}
process.exit(failed === 0 ? 0 : 1);
