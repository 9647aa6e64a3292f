#!/usr/bin/env node
import { runCli } from './run-cli';

runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
}).then(
  (code) => {
    process.exitCode = code;
    // A confirmation prompt may have left stdin open; nothing else should keep the process alive.
    process.stdin.unref?.();
  },
  (error: unknown) => {
    process.stderr.write(
      `tenantry: ${(error instanceof Error ? error.message : String(error)).replace(/[\r\n]+/g, ' ')}\n`,
    );
    process.exitCode = 1;
  },
);
