/**
 * The load test's engine: starts the demo in one isolation mode, adds many
 * tenants, drives a bounded mix of reads and writes over loopback HTTP, and
 * verifies every response while it runs and every row afterwards against a
 * client-side model of the acknowledged writes. Used by the load script
 * (bench/load/load-test.ts) and by the small CI spec. Not library code.
 *
 * Every title and body written carries its tenant id, so any document seen
 * by or stored for the wrong tenant is recognised no matter the timing.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import knexFactory, { type Knex } from 'knex';
import { KnexTenantStore, TenantManager, type TenancyLogger } from '../../src/index';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { demoTenantMigrations } from '../../demo/demo-tenants';
import { DEMO_JWT_SECRET } from '../../demo/demo-users';
import { readEveryDocument, type StoredDocument } from './tenant-data';

/** Options of {@link runLoad}. */
export interface LoadOptions {
  /** URL of an empty central database. */
  readonly databaseUrl: string;
  /** Isolation mode. */
  readonly mode: 'row' | 'schema' | 'database';
  /** Tenants driven (besides the demo's own, which must stay untouched). Default: 100. */
  readonly tenants?: number;
  /** Requests sent. Default: 10,000. */
  readonly requests?: number;
  /** Requests in flight. Default: 32. */
  readonly concurrency?: number;
  /** Hard stop, in ms. Default: 600,000. */
  readonly timeLimitMs?: number;
  /** Prefix of tenant databases (database mode; <= 21 chars). Default: `load_`. */
  readonly databasePrefix?: string;
  /** Called once when half of the requests were sent (fault injection). */
  readonly midway?: () => Promise<void>;
  /** While the midway hook runs, each worker pauses this long between requests. Default: 0. */
  readonly throttleDuringMidwayMs?: number;
  /**
   * Keeps sending past `requests` until this long after the midway hook
   * finished, so recovery is observed over a fixed time, not whatever
   * requests happened to be left. Default: 0.
   */
  readonly runAfterMidwayMs?: number;
  /** Whether 5xx answers are expected (faults): they are then counted, not violations. */
  readonly tolerateServerErrors?: boolean;
  /** tenantry's diagnostics from the demo app. Default: silent. */
  readonly logger?: TenancyLogger;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

/** What a run found. */
export interface LoadReport {
  readonly mode: string;
  readonly tenants: number;
  readonly requests: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly byOperation: Readonly<Record<string, number>>;
  readonly byStatus: Readonly<Record<string, number>>;
  /** Documents of another tenant seen in an answer. */
  readonly crossTenantReads: number;
  /** Rows stored in a tenant's storage that carry another tenant's mark. */
  readonly wrongTenantWrites: number;
  /** Acknowledged writes missing or different afterwards. */
  readonly lostWrites: number;
  /** Answers that were neither the expected success nor an allowed error. */
  readonly unexpected: number;
  /** 5xx answers (allowed only with tolerateServerErrors) and transport failures. */
  readonly serverErrors: number;
  /** 5xx bodies that were not problem+json. */
  readonly badErrorBodies: number;
  /** Rows of the demo's own tenants that changed. */
  readonly untouchedChanged: number;
  /** First few violation details. */
  readonly samples: readonly string[];
  /** Every request: when it started (ms since the load began) and whether it got a non-5xx answer. */
  readonly timeline: readonly { readonly at: number; readonly ok: boolean }[];
  /** When the midway hook finished (ms since the load began), if it ran. */
  readonly midwayDoneAt?: number;
}

interface Doc {
  /** Values the row may hold (several after an unacknowledged patch). */
  values: Set<string>;
  /** An unacknowledged delete may have happened. */
  maybeDeleted: boolean;
  busy: boolean;
}

interface TenantModel {
  readonly id: string;
  readonly token: string;
  readonly docs: Map<string, Doc>;
  seq: number;
}

const rnd = (n: number): number => Math.floor(Math.random() * n);

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function pool<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) {
        const item = items[next] as T;
        next += 1;
        await fn(item);
      }
    }),
  );
}

