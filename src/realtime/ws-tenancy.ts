import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TenantContext } from '../context/tenant-context';
import { runInTenantScope } from '../context/tenant-scope';
import { toTenancyLogger } from '../logger';
import type { TenantStore } from '../store/tenant-store';
import { connectionsOf, type TenantConnections } from './tenant-connections';
import {
  createUpgradeResolver,
  writeUpgradeRefusal,
  type UpgradeResolverOptions,
} from './upgrade-resolver';

/** What {@link wsTenancy} needs of a `ws` WebSocket (structural: `ws` need not be imported). */
export interface TenantWebSocket {
  close(code?: number, reason?: string): void;
  once(event: 'close', listener: () => void): unknown;
}

/** What {@link wsTenancy} needs of a `ws` `WebSocketServer` created with `noServer: true`. */
export interface TenantWebSocketServer<W extends TenantWebSocket> {
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    callback: (client: W, request: IncomingMessage) => void,
  ): void;
}

/**
 * Options of {@link wsTenancy}: those of `createUpgradeResolver()` and of
 * `TenantConnections` (or your own `connections`).
 *
 * @example
 * ```ts
 * wsTenancy({ handlers: [resolveTenant({ store }), requireTenant()], store, recheckIntervalMs: 10_000 });
 * ```
 */
export interface WsTenancyOptions extends UpgradeResolverOptions {
  /** Where connected tenants' status is re-checked. Required unless `connections` is given. */
  readonly store?: TenantStore | undefined;
  /** Re-check interval of the connections' tenants (see `TenantConnections`). Default: `30000` ms. */
  readonly recheckIntervalMs?: number | undefined;
  /**
   * A shared `TenantConnections` (e.g. one driven by a `TenantChangeNotifier`).
   * Default: a new one on `store` (then `store` is required).
   */
  readonly connections?: TenantConnections | undefined;
}

/** The `ws` adapter returned by {@link wsTenancy}. */
export interface WsTenancy<W extends TenantWebSocket> {
  /**
   * Resolves the upgrade request's tenant; on success completes the upgrade
   * with `server` and calls `onConnection` (outside any tenant scope), on
   * refusal writes the HTTP status and problem+json and closes the socket.
   * Never throws.
   */
  handleUpgrade(
    server: TenantWebSocketServer<W>,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    onConnection: (client: W, request: IncomingMessage) => void,
  ): void;
  /**
   * Wraps a handler of `client`'s events: each call runs in the connection's
   * tenant scope, entered anew per call. A handler that throws or rejects is
   * logged, never crashes the process.
   */
  bind<A extends unknown[]>(client: W, handler: (...args: A) => unknown): (...args: A) => void;
  /** The connection's tenant id (undefined for a client this adapter did not admit). */
  tenantOf(client: W): string | undefined;
  /** The connections tracked for status re-checks. */
  readonly connections: TenantConnections;
}

/**
 * Tenancy for `ws` WebSocket servers: the upgrade request is resolved and
 * enforced by your Express middleware (same strategies, chain rules and
 * errors as HTTP; a refusal is an HTTP response before the switch), every
 * message handler runs in the connection's tenant scope bound per message,
 * and a tenant suspended or deleted while connected is disconnected with
 * close code 4403/4404 (reason: the error code).
 *
 * @example
 * ```ts
 * const wss = new WebSocketServer({ noServer: true });
 * const tenancy = wsTenancy({ handlers: [resolveTenant({ store }), requireTenant()], store });
 * server.on('upgrade', (req, socket, head) =>
 *   tenancy.handleUpgrade(wss, req, socket, head, (ws) => {
 *     ws.on('message', tenancy.bind(ws, async (data) => ws.send(JSON.stringify(await db('documents')))));
 *   }),
 * );
 * ```
 */
export function wsTenancy<W extends TenantWebSocket>(options: WsTenancyOptions): WsTenancy<W> {
  const resolveUpgrade = createUpgradeResolver(options);
  const logger = toTenancyLogger(options.logger);
  const tracked = connectionsOf(options);
  const admitted = new WeakMap<W, { readonly context: TenantContext; readonly id: string }>();

  function failed(error: unknown): void {
    logger.error('a WebSocket handler failed', { error });
  }

  return {
    connections: tracked,
    handleUpgrade(server, req, socket, head, onConnection) {
      resolveUpgrade(req).then(
        (outcome) => {
          if (!outcome.ok) {
            writeUpgradeRefusal(socket, outcome.refusal);
            return;
          }
          const { tenant, tenantId } = outcome;
          server.handleUpgrade(req, socket, head, (client, request) => {
            if (tenant !== undefined && tenantId !== undefined) {
              admitted.set(client, { context: tenant, id: tenantId });
              const untrack = tracked.track(tenantId, (code, reason) => client.close(code, reason));
              client.once('close', () => {
                untrack();
                outcome.release();
              });
            } else {
              client.once('close', outcome.release);
            }
            try {
              onConnection(client, request);
            } catch (error) {
              failed(error);
            }
          });
        },
        (error: unknown) => {
          failed(error);
          socket.destroy();
        },
      );
    },
    bind(client, handler) {
      return (...args) => {
        const entry = admitted.get(client);
        try {
          const result =
            entry === undefined
              ? handler(...args)
              : runInTenantScope(entry.context, () => handler(...args));
          if (result instanceof Promise) result.catch(failed);
        } catch (error) {
          failed(error);
        }
      };
    },
    tenantOf(client) {
      return admitted.get(client)?.id;
    },
  };
}
