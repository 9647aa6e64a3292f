/**
 * tenantry: multi-tenancy for Express, TSyringe and Knex/PostgreSQL.
 *
 * Every public export is listed here, values and types apart.
 */
import 'reflect-metadata';

// Errors
export {
  TenancyError,
  TenantRequiredError,
  TenantInvalidError,
  TenantNotFoundError,
  TenantForbiddenError,
  TenantConflictError,
  TenantSuspendedError,
  TenantUnavailableError,
  TokenInvalidError,
  TokenExpiredError,
  HostInvalidError,
  TenantScopeError,
  UnsafeQueryError,
  TenancyConfigError,
  TenantProvisioningError,
  TenantStateError,
  TenantPurgeError,
  TenantMoveError,
  tenantMovingError,
  TENANT_MOVING_SQLSTATE,
  TenantResolutionError,
  TokenKeysUnavailableError,
  DomainVerificationError,
  RequestInvalidError,
  SessionTenantMismatchError,
  SessionInvalidError,
  UpgradeTimeoutError,
  TenantRegionMismatchError,
} from './errors';
export type {
  TenancyErrorCode,
  TenancyErrorOptions,
  TenantUnavailableErrorOptions,
} from './errors';

// Logging
export {
  silentLogger,
  toTenancyLogger,
  tenantLogger,
  tenantLogFields,
  withLogFields,
  requestLogFields,
} from './logger';
export type {
  TenancyLogger,
  TenancyLoggerInput,
  TenancyLogLevel,
  FieldsFirstLogger,
  FieldsFirstLogMethod,
  LoggerStyle,
  ToTenancyLoggerOptions,
  RequestLogFieldsOptions,
} from './logger';

// Context
export { TenantContext } from './context/tenant-context';
export type { TenantContextInit, TenantSource, TenantUser } from './context/tenant-context';
export {
  runWithTenant,
  runAsSystem,
  currentTenant,
  tryCurrentTenant,
  currentSystemReason,
} from './context/tenant-scope';
export type { TenantLike } from './context/tenant-scope';
export {
  runForTenant,
  tenantJob,
  runTenantJob,
  assertServableTenant,
} from './context/run-for-tenant';
export type { TenantJob } from './context/run-for-tenant';
export { registerTenancy, createTenantContainer } from './context/tenant-container';
export {
  TENANT_ID_PATTERN,
  TENANT_ID_MAX_LENGTH,
  isValidTenantId,
  assertValidTenantId,
} from './context/tenant-id';
export { onTenancyAudit } from './context/audit';
export type { TenancyAuditEvent, TenancyAuditListener } from './context/audit';
export type {
  TenantRecord,
  TenantDomain,
  TenantStatus,
  TenantIsolationSettings,
  TenantTier,
  TenantDatabaseSettings,
} from './context/tenant-record';

// Store
export type { TenantStore, NewTenant, TenantPatch, TenantListOptions } from './store/tenant-store';
export { KnexTenantStore } from './store/knex-tenant-store';
export type { KnexTenantStoreOptions } from './store/knex-tenant-store';
export {
  centralMigrationSource,
  migrateCentral,
  CENTRAL_MIGRATIONS_TABLE,
  DEFAULT_TENANTS_TABLE,
  DEFAULT_LEDGER_TABLE,
  TENANT_MOVES_TABLE,
} from './store/central-migrations';
export type { CentralMigrationOptions } from './store/central-migrations';

// Isolation
export { withTenancy } from './isolation/with-tenancy';
export { TENANT_KNEX, registerTenantKnex } from './isolation/tenant-knex';
export type {
  TenantKnex,
  TenancyInfo,
  TenancyTiersInfo,
  UnscopedOptions,
} from './isolation/tenant-knex';
export { tenantTierOf, isTenantTier, TENANT_TIERS } from './isolation/tiered/tenant-tier';
export { createTieredTenantKnex } from './isolation/tiered/tiered-tenant-knex';
export type { TieredTenantKnex } from './isolation/tiered/tiered-tenant-knex';
export type {
  IsolationMode,
  WithTenancyOptions,
  TenantTablesOption,
  SharedTableOption,
  RlsOptions,
} from './isolation/with-tenancy-options';
export { tenantSchemaName, DEFAULT_SCHEMA_PREFIX } from './isolation/schema/tenant-schema-name';
export {
  applyRowLevelSecurity,
  rowLevelSecurityStatements,
  assertRlsSetting,
  DEFAULT_RLS_SETTING,
  RLS_POLICY_NAME,
} from './isolation/rls/row-level-security';
export type { RowLevelSecurityOptions } from './isolation/rls/row-level-security';

