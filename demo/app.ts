/**
 * The demo documents API, built only on tenantry's public API. `main.ts`
 * runs it on a real (embedded or given) PostgreSQL; the end-to-end tests
 * start it in-process on scratch databases.
 */
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type Express, type Request } from 'express';
import knexFactory, { type Knex } from 'knex';
import { container as rootContainer } from 'tsyringe';
import {
  CachedTenantStore,
  getTenantRequest,
  tenantHandler,
  JwtClaimStrategy,
  KnexTenantStore,
  loadTenancyConfig,
  registerTenantKnex,
  requireTenant,
  resolveTenant,
  silentLogger,
  tenancyErrorHandler,
  withTenancy,
  type IsolationMode,
  type TenancyConfig,
  type TenancyLogger,
  type TenantKnex,
  type TenantRecord,
  type TenantServer,
  type TenantStrategyName,
} from '../src/index';
import { DEMO_DOCUMENTS, prepareDemoData } from './demo-tenants';
import { DocumentService } from './document-service';
import {
  demoProblemHandler,
  documentNotFound,
  internalErrorHandler,
  parseDocumentChanges,
  parseNewDocument,
  routeNotFound,
} from './http-problem';
import { BODY_LIMIT_BYTES, announcedBodyLimit } from './http-server';
import { OrganizationController } from './organization-controller';

type Env = Readonly<Record<string, string | undefined>>;

/** The config file shipped with the demo (`demo/tenancy.yaml`). */
export const DEFAULT_DEMO_CONFIG_FILE = path.resolve(__dirname, '..', '..', 'demo', 'tenancy.yaml');

/** Options of {@link createDemoApp}. Explicit options win over the config file and the environment. */
export interface DemoAppOptions {
  /** Knex on the central database; the caller keeps it (close() does not destroy it). */
  readonly knex?: Knex;
  /** URL of the central database, used when `knex` is not given. */
  readonly databaseUrl?: string;
  /** Isolation mode. Default: config `isolation.mode` (`TENANCY_ISOLATION`), else `row`. */
  readonly isolation?: IsolationMode;
  /** Resolution strategies in order. Default: config `resolution.strategy` (`TENANCY_RESOLUTION_STRATEGY`). */
  readonly strategies?: readonly TenantStrategyName[];
  /** Subdomain strategy domain. Default: config `resolution.domain` (`localhost` in the demo file). */
  readonly domain?: string;
  /** YAML/JSON config file. Default: `TENANCY_CONFIG_FILE`, else `demo/tenancy.yaml`. */
  readonly configFile?: string;
  /** Environment read for `TENANCY_*`, or `false` to ignore it. Default: `process.env`. */
  readonly env?: Env | false;
  /** Prefix of tenant database names in database mode. Default: config `isolation.database.prefix` (`TENANCY_DB_PREFIX`; `tenantry_demo_` in the demo file). */
  readonly databasePrefix?: string;
  /** Servers tenant records may name in database mode (`database.servers`). Default: `{}`. */
  readonly databaseServers?: Readonly<Record<string, TenantServer>>;
  /** Run the idempotent start-up seeding. Default: `true`. */
  readonly seed?: boolean;
  /** Where tenantry's diagnostics go. Default: silent. */
  readonly logger?: TenancyLogger;
}

/** A started demo app. */
export interface DemoApp {
  /** The Express app (pass it to `app.listen()` or supertest). */
  readonly app: Express;
  /** The validated config in effect. */
  readonly config: TenancyConfig;
  /** The central (unscoped) Knex. */
  readonly central: Knex;
  /** The tenant-scoped Knex the services use. */
  readonly db: TenantKnex;
  /** The demo tenants as seeded. */
  readonly tenants: readonly TenantRecord[];
  /** Closes tenant pools, and the central Knex if the app created it. */
  close(): Promise<void>;
}

function loadConfig(options: DemoAppOptions): TenancyConfig {
  const env: Env | undefined = options.env === false ? undefined : (options.env ?? process.env);
  const file = options.configFile ?? env?.TENANCY_CONFIG_FILE ?? DEFAULT_DEMO_CONFIG_FILE;
  const loaded = loadTenancyConfig({
    ...(existsSync(file) || options.configFile !== undefined ? { file } : {}),
    ...(env !== undefined ? { env } : {}),
  });
  const { resolution, isolation, cache } = loaded.tenancy;
  // Re-validated as a whole, so an override that breaks the config still fails at start-up.
  return loadTenancyConfig({
    tenancy: {
      resolution: {
        ...resolution,
        ...(options.strategies !== undefined ? { strategy: options.strategies } : {}),
        ...(options.domain !== undefined ? { domain: options.domain } : {}),
      },
      isolation: {
        ...isolation,
        ...(options.isolation !== undefined ? { mode: options.isolation } : {}),
      },
      cache,
    },
  });
}