/**
 * Runs one load test.
 *
 * @example
 * const report = await runLoad({ databaseUrl, mode: 'row', tenants: 100, requests: 1000 });
 */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const tenantsWanted = options.tenants ?? 100;
  const total = options.requests ?? 10_000;
  const concurrency = options.concurrency ?? 32;
  const deadline = performance.now() + (options.timeLimitMs ?? 600_000);
  const log = options.log ?? (() => undefined);
  const databasePrefix = options.databasePrefix ?? 'load_';
  const central: Knex = knexFactory({
    client: 'pg',
    connection: options.databaseUrl,
    pool: { min: 0, max: 20 },
    // Faults make knex's pool print every refused connection; the report counts them instead.
    ...(options.tolerateServerErrors
      ? { log: { warn: () => undefined, error: () => undefined, debug: () => undefined } }
      : {}),
  });
  let demo: DemoApp | undefined;
  let server: Server | undefined;
  const samples: string[] = [];
  const note = (s: string) => {
    if (samples.length < 20) samples.push(s);
  };
  try {
    demo = await createDemoApp({
      knex: central,
      isolation: options.mode,
      env: false,
      databasePrefix,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    const manager = new TenantManager({
      knex: central,
      store: new KnexTenantStore(central),
      mode: options.mode,
      schemaPrefix: demo.config.tenancy.isolation.schemaPrefix,
      databasePrefix,
      migrations: demoTenantMigrations(options.mode),
    });
    const ids = Array.from(
      { length: tenantsWanted },
      (_, i) => `load-${String(i).padStart(4, '0')}`,
    );
    const t0 = performance.now();
    await pool(ids, options.mode === 'database' ? 2 : 4, async (id) => {
      await manager.create({ id, name: `Load ${id}` });
    });
    log(
      `created ${ids.length} ${options.mode}-mode tenants in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const untouchedBefore = await readEveryDocument(options.databaseUrl, options.mode);

    const models: TenantModel[] = ids.map((id) => ({
      id,
      token: jwt.sign({ tid: id, tenants: [id] }, DEMO_JWT_SECRET, {
        algorithm: 'HS256',
        subject: `user-of-${id}`,
        expiresIn: 3600,
      }),
      docs: new Map(),
      seq: 0,
    }));
    const owner = new Map<string, string>();

    server = demo.app.listen(0, '127.0.0.1');
    await new Promise((r) => server?.once('listening', r));
    const port = (server.address() as AddressInfo).port;

    const byOperation: Record<string, number> = {};
    const byStatus: Record<string, number> = {};
    const latencies: number[] = [];
    let crossTenantReads = 0;
    let unexpected = 0;
    let serverErrors = 0;
    let badErrorBodies = 0;
    let sent = 0;
    let completed = 0;
    const timeline: { at: number; ok: boolean }[] = [];
    let loadStart = performance.now();
    let midwayDoneAt: number | undefined;
    let midwayDone = options.midway === undefined;
    let midwayRunning: Promise<void> | undefined;
    let midwayActive = false;

    const call = async (
      tenant: TenantModel,
      method: string,
      path: string,
      body?: unknown,
    ): Promise<{ status: number; json: unknown }> => {
      // Half the requests name the tenant in the path too (the same tenant: no conflict).
      const url =
        Math.random() < 0.5
          ? `http://127.0.0.1:${port}${path}`
          : `http://127.0.0.1:${port}/api/v1/${tenant.id}${path}`;
      const started = performance.now();
      const entry = { at: started - loadStart, ok: false };
      timeline.push(entry);
      try {
        const res = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${tenant.token}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        latencies.push(performance.now() - started);
        byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
        entry.ok = res.status < 500;
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        if (res.status >= 500) {
          serverErrors += 1;
          const type = res.headers.get('content-type') ?? '';
          if (
            !type.startsWith('application/problem+json') ||
            typeof (json as { code?: unknown })?.code !== 'string'
          ) {
            badErrorBodies += 1;
            note(`5xx without a problem body: ${res.status} ${text.slice(0, 120)}`);
          }
          if (!options.tolerateServerErrors) {
            unexpected += 1;
            note(`${method} ${path} for ${tenant.id}: ${res.status} ${text.slice(0, 200)}`);
          }
        }
        return { status: res.status, json };
      } catch (error) {
        latencies.push(performance.now() - started);
        byStatus.transport = (byStatus.transport ?? 0) + 1;
        serverErrors += 1;
        if (!options.tolerateServerErrors) {
          unexpected += 1;
          note(`${method} ${path} for ${tenant.id}: ${String(error)}`);
        }
        return { status: 0, json: undefined };
      }
    };

    const mark = (tenant: TenantModel, kind: string) => `${tenant.id}|${kind}|${(tenant.seq += 1)}`;
    const mine = (tenant: TenantModel, value: unknown) =>
      typeof value === 'string' && value.startsWith(`${tenant.id}|`);
    const expectStatus = (op: string, tenant: TenantModel, got: number, ok: number[]) => {
      if (ok.includes(got) || got >= 500 || got === 0) return;
      unexpected += 1;
      note(`${op} for ${tenant.id}: status ${got}, wanted ${ok.join('/')}`);
    };
    const pickDoc = (tenant: TenantModel): [string, Doc] | undefined => {
      const free = [...tenant.docs].filter(([, d]) => !d.busy && !d.maybeDeleted);
      return free.length === 0 ? undefined : free[rnd(free.length)];
    };

    async function list(tenant: TenantModel): Promise<void> {
      byOperation.list = (byOperation.list ?? 0) + 1;
      const r = await call(tenant, 'GET', '/documents');
      expectStatus('list', tenant, r.status, [200]);
      if (r.status === 200) {
        for (const d of (r.json as { documents: { id: string; title: string }[] }).documents) {
          const known = owner.get(d.id);
          if (!mine(tenant, d.title) || (known !== undefined && known !== tenant.id)) {
            crossTenantReads += 1;
            note(`list for ${tenant.id} showed ${d.id} "${d.title}"`);
          }
        }
      }
    }

    async function one(): Promise<void> {
      const tenant = models[rnd(models.length)] as TenantModel;
      const roll = Math.random();
      if (roll < 0.3 || tenant.docs.size === 0) {
        byOperation.create = (byOperation.create ?? 0) + 1;
        const title = mark(tenant, 'title');
        const body = mark(tenant, 'body');
        const r = await call(tenant, 'POST', '/documents', { title, body });
        expectStatus('create', tenant, r.status, [201]);
        if (r.status === 201) {
          const id = (r.json as { id: string }).id;
          tenant.docs.set(id, {
            values: new Set([`${title}\n${body}`]),
            maybeDeleted: false,
            busy: false,
          });
          owner.set(id, tenant.id);
        }
        return;
      }
      if (roll < 0.55) {
        await list(tenant);
        return;
      }
      if (roll < 0.9) {
        const picked = pickDoc(tenant);
        if (picked === undefined) {
          await list(tenant);
          return;
        }
        const [id, doc] = picked;
        doc.busy = true;
        try {
          if (roll < 0.72) {
            byOperation.get = (byOperation.get ?? 0) + 1;
            const r = await call(tenant, 'GET', `/documents/${id}`);
            expectStatus('get', tenant, r.status, [200]);
            if (r.status === 200 && !mine(tenant, (r.json as { title: string }).title)) {
              crossTenantReads += 1;
              note(`get ${id} for ${tenant.id} answered ${JSON.stringify(r.json)}`);
            }
          } else if (roll < 0.85) {
            byOperation.patch = (byOperation.patch ?? 0) + 1;
            const title = mark(tenant, 'patched');
            const r = await call(tenant, 'PATCH', `/documents/${id}`, { title });
            expectStatus('patch', tenant, r.status, [200]);
            // A patch changes the title only; unacknowledged, either outcome is possible.
            const patched = [...doc.values].map((v) => `${title}\n${v.split('\n')[1] ?? ''}`);
            if (r.status === 200) doc.values = new Set(patched);
            else for (const v of patched) doc.values.add(v);
          } else {
            byOperation.delete = (byOperation.delete ?? 0) + 1;
            const r = await call(tenant, 'DELETE', `/documents/${id}`);
            expectStatus('delete', tenant, r.status, [204]);
            if (r.status === 204) tenant.docs.delete(id);
            else doc.maybeDeleted = true;
          }
        } finally {
          doc.busy = false;
        }
        return;
      }
      // Probes: another tenant's document must look missing, whatever the verb.
      const others = [...owner].filter(([, t]) => t !== tenant.id);
      if (others.length === 0) {
        await list(tenant);
        return;
      }
      const [foreignId] = others[rnd(others.length)] as [string, string];
      const verb = ['GET', 'PATCH', 'DELETE'][rnd(3)] as string;
      byOperation[`foreign-${verb.toLowerCase()}`] =
        (byOperation[`foreign-${verb.toLowerCase()}`] ?? 0) + 1;
      const r = await call(
        tenant,
        verb,
        `/documents/${foreignId}`,
        verb === 'PATCH' ? { title: mark(tenant, 'intrusion') } : undefined,
      );
      if (r.status >= 200 && r.status < 300) {
        crossTenantReads += 1;
        note(`${verb} of foreign ${foreignId} by ${tenant.id} answered ${r.status}`);
      } else expectStatus(`foreign-${verb}`, tenant, r.status, [404]);
    }

    const started = performance.now();
    loadStart = started;
    const runAfterMidwayMs = options.midway === undefined ? 0 : (options.runAfterMidwayMs ?? 0);
    const more = (): boolean =>
      sent < total ||
      (runAfterMidwayMs > 0 &&
        (midwayActive ||
          (midwayDoneAt !== undefined &&
            performance.now() - started < midwayDoneAt + runAfterMidwayMs)));
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (more() && performance.now() < deadline) {
          sent += 1;
          if (!midwayDone && sent >= total / 2) {
            midwayDone = true;
            midwayActive = true;
            midwayRunning = (options.midway?.() ?? Promise.resolve())
              .then(() => {
                midwayDoneAt = performance.now() - started;
              })
              .catch((e: unknown) => note(`midway hook failed: ${String(e)}`))
              .finally(() => {
                midwayActive = false;
              });
          }
          if (midwayActive && (options.throttleDuringMidwayMs ?? 0) > 0) {
            await new Promise((r) => setTimeout(r, options.throttleDuringMidwayMs));
          }
          await one();
          completed += 1;
          if (completed % 2000 === 0) log(`  ${completed}/${total} requests answered`);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    // Verification needs the database back, whatever the hook did.
    await midwayRunning;

    // Afterwards: every row, read around tenantry.
    const stored = await readEveryDocument(options.databaseUrl, options.mode);
    let wrongTenantWrites = 0;
    let lostWrites = 0;
    const storedBy = new Map<string, StoredDocument>();
    const loadIds = new Set(ids);
    for (const d of stored) {
      if (!loadIds.has(d.tenant)) continue;
      storedBy.set(d.id, d);
      if (!d.title.startsWith(`${d.tenant}|`) || !d.body.startsWith(`${d.tenant}|`)) {
        wrongTenantWrites += 1;
        note(`row ${d.id} in ${d.tenant} holds "${d.title}" / "${d.body}"`);
      }
    }
    for (const tenant of models) {
      for (const [id, doc] of tenant.docs) {
        const row = storedBy.get(id);
        if (row === undefined) {
          if (!doc.maybeDeleted) {
            lostWrites += 1;
            note(`acknowledged document ${id} of ${tenant.id} is gone`);
          }
        } else if (row.tenant !== tenant.id || !doc.values.has(`${row.title}\n${row.body}`)) {
          lostWrites += 1;
          note(
            `document ${id} of ${tenant.id} holds ${row.tenant}/"${row.title}", wanted ${[...doc.values].join(' or ')}`,
          );
        }
      }
    }
    const untouchedAfter = (await readEveryDocument(options.databaseUrl, options.mode)).filter(
      (d) => !loadIds.has(d.tenant),
    );
    const untouchedPrior = untouchedBefore.filter((d) => !loadIds.has(d.tenant));
    const untouchedChanged =
      JSON.stringify(untouchedAfter) === JSON.stringify(untouchedPrior)
        ? 0
        : Math.max(1, Math.abs(untouchedAfter.length - untouchedPrior.length));
    latencies.sort((a, b) => a - b);
    return {
      mode: options.mode,
      tenants: ids.length,
      requests: latencies.length,
      seconds,
      perSecond: latencies.length / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      byOperation,
      byStatus,
      crossTenantReads,
      wrongTenantWrites,
      lostWrites,
      unexpected,
      serverErrors,
      badErrorBodies,
      untouchedChanged,
      samples,
      timeline,
      ...(midwayDoneAt !== undefined ? { midwayDoneAt } : {}),
    };
  } finally {
    if (server) await new Promise((r) => server?.close(r));
    await demo?.close();
    await central.destroy();
  }
}

/** One line per figure, for humans. */
export function formatReport(r: LoadReport): string {
  const ops = Object.entries(r.byOperation)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const statuses = Object.entries(r.byStatus)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  return [
    `${r.mode} mode: ${r.requests} requests over ${r.tenants} tenants in ${r.seconds.toFixed(1)} s (${r.perSecond.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms)`,
    `  operations: ${ops}`,
    `  statuses:   ${statuses}`,
    `  cross-tenant reads ${r.crossTenantReads}, wrong-tenant writes ${r.wrongTenantWrites}, lost acknowledged writes ${r.lostWrites}, unexpected answers ${r.unexpected}, 5xx ${r.serverErrors} (non-problem bodies ${r.badErrorBodies}), demo tenants' rows changed ${r.untouchedChanged}`,
    ...r.samples.map((s) => `  ! ${s}`),
  ].join('\n');
}

/** Whether the run found no isolation or durability violation. */
export function isClean(r: LoadReport): boolean {
  return (
    r.crossTenantReads === 0 &&
    r.wrongTenantWrites === 0 &&
    r.lostWrites === 0 &&
    r.unexpected === 0 &&
    r.badErrorBodies === 0 &&
    r.untouchedChanged === 0
  );
}

/** A unique short prefix for tenant databases. */
export function uniquePrefix(label: string): string {
  return `${label}${randomUUID().slice(0, 6)}_`;
}
