/**
 * tenantry/ws: tenancy for `ws` WebSocket servers (and the building blocks
 * for any other WebSocket server). `ws` is an optional peer: this module
 * never imports it, so apps without WebSockets never load it.
 *
 * @example
 * ```ts
 * import { wsTenancy } from 'tenantry/ws';
 * ```
 */
export { wsTenancy } from '../realtime/ws-tenancy';
export type {
  WsTenancy,
  WsTenancyOptions,
  TenantWebSocket,
  TenantWebSocketServer,
} from '../realtime/ws-tenancy';
export {
  createUpgradeResolver,
  writeUpgradeRefusal,
  DEFAULT_UPGRADE_TIMEOUT_MS,
} from '../realtime/upgrade-resolver';
export type {
  UpgradeResolverOptions,
  UpgradeRefusal,
  UpgradeResolution,
} from '../realtime/upgrade-resolver';
export { TenantConnections, TENANT_CLOSE_CODES } from '../realtime/tenant-connections';
export type { TenantConnectionsOptions, CloseConnection } from '../realtime/tenant-connections';
