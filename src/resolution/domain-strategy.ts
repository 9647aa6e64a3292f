import type { Request } from 'express';
import { normalizeHostname } from '../context/host-name';
import type { TenantRecord } from '../context/tenant-record';
import { HostInvalidError, TenancyConfigError, TenantUnavailableError } from '../errors';
import type { TenantStore } from '../store/tenant-store';
import { requestTarget } from './request-target';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';
import { quoteInput } from '../message-text';

/** Options of {@link DomainStrategy}. */
export interface DomainStrategyOptions {
  /**
   * Where custom domains are looked up: a store with `findByDomain` (wrap it
   * in `CachedTenantStore`, which caches domains like ids, unknown ones too).
   * Required; `resolveTenant()` passes its own store.
   */
  readonly store: TenantStore;
  /**
   * Your own domains, whose hosts are never custom domains: a host equal to or
   * under one of them is skipped (left to the `subdomain` strategy). Default:
   * `[]` (`resolveTenant()` passes the subdomain strategy's domains).
   */
  readonly platformDomains?: readonly string[] | undefined;
  /**
   * A host that is no verified custom domain: `refuse` (400 `HOST_INVALID`)
   * or `skip` (no tenant from this strategy). Default: `refuse`.
   */
  readonly unknownHosts?: 'refuse' | 'skip' | undefined;
}

/**
 * Reads the tenant from a verified custom domain: the request host
 * (`req.hostname`, so `X-Forwarded-Host` counts only through Express's
 * `trust proxy`) is normalised — lower case, trailing dot and port removed,
 * internationalised names in punycode — and looked up with the store's
 * `findByDomain`. Only a domain on the tenant record's `domains` list with
 * `verified: true` resolves; an unverified domain answers like an unknown
 * one. Hosts that are not DNS names (IPs, junk) are 400 `HOST_INVALID`
 * before any lookup. The host is client-controlled: the result is untrusted
 * (an authenticated user must be a member).
 *
 * @example
 * ```ts
 * app.set('trust proxy', 'loopback'); // only behind a proxy you run
 * app.use(resolveTenant({ store, strategies: ['subdomain', 'domain'], domain: 'lexigram.dev', foreignHosts: 'skip' }));
 * // acme.lexigram.dev → acme (subdomain); app.acme-corp.com → acme (verified custom domain)
 * ```
 */
export class DomainStrategy implements TenantResolutionStrategy {
  readonly name = 'domain';
  readonly #find: (domain: string) => Promise<TenantRecord | undefined>;
  readonly #peek: ((domain: string) => TenantRecord | null | undefined) | undefined;
  readonly #platform: readonly string[];
  readonly #unknown: 'refuse' | 'skip';

  constructor(options: DomainStrategyOptions) {
    const store = options?.store as
      | (TenantStore & {
          peekDomain?: (d: string) => TenantRecord | null | undefined;
          supportsDomains?: boolean;
        })
      | undefined;
    if (
      store === undefined ||
      typeof store.findByDomain !== 'function' ||
      store.supportsDomains === false
    ) {
      throw new TenancyConfigError(
        'Cannot use the domain strategy because the tenant store has no findByDomain(). Use InMemoryTenantStore or KnexTenantStore (optionally in a CachedTenantStore).',
      );
    }
    const find = store.findByDomain.bind(store);
    this.#find = find;
    this.#peek = typeof store.peekDomain === 'function' ? store.peekDomain.bind(store) : undefined;
    this.#platform = (options.platformDomains ?? []).map((d) => {
      const normalized = normalizeHostname(d);
      if (normalized === undefined) {
        throw new TenancyConfigError(
          `Cannot use platform domain ${quoteInput(d)} for the domain strategy because it is not a DNS name.`,
        );
      }
      return normalized;
    });
    const unknown = options.unknownHosts ?? 'refuse';
    if (unknown !== 'refuse' && unknown !== 'skip') {
      throw new TenancyConfigError(
        `Cannot use unknownHosts=${quoteInput(String(unknown))}. Use "refuse" or "skip".`,
      );
    }
    this.#unknown = unknown;
  }

  resolve(req: Request): TenantResolution | undefined | Promise<TenantResolution | undefined> {
    const raw: unknown = requestTarget(req).hostname;
    if (typeof raw !== 'string' || raw === '') {
      throw new HostInvalidError(
        'Cannot resolve a tenant because the request has no host. Send a Host header.',
      );
    }
    const host = normalizeHostname(raw);
    if (host === undefined) {
      throw new HostInvalidError(
        'Cannot resolve a tenant because the host is not a DNS name. Send the custom domain as Host.',
      );
    }
    for (const platform of this.#platform) {
      if (host === platform || host.endsWith(`.${platform}`)) return undefined;
    }
    const cached = this.#peek?.(host);
    if (cached !== undefined) return this.#answer(host, cached ?? undefined);
    let pending: Promise<TenantRecord | undefined>;
    try {
      pending = this.#find(host);
    } catch (cause) {
      throw unavailable(cause);
    }
    return pending.then(
      (record) => this.#answer(host, record),
      (cause: unknown) => {
        throw unavailable(cause);
      },
    );
  }

  #answer(host: string, record: TenantRecord | undefined): TenantResolution | undefined {
    // The store already filters on verified; checked again so a store that does not cannot leak.
    if (record?.domains?.some((d) => d.verified && d.domain === host) === true) {
      return { tenantId: record.id, trusted: false };
    }
    if (this.#unknown === 'skip') return undefined;
    throw new HostInvalidError(
      `Cannot resolve a tenant from host ${quoteInput(host)} because it is no verified custom domain. Use a tenant's verified domain.`,
    );
  }
}

function unavailable(cause: unknown): TenantUnavailableError {
  return new TenantUnavailableError(
    'Cannot look up the custom domain because the tenant store failed. Retry later.',
    { cause },
  );
}
