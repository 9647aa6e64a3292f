/**
 * Runs every build/bench/*.bench.js in sequence (one process each), so
 * `npm run bench` prints every ratio of the project in one go.
 *
 *   npm run bench
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const dir = __dirname;
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.js'))
  .sort();
let failed = 0;
for (const file of benches) {
  console.log(`\n=== ${file} ===`);
  const result = spawnSync(process.execPath, ['--enable-source-maps', path.join(dir, file)], {
    stdio: 'inherit',
    env: process.env,
  });
  if (result.status !== 0) failed += 1;
}
if (failed > 0) {
  console.error(`${failed} bench(es) failed`);
  process.exitCode = 1;
}
