import { execFile } from 'node:child_process';
import path from 'node:path';

/** The compiled CLI (build/src/cli/main.js), exactly as the bin runs it. */
export const CLI_MAIN = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** What a CLI run printed and returned. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Spawns the built CLI with `args`, a clean environment (PATH plus `env`)
 * and optional `node` flags (e.g. `--require loader.js`).
 *
 * @example
 * const r = await spawnCli(['tenants', 'list'], { DATABASE_URL: url });
 */
export function spawnCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  nodeFlags: readonly string[] = [],
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...nodeFlags, CLI_MAIN, ...args],
      { env: { PATH: process.env.PATH, ...env } },
      (error, stdout, stderr) => {
        resolve({
          code: error ? Number((error as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr,
        });
      },
    );
    child.stdin?.end();
  });
}

/**
 * Spawns the built CLI on a pseudo-terminal (util-linux `script`), typing
 * `input` into it: for prompts that only appear on a terminal. stdout and
 * stderr arrive merged, as a terminal shows them.
 */
export function spawnCliOnTerminal(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  input: string,
): Promise<{ code: number; output: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI_MAIN, ...args].map(quote).join(' ');
  return new Promise((resolve) => {
    const child = execFile(
      'script',
      ['-qec', command, '/dev/null'],
      { env: { PATH: process.env.PATH, ...env } },
      (error, stdout) => {
        resolve({
          code: error ? Number((error as { code?: number }).code ?? 1) : 0,
          output: stdout,
        });
      },
    );
    // Type the answer once the prompt is up (script forwards stdin to the terminal).
    setTimeout(() => child.stdin?.end(input), 1500);
  });
}