function documentsRouter(): Router {
  const router = Router();
  const docs = (req: Request) => getTenantRequest(req).container.resolve(DocumentService);
  router.get('/documents', async (req, res) => {
    res.json({ documents: await docs(req).list() });
  });
  router.post('/documents', async (req, res) => {
    const input = parseNewDocument(req.body);
    const created = await docs(req).create(input);
    res.status(201).location(`documents/${created.id}`).json(created);
  });
  router.get('/documents/:id', async (req, res) => {
    const found = await docs(req).get(req.params.id);
    if (found === undefined) throw documentNotFound();
    res.json(found);
  });
  router.patch('/documents/:id', async (req, res) => {
    const changes = parseDocumentChanges(req.body);
    const updated = await docs(req).update(req.params.id, changes);
    if (updated === undefined) throw documentNotFound();
    res.json(updated);
  });
  router.delete('/documents/:id', async (req, res) => {
    if (!(await docs(req).remove(req.params.id))) throw documentNotFound();
    res.status(204).end();
  });
  router.get(
    '/settings',
    tenantHandler((req, res) => {
      res.json(req.container.resolve(OrganizationController).settings());
    }),
  );
  return router;
}

/**
 * Builds the demo app: the tenant store, the scoped Knex in `mode`, the
 * seeded tenants and documents, and the routes
 * `GET/POST /documents`, `GET/PATCH/DELETE /documents/:id`, `GET /settings`
 * (also under `/api/v1/:tenant/...` when the path strategy is on).
 *
 * @example
 * ```ts
 * const demo = await createDemoApp({ databaseUrl, isolation: 'schema', strategies: ['jwt_claim', 'header'] });
 * demo.app.listen(3000);
 * ```
 */
export async function createDemoApp(options: DemoAppOptions = {}): Promise<DemoApp> {
  const config = loadConfig(options);
  const { resolution, isolation, cache } = config.tenancy;
  const logger = options.logger ?? silentLogger;
  if (options.knex === undefined && options.databaseUrl === undefined) {
    throw new TypeError('createDemoApp() needs a knex or a databaseUrl.');
  }
  const ownsKnex = options.knex === undefined;
  const central =
    options.knex ??
    knexFactory({ client: 'pg', connection: options.databaseUrl, pool: { min: 0, max: 10 } });

  const store = new CachedTenantStore(new KnexTenantStore(central), {
    ttlMs: cache.ttlMs,
    maxEntries: cache.maxEntries,
    negativeTtlMs: cache.negativeTtlMs,
  });
  const databasePrefix = options.databasePrefix ?? isolation.database.prefix;
  const db = withTenancy(central, {
    mode: isolation.mode,
    tenantTables: isolation.tenantTables,
    sharedTables: isolation.sharedTables,
    tenantColumn: isolation.tenantColumn,
    rls: isolation.rls,
    schemaPrefix: isolation.schemaPrefix,
    logger,
    database: {
      connectionBudget: isolation.database.connectionBudget,
      maxPools: isolation.database.maxPools,
      poolIdleMillis: isolation.database.idleTimeoutMs,
      databasePrefix,
      servers: { ...isolation.database.servers, ...options.databaseServers },
      ...(isolation.database.passwordRefs !== undefined
        ? { passwordRefs: isolation.database.passwordRefs }
        : {}),
      logger,
    },
  });

  // One container per app, so several demo apps (the tests) never share a TENANT_KNEX.
  const appContainer = rootContainer.createChildContainer();
  registerTenantKnex(db, appContainer);

  const close = async (): Promise<void> => {
    // Row/schema instances share the central pool: destroying them would close it.
    if (isolation.mode === 'database') await db.destroy();
    if (ownsKnex) await central.destroy();
  };

  let tenants: TenantRecord[] = [];
  try {
    if (options.seed ?? true) {
      tenants = await prepareDemoData(
        central,
        store,
        { mode: isolation.mode, schemaPrefix: isolation.schemaPrefix, databasePrefix },
        async (tenant) => {
          const service = appContainer.resolve(DocumentService);
          if ((await service.count()) > 0) return;
          for (const doc of DEMO_DOCUMENTS[tenant.id] ?? []) await service.create(doc);
        },
        logger,
      );
    }
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }

  // Lets a header/subdomain/path chain without jwt_claim still know the user, so membership is checked.
  const tokenReader = resolution.jwt ? new JwtClaimStrategy(resolution.jwt) : undefined;

  const app = express();
  app.disable('x-powered-by');
  app.use(announcedBodyLimit(BODY_LIMIT_BYTES));
  app.use(express.json({ limit: BODY_LIMIT_BYTES }));
  app.use(
    resolveTenant({
      config: resolution,
      store,
      container: appContainer,
      logger,
      ...(tokenReader
        ? { getUser: async (req: Request) => (await tokenReader.resolve(req))?.user }
        : {}),
    }),
  );
  const api = documentsRouter();
  // Every route needs a tenant and a signed-in member of it.
  const guard = requireTenant({
    requireUser: true,
    claim: resolution.jwt?.claim ?? 'tid',
    tenantsClaim: resolution.jwt?.tenantsClaim ?? 'tenants',
  });
  if (resolution.strategy.includes('path')) {
    const { prefix, stripTenantSegment } = resolution.path;
    // With stripping, /api/v1/acme/documents reaches the router as /api/v1/documents.
    app.use(stripTenantSegment ? prefix : `${prefix === '/' ? '' : prefix}/:tenant`, guard, api);
  }
  app.use(guard, api);
  app.use(routeNotFound);
  app.use(demoProblemHandler);
  // httpErrors: Express's own 4xx (a malformed %-escape in :id) as problem+json, not a 500.
  app.use(tenancyErrorHandler({ logger, httpErrors: true }));
  app.use(
    internalErrorHandler((error) => logger.error('demo request failed', { error: String(error) })),
  );

  return { app, config, central, db, tenants, close };
}
