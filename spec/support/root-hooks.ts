import 'reflect-metadata';
import { startTestServer, stopTestServer } from './test-database';

/** Mocha root hooks: one PostgreSQL for the whole run. */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120_000);
    await startTestServer();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopTestServer();
  },
};
