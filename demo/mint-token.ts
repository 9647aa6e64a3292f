/**
 * Prints a demo JWT on stdout (nothing else, so `$(...)` captures it):
 *
 *   node build/demo/mint-token.js <alice|bob|carol> [--tenant <id>] [--ttl <seconds>]
 *   npm run --silent demo:token -- carol --tenant globex
 */
import { DEMO_USERS, mintDemoToken } from './demo-users';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nUsage: mint-token <${Object.keys(DEMO_USERS).join('|')}> [--tenant <id>] [--ttl <seconds>]\n`,
  );
  process.exit(2);
}

function main(argv: readonly string[]): void {
  let user: string | undefined;
  let tenant: string | undefined;
  let ttlSeconds: number | undefined;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (arg === '--tenant' || arg === '--ttl') {
      const value = argv[i + 1];
      if (value === undefined) usage(`Cannot read ${arg} because it has no value.`);
      i += 1;
      if (arg === '--tenant') tenant = value;
      else ttlSeconds = Number(value);
    } else if (arg.startsWith('-')) {
      usage(`Cannot use option "${arg}" because it is unknown.`);
    } else if (user === undefined) {
      user = arg;
    } else {
      usage(`Cannot mint one token for two users ("${user}" and "${arg}").`);
    }
  }
  if (user === undefined) usage('Cannot mint a token without a user name.');
  try {
    const token = mintDemoToken(user, {
      ...(tenant !== undefined ? { tenant } : {}),
      ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
    });
    process.stdout.write(`${token}\n`);
  } catch (error) {
    usage(error instanceof Error ? error.message : String(error));
  }
}

main(process.argv.slice(2));
