import type { TenantRecord } from '../context/tenant-record';
import { TenantRegionMismatchError } from '../errors';
import type { TenantServer } from '../isolation/database/tenant-connection';
import { quoteInput, quoteValue } from '../message-text';

const REGION = /^[A-Za-z0-9_.-]{1,63}$/;

/**
 * What data residency checks a placement against: the configured servers
 * with their `region` labels, and the region of the central server (where
 * row- and schema-tier tenants live, and database-tier tenants that name no
 * server).
 *
 * @example
 * ```ts
 * const residency: ResidencyPolicy = {
 *   servers: { 'eu-1': { host: 'pg-eu1.internal', region: 'eu' }, 'us-1': { host: 'pg-us1.internal', region: 'us' } },
 *   centralRegion: 'eu',
 * };
 * ```
 */
export interface ResidencyPolicy {
  /** The servers of the placement map (`database.servers`), by name. Default: `{}`. */
  readonly servers?: Readonly<Record<string, TenantServer>> | undefined;
  /** Region label of the central server (the base connection's). Default: none (unlabelled). */
  readonly centralRegion?: string | undefined;
}

/**
 * Checks a region label: 1-63 of `[A-Za-z0-9_.-]`. Throws TypeError naming
 * `where` otherwise.
 *
 * @example
 * ```ts
 * assertRegionLabel('eu-west', 'region option'); // 'eu-west'
 * ```
 */
export function assertRegionLabel(value: unknown, where: string): string {
  if (typeof value !== 'string' || !REGION.test(value)) {
    throw new TypeError(
      `Cannot use ${where} ${quoteValue(value)} because a region label is 1-63 of [A-Za-z0-9_.-].`,
    );
  }
  return value;
}

/** Validates every region label of a policy (at start-up). */
export function assertResidencyPolicy(policy: ResidencyPolicy): void {
  if (policy.centralRegion !== undefined) assertRegionLabel(policy.centralRegion, 'centralRegion');
  for (const [name, server] of Object.entries(policy.servers ?? {})) {
    if (server?.region !== undefined)
      assertRegionLabel(server.region, `region of server "${name}"`);
  }
}

/**
 * Data residency: refuses to place `record` on a server outside its pinned
 * region (`isolation.region`) with 409 `TENANT_REGION_MISMATCH`. `server` is
 * a name of the placement map, or `undefined` for the central server (the
 * row and schema tiers, and a database that names no server). A server with
 * no region label is outside every region (fail closed). An unpinned tenant
 * may go anywhere. Provisioning calls it before creating storage; a mover
 * calls it before creating the target.
 *
 * @example
 * ```ts
 * assertServerAllowedForTenant(record, 'eu-1', { servers, centralRegion: 'eu' });
 * ```
 */
export function assertServerAllowedForTenant(
  record: Pick<TenantRecord, 'id' | 'isolation'>,
  server: string | undefined,
  policy: ResidencyPolicy,
): void {
  const pinned = record.isolation?.region;
  if (pinned === undefined) return;
  const where = server === undefined ? 'the central server' : `server ${quoteInput(server)}`;
  const region = server === undefined ? policy.centralRegion : policy.servers?.[server]?.region;
  if (region === pinned) return;
  const because =
    region === undefined
      ? `${where} has no region label`
      : `${where} is in region ${quoteInput(region)}`;
  throw new TenantRegionMismatchError(
    `Cannot place tenant ${quoteInput(record.id)} on ${where} because it is pinned to region ${quoteInput(pinned)} and ${because}. ` +
      `Pick a server labelled ${quoteInput(pinned)}${server === undefined ? ' (the database tier with --database-server), or label the central server (centralRegion)' : ''}.`,
  );
}