// Database isolation
export { createDatabaseTenantKnex } from './isolation/database/database-tenant-knex';
export type {
  DatabaseTenantKnex,
  DatabaseTenantKnexOptions,
} from './isolation/database/database-tenant-knex';
export { TenantPoolManager } from './isolation/database/tenant-pool-manager';
export type {
  DatabaseIsolationOptions,
  DatabaseConnectionDefaults,
  ResolvedTenantDatabase,
  TenantPoolStats,
} from './isolation/database/tenant-pool-manager';
export { ConnectionBudget } from './isolation/database/connection-budget';
export type { ConnectionBudgetOptions } from './isolation/database/connection-budget';
export { envCredentialsResolver } from './isolation/database/credentials-resolver';
export type { CredentialsResolver } from './isolation/database/credentials-resolver';
export type {
  PasswordRefPolicy,
  PgConnectionConfig,
  TenantDatabaseTarget,
  TenantPlacementPolicy,
  TenantServer,
} from './isolation/database/tenant-connection';
export {
  tenantDatabaseName,
  DEFAULT_DATABASE_PREFIX,
} from './isolation/database/tenant-database-name';

// HTTP half: config, in-memory/cached stores, resolution, enforcement
export { InMemoryTenantStore } from './store/in-memory-tenant-store';
export { CachedTenantStore } from './store/cached-tenant-store';
export type { CachedTenantStoreOptions, CachedTenantStoreStats } from './store/cached-tenant-store';

export {
  loadTenancyConfig,
  tenancyConfigFromEnv,
  TENANCY_ENV_VARIABLES,
} from './config/load-tenancy-config';
export type { TenancyConfigSource } from './config/load-tenancy-config';
export {
  parseTenancyConfig,
  parseResolutionConfig,
  parseCacheConfig,
} from './config/parse-tenancy-config';
export { TENANT_STRATEGY_NAMES } from './config/tenancy-config';
export type {
  TenancyConfig,
  TenancyConfigInput,
  TenancySettings,
  TenancySettingsInput,
  TenancyResolutionConfig,
  TenancyResolutionConfigInput,
  TenancyJwtConfig,
  TenancyJwtConfigInput,
  TenancyJwtIssuerConfig,
  TenancyJwtIssuerConfigInput,
  TenancyClaimPath,
  TenancyPathConfig,
  TenancyPathConfigInput,
  TenancyPropagationConfig,
  TenancyPropagationConfigInput,
  TenancyIsolationConfig,
  TenancyIsolationConfigInput,
  TenancyDatabasePoolConfig,
  TenancyDatabasePoolConfigInput,
  TenancyCacheConfig,
  TenancyCacheConfigInput,
  TenancyDatabaseConfig,
  TenancyDatabaseConfigInput,
  TenantStrategyName,
  BareDomainPolicy,
} from './config/tenancy-config';
export { resolveTenant } from './resolution/resolve-tenant';
export type { ResolveTenantOptions, PropagationSettings } from './resolution/resolve-tenant';
export { HeaderStrategy } from './resolution/header-strategy';
export type { HeaderStrategyOptions } from './resolution/header-strategy';
export { JwtClaimStrategy } from './resolution/jwt-claim-strategy';
export type {
  JwtClaimStrategyOptions,
  JwtIssuerOptions,
  JwtTenantIdMapper,
} from './resolution/jwt-claim-strategy';
export { parseClaimPath, readClaim } from './context/claim-path';
export type { ClaimPath, ParsedClaimPath } from './context/claim-path';
export { SubdomainStrategy } from './resolution/subdomain-strategy';
export type { SubdomainStrategyOptions } from './resolution/subdomain-strategy';
export { PathStrategy } from './resolution/path-strategy';
export { DomainStrategy } from './resolution/domain-strategy';
export type { DomainStrategyOptions } from './resolution/domain-strategy';
export { normalizeHostname } from './context/host-name';
export type { PathStrategyOptions } from './resolution/path-strategy';
export type {
  TenantResolution,
  TenantResolutionStrategy,
} from './resolution/tenant-resolution-strategy';
export type { TenantRequest } from './context/tenant-request';
export { claimMembership } from './context/tenant-membership';
export type { TenantMembershipCheck, ClaimMembershipOptions } from './context/tenant-membership';
export { requireTenant } from './enforcement/require-tenant';
export { tenantHandler, getTenantRequest, tryTenantRequest } from './enforcement/tenant-handler';
export type { TenantHandler } from './enforcement/tenant-handler';
export type { RequireTenantOptions } from './enforcement/require-tenant';
export { TenantScoped } from './enforcement/tenant-scoped';
export { tenancyErrorHandler } from './enforcement/tenancy-error-handler';
export type {
  TenancyErrorHandlerOptions,
  TenancyProblem,
} from './enforcement/tenancy-error-handler';
export { AuthenticationRequiredError } from './errors';
// end of HTTP half

