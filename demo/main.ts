/**
 * `npm run demo`: starts the documents API on PORT (default 3000).
 *
 * Without DATABASE_URL it starts an embedded PostgreSQL (data under
 * `.tenantry/demo-pg`) and uses its `tenantry_demo` database, created on
 * first run. Ctrl-C stops the API and the database cleanly.
 */
import 'reflect-metadata';
import type { Server } from 'node:http';
import pg from 'pg';
import type { TenancyLogger } from '../src/index';
import { createDemoApp, type DemoApp } from './app';
import { mintDemoToken } from './demo-users';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from './embedded-postgres';

const DEMO_DATABASE = 'tenantry_demo';

const logger: TenancyLogger = {
  debug: () => undefined,
  info: (message, fields) => console.log(message, fields ?? ''),
  warn: (message, fields) => console.warn(message, fields ?? ''),
  error: (message, fields) => console.error(message, fields ?? ''),
};

async function ensureDatabase(maintenanceUrl: string, database: string): Promise<void> {
  const client = new pg.Client(maintenanceUrl);
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`create database "${database}"`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created meanwhile by another process
      });
    }
  } finally {
    await client.end();
  }
}

function tour(base: string, demo: DemoApp): string {
  const alice = mintDemoToken('alice');
  const bob = mintDemoToken('bob');
  const carol = mintDemoToken('carol', { tenant: 'globex' });
  const { strategy, header, domain, path } = demo.config.tenancy.resolution;
  const lines = [
    '',
    `tenantry demo listening on ${base}`,
    `  isolation: ${demo.config.tenancy.isolation.mode}    strategies: ${strategy.join(', ')}`,
    `  tenants: acme, globex (active), initech (suspended)    users: alice (acme), bob (globex), carol (both)`,
    '',
    'Tokens (valid 1 h; mint more with `npm run --silent demo:token -- <user> [--tenant <id>]`):',
    `  export ALICE=${alice}`,
    `  export BOB=${bob}`,
    `  export CAROL=${carol}    # acting for globex`,
    '',
    'Try:',
    `  curl -s ${base}/documents -H "Authorization: Bearer $ALICE"`,
    `  curl -s ${base}/settings -H "Authorization: Bearer $BOB"`,
    `  curl -s -X POST ${base}/documents -H "Authorization: Bearer $ALICE" -H 'Content-Type: application/json' -d '{"title":"Hello"}'`,
  ];
  if (strategy.includes('header')) {
    lines.push(
      `  curl -s ${base}/documents -H "Authorization: Bearer $ALICE" -H '${header}: globex'   # 403 TENANT_CONFLICT`,
    );
  }
  if (strategy.includes('path')) {
    lines.push(
      `  curl -s ${base}${path.prefix === '/' ? '' : path.prefix}/globex/documents -H "Authorization: Bearer $CAROL"`,
    );
  }
  if (strategy.includes('subdomain') && domain !== undefined) {
    lines.push(
      `  curl -s ${base}/documents -H 'Host: acme.${domain}' -H "Authorization: Bearer $ALICE"`,
    );
  }
  if (strategy.includes('header')) {
    lines.push(`  curl -s ${base}/documents -H '${header}: initech'   # 403 TENANT_SUSPENDED`);
  }
  lines.push('', 'Ctrl-C stops the API and the embedded database.', '');
  return lines.join('\n');
}

async function main(): Promise<void> {
  let embedded: EmbeddedPostgresServer | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  if (databaseUrl === undefined || databaseUrl.trim() === '') {
    console.log('DATABASE_URL is not set: starting an embedded PostgreSQL under .tenantry/ ...');
    embedded = await startEmbeddedPostgres({ name: 'demo-pg' });
    await ensureDatabase(embedded.url, DEMO_DATABASE);
    databaseUrl = embedded.urlFor(DEMO_DATABASE);
    console.log(`  PostgreSQL on 127.0.0.1:${embedded.port}, data in ${embedded.dataDir}`);
  }

  // Filled in as start-up proceeds; stop() closes whatever exists.
  const running: { demo?: DemoApp; server?: Server } = {};
  let stopping = false;
  const stop = async (signal: string, exitCode = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping ...`);
    await new Promise<void>((resolve) => {
      const { server } = running;
      if (!server) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await running.demo?.close().catch((error: unknown) => console.error(error));
    await embedded?.stop();
    process.exit(exitCode);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));

  let demo: DemoApp;
  try {
    demo = await createDemoApp({ databaseUrl, logger });
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  running.demo = demo;
  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? '127.0.0.1';
  const server = demo.app.listen(port, host, () => {
    // PORT=0 picks a free port: print the one actually bound.
    const address = server.address();
    const bound = address !== null && typeof address === 'object' ? address.port : port;
    console.log(tour(`http://localhost:${bound}`, demo));
  });
  running.server = server;
  server.on('error', (error) => {
    console.error(`Cannot listen on ${host}:${port}: ${error.message}. Set PORT to a free port.`);
    void stop('error', 1);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
