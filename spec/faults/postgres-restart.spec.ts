import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import pg from 'pg';
import { formatReport, runLoad } from '../../bench/load/run-load';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../demo/embedded-postgres';

/**
 * A dedicated PostgreSQL is stopped and started again while the demo is under
 * mixed read/write load: requests fail cleanly (5xx problem+json, no hang),
 * the same app process recovers, and every acknowledged write is still there.
 */
describe('PostgreSQL restarted mid-load', function () {
  this.timeout(120_000);
  let baseDir: string;
  let server: EmbeddedPostgresServer | undefined;

  before(async () => {
    baseDir = mkdtempSync(path.join(tmpdir(), 'tenantry-fault-'));
    server = await startEmbeddedPostgres({ baseDir, name: 'restart' });
    const client = new pg.Client(server.url);
    await client.connect();
    await client.query('CREATE DATABASE fault');
    await client.end();
  });

  after(async () => {
    await server?.stop();
    rmSync(baseDir, { recursive: true, force: true });
  });

  it('answers 5xx problem+json during the outage, recovers without a restart, and loses no acknowledged write', async () => {
    const first = server as EmbeddedPostgresServer;
    const port = first.port;
    let downAt = 0;
    let upAt = 0;
    const report = await runLoad({
      databaseUrl: first.urlFor('fault'),
      mode: 'row',
      tenants: 20,
      requests: 1200,
      concurrency: 8,
      timeLimitMs: 90_000,
      tolerateServerErrors: true,
      throttleDuringMidwayMs: 100,
      runAfterMidwayMs: 3000,
      midway: async () => {
        downAt = Date.now();
        await server?.stop();
        await sleep(1500);
        server = await startEmbeddedPostgres({ baseDir, name: 'restart', port });
        upAt = Date.now();
      },
    });
    const summary = `${formatReport(report)}\n  outage ${upAt - downAt} ms`;
    if (process.env.TENANTRY_FAULT_VERBOSE) console.log(summary);
    // The fault really hit, and was answered cleanly.
    expect(report.serverErrors, summary).to.be.greaterThan(0);
    expect(report.badErrorBodies, summary).to.equal(0);
    expect(report.byStatus.transport ?? 0, `no hang or dropped connection: ${summary}`).to.equal(0);
    // No isolation or durability violation.
    expect(report.crossTenantReads, summary).to.equal(0);
    expect(report.wrongTenantWrites, summary).to.equal(0);
    expect(report.lostWrites, summary).to.equal(0);
    expect(report.unexpected, summary).to.equal(0);
    // Recovered in the same process: requests started a second after the restart all succeed.
    expect(report.midwayDoneAt, summary).to.be.a('number');
    const settled = report.timeline.filter((t) => t.at > (report.midwayDoneAt as number) + 1000);
    expect(settled.length, summary).to.be.greaterThan(100);
    expect(settled.filter((t) => !t.ok).length, summary).to.equal(0);
  });
});
