import { expect } from 'chai';
import { formatReport, runLoad, uniquePrefix } from '../../bench/load/run-load';
import { adminQuery, createScratchDatabase, testServer } from '../support/test-database';

/**
 * The small version of bench/load (the full one is `node build/bench/load/load-test.js`):
 * 100 tenants, 1,000 mixed requests in row mode, every answer and every row checked.
 */
describe('isolation under concurrent load (row mode, 100 tenants x 1,000 requests)', function () {
  this.timeout(120_000);
  const prefix = uniquePrefix('lds');

  after(async () => {
    const dbs = await adminQuery('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [
      prefix,
    ]);
    for (const row of dbs.rows as { datname: string }[]) {
      await adminQuery(`DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
    }
  });

  it('serves every tenant only its own documents and keeps every acknowledged write', async () => {
    const database = await createScratchDatabase('load');
    const report = await runLoad({
      databaseUrl: testServer().urlFor(database),
      mode: 'row',
      tenants: 100,
      requests: 1000,
      concurrency: 16,
      timeLimitMs: 90_000,
      databasePrefix: prefix,
    });
    const summary = formatReport(report);
    expect(report.requests, summary).to.equal(1000);
    expect(report.byOperation.create ?? 0, summary).to.be.greaterThan(100);
    expect(report.byOperation.list ?? 0, summary).to.be.greaterThan(50);
    expect(
      (report.byOperation['foreign-get'] ?? 0) + (report.byOperation['foreign-patch'] ?? 0),
      summary,
    ).to.be.greaterThan(0);
    expect(report.crossTenantReads, summary).to.equal(0);
    expect(report.wrongTenantWrites, summary).to.equal(0);
    expect(report.lostWrites, summary).to.equal(0);
    expect(report.unexpected, summary).to.equal(0);
    expect(report.serverErrors, summary).to.equal(0);
    expect(report.untouchedChanged, summary).to.equal(0);
  });
});