// Lifecycle
export {
  TenantManager,
  TENANT_MANAGER_OPTIONS,
  dnsTxtDomainVerifier,
} from './lifecycle/tenant-manager';
export type {
  TenantManagerOptions,
  DomainChallenge,
  DomainVerifier,
  CreateTenantInput,
  TenantCacheInvalidator,
} from './lifecycle/tenant-manager';
export { TenantEvents } from './lifecycle/tenant-events';
export type {
  TenantEventMap,
  TenantEventName,
  TenantEventListener,
  TenantLifecycleEvent,
  TenantConfigChangedEvent,
  TenantDeletedEvent,
  TenantMoveEvent,
} from './lifecycle/tenant-events';
export { MOVE_STEPS } from './lifecycle/move/move-types';
export type {
  MoveTenantOptions,
  TenantMove,
  TenantMoveCheckpoint,
  TenantMoveStatus,
  TenantMoveStep,
} from './lifecycle/move/move-types';
export { TenantConfigService } from './lifecycle/tenant-config-service';
export type { TenantConfigServiceOptions } from './lifecycle/tenant-config-service';
export { TenantChangeNotifier } from './lifecycle/tenant-change-notifier';
export type { TenantChangeNotifierOptions } from './lifecycle/tenant-change-notifier';
export { FleetMigrator } from './lifecycle/fleet-migrator';
export type {
  FleetMigratorOptions,
  MigrateTenantsOptions,
  MigrateTenantsResult,
  TenantMigrationProgress,
  TenantMigrationState,
  TenantMigrationStatus,
} from './lifecycle/fleet-migrator';
export { toMigrationSource } from './lifecycle/migration-sources';
export { migrationProgressReporter } from './lifecycle/migration-progress';
export type { ProgressStream } from './lifecycle/migration-progress';
export type { TenantMigration, TenantMigrationsOption } from './lifecycle/migration-sources';
export { TENANT_MIGRATIONS_TABLE } from './lifecycle/tenant-placement';
export { assertServerAllowedForTenant, assertRegionLabel } from './lifecycle/tenant-residency';
export type { ResidencyPolicy } from './lifecycle/tenant-residency';
export type { TenantPlacementOptions, TenantSeed } from './lifecycle/tenant-placement';
export { runTenancyDoctor } from './lifecycle/doctor/run-tenancy-doctor';
export type {
  TenancyDoctorOptions,
  TenancyDoctorReport,
} from './lifecycle/doctor/run-tenancy-doctor';
export type { DoctorCheck, DoctorFinding, DoctorSeverity } from './lifecycle/doctor/doctor-finding';

// Realtime: WebSockets (ws) and Socket.IO live in the subpaths tenantry/ws and
// tenantry/socket.io (src/integrations/), so apps without them never load them.

// Streams: callbacks and pipelines that keep their tenant
export {
  bindTenant,
  keepTenant,
  tenantPipeline,
  keepTenantStreams,
} from './streams/tenant-streams';

// Propagation: the tenant on outgoing calls, signed, and its verifying strategy
export {
  propagateTenant,
  propagateTenantJwt,
  propagatingFetch,
} from './propagation/propagate-tenant';
export type {
  PropagateTenantOptions,
  PropagatingFetchOptions,
} from './propagation/propagate-tenant';
export type { PropagationFormat } from './context/tenant-propagation-token';
export { PropagatedStrategy } from './resolution/propagated-strategy';
export type {
  PropagatedStrategyOptions,
  PropagationNonceStore,
} from './resolution/propagated-strategy';
export { MIN_PROPAGATION_SECRET_BYTES } from './context/tenant-propagation-token';
export { MemoryNonceStore, RedisNonceStore } from './resolution/nonce-store';
export type {
  NonceStore,
  MemoryNonceStoreOptions,
  RedisNonceClient,
  RedisNonceStoreOptions,
} from './resolution/nonce-store';

// Sessions: cookie sessions (express-session) bound to the tenant they were signed in to
export {
  bindSessionToTenant,
  signInToTenant,
  signOutOfTenant,
  sessionTenantOf,
  DEFAULT_SESSION_TENANT_KEY,
} from './session/tenant-session';
export type {
  BindSessionToTenantOptions,
  SignInToTenantOptions,
  SignOutOfTenantOptions,
  TenantSession,
} from './session/tenant-session';

// Telemetry: the tenant on OpenTelemetry spans, and per-tenant counters (tenantry/prometheus)
export { tenancyTelemetry, DEFAULT_TENANT_ATTRIBUTE } from './telemetry/tenancy-telemetry';
export type {
  TenancyTelemetry,
  TenancyTelemetryOptions,
  TelemetryOption,
} from './telemetry/tenancy-telemetry';
export type {
  TenancyMetrics,
  TenantResolvedEvent,
  TenancyRefusalEvent,
  TenancyRefusalStage,
  TenantStatementEvent,
  TenantPoolWaitEvent,
} from './telemetry/tenancy-metrics';
