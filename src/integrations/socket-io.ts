/**
 * tenantry/socket.io: tenancy for Socket.IO servers. `socket.io` is an
 * optional peer: this module never imports it, so apps without Socket.IO
 * never load it. `TenantConnections` is the same class as in `tenantry/ws`.
 *
 * @example
 * ```ts
 * import { socketIoTenancy } from 'tenantry/socket.io';
 * ```
 */
export { socketIoTenancy, TENANT_CLOSED_EVENT } from '../realtime/socket-io-tenancy';
export type {
  SocketIoTenancy,
  SocketIoTenancyOptions,
  TenantIoSocket,
  TenantIoRefusal,
} from '../realtime/socket-io-tenancy';
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
