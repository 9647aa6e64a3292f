import type { IncomingMessage } from 'node:http';
import { runInTenantScope } from '../context/tenant-scope';
import { connectionsOf, type TenantConnections } from './tenant-connections';
import { createUpgradeResolver } from './upgrade-resolver';
import type { WsTenancyOptions } from './ws-tenancy';

/** What {@link socketIoTenancy} needs of a Socket.IO server-side socket (structural). */
export interface TenantIoSocket {
  readonly request: IncomingMessage;
  use(fn: (packet: unknown[], next: (err?: Error) => void) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  disconnect(close?: boolean): unknown;
  once(event: 'disconnect', listener: () => void): unknown;
}

/** The error a refused Socket.IO handshake gets: the client's `connect_error`. */
export interface TenantIoRefusal extends Error {
  /** The HTTP status and problem document the same refusal gets over HTTP. */
  readonly data: { readonly status: number; readonly problem: unknown };
}

/** Options of {@link socketIoTenancy}: the same as `wsTenancy()`'s. */
export type SocketIoTenancyOptions = WsTenancyOptions;

/** The Socket.IO adapter returned by {@link socketIoTenancy}. */
export interface SocketIoTenancy {
  /**
   * The `io.use()` middleware: resolves the handshake request's tenant with
   * your Express middleware; a refusal becomes the client's `connect_error`
   * (message: the problem title, `data`: status and problem). An admitted
   * socket's event handlers run in its tenant scope, entered per packet.
   */
  readonly middleware: (socket: TenantIoSocket, next: (err?: Error) => void) => void;
  /** The socket's tenant id (undefined for a socket this adapter did not admit). */
  tenantOf(socket: TenantIoSocket): string | undefined;
  /** The connections tracked for status re-checks. */
  readonly connections: TenantConnections;
}

/** Event emitted to a socket just before it is disconnected because of its tenant. */
export const TENANT_CLOSED_EVENT = 'tenancy:closed';

/**
 * Tenancy for Socket.IO servers: `io.use(tenancy.middleware)` resolves and
 * enforces the handshake's tenant with your Express middleware (same
 * strategies and errors as HTTP), binds every incoming packet's handlers to
 * the socket's tenant scope, and disconnects the sockets of a tenant
 * suspended or deleted while connected (after emitting `tenancy:closed`
 * with `{ code, reason }`, the WebSocket close code and the error code).
 *
 * @example
 * ```ts
 * const tenancy = socketIoTenancy({ handlers: [resolveTenant({ store }), requireTenant()], store });
 * io.use(tenancy.middleware);
 * io.on('connection', (socket) => {
 *   socket.on('list', async (ack) => ack(await db('documents').select('title')));
 * });
 * ```
 */
export function socketIoTenancy(options: SocketIoTenancyOptions): SocketIoTenancy {
  const resolveUpgrade = createUpgradeResolver(options);
  const tracked = connectionsOf(options);
  const ids = new WeakMap<TenantIoSocket, string>();

  function middleware(socket: TenantIoSocket, next: (err?: Error) => void): void {
    resolveUpgrade(socket.request).then(
      (outcome) => {
        if (!outcome.ok) {
          const { status, body, headers } = outcome.refusal;
          let problem: unknown = body;
          if (String(headers['content-type'] ?? '').includes('json')) {
            try {
              problem = JSON.parse(body) as unknown;
            } catch {
              problem = body;
            }
          }
          const title =
            typeof problem === 'object' && problem !== null && 'title' in problem
              ? String((problem as { title: unknown }).title)
              : 'Connection refused';
          const refusal = Object.assign(new Error(title), { data: { status, problem } });
          next(refusal);
          return;
        }
        const { tenant, tenantId } = outcome;
        if (tenant !== undefined && tenantId !== undefined) {
          ids.set(socket, tenantId);
          // Each packet's handlers are dispatched from inside this call (Socket.IO
          // emits them on process.nextTick, which keeps the scope).
          socket.use((_packet, go) => runInTenantScope(tenant, () => go()));
          const untrack = tracked.track(tenantId, (code, reason) => {
            socket.emit(TENANT_CLOSED_EVENT, { code, reason });
            socket.disconnect(true);
          });
          socket.once('disconnect', () => {
            untrack();
            outcome.release();
          });
        } else {
          socket.once('disconnect', outcome.release);
        }
        next();
      },
      (error: unknown) => next(error instanceof Error ? error : new Error('Connection refused')),
    );
  }

  return {
    middleware,
    connections: tracked,
    tenantOf: (socket) => ids.get(socket),
  };
}
