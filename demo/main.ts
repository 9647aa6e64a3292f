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
import { createDemoServer } from './http-server';
import { demoTour } from './demo-tour';
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
  const server = createDemoServer(demo.app);
  server.listen(port, host, () => {
    // PORT=0 picks a free port: print the one actually bound.
    const address = server.address();
    const bound = address !== null && typeof address === 'object' ? address.port : port;
    console.log(demoTour(`http://localhost:${bound}`, demo.config));
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
