import { isIP } from 'node:net';
import type { Request } from 'express';
import { normalizeDomain } from '../config/parse-tenancy-config';
import type { BareDomainPolicy } from '../config/tenancy-config';
import { HostInvalidError, TenancyConfigError } from '../errors';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';

/** Options of {@link SubdomainStrategy}. */
export interface SubdomainStrategyOptions {
  /** The domain tenants live under: `acme.lexigram.dev` for `lexigram.dev`. Required. */
  readonly domain: string;
  /**
   * What a request to the bare domain resolves to: `refuse` (400
   * `HOST_INVALID`) or `skip` (no tenant from this strategy). Default: `refuse`.
   */
  readonly bareDomain?: BareDomainPolicy | undefined;
  /** Labels that are not tenants (`www`, `api`): skipped like the bare domain with `skip`. Default: `[]`. */
  readonly ignoredLabels?: readonly string[] | undefined;
}

const HOST_CHARS = /^[a-z0-9.-]+$/;
const MAX_HOST_LENGTH = 253;

/**
 * Reads the tenant from the host: exactly `<tenant>.<domain>`, compared in
 * lower case with the port removed. Everything else is refused with 400
 * `HOST_INVALID` before any store lookup: foreign hosts, look-alikes
 * (`acme.lexigram.dev.evil.com`, `acmelexigram.dev`), nested subdomains
 * (`a.b.lexigram.dev`), IP addresses, non-ASCII, empty and oversized hosts.
 *
 * The host is Express's `req.hostname`, so `X-Forwarded-Host` counts only
 * when `app.set('trust proxy', ...)` trusts the connecting proxy.
 *
 * @example
 * ```ts
 * app.set('trust proxy', 'loopback'); // only if a reverse proxy on localhost sets X-Forwarded-Host
 * app.use(resolveTenant({ store, strategies: [new SubdomainStrategy({ domain: 'lexigram.dev' })] }));
 * ```
 */
export class SubdomainStrategy implements TenantResolutionStrategy {
  readonly name = 'subdomain';
  readonly #domain: string;
  readonly #suffix: string;
  readonly #bareDomain: BareDomainPolicy;
  readonly #ignored: ReadonlySet<string>;

  constructor(options: SubdomainStrategyOptions) {
    if (typeof options?.domain !== 'string') {
      throw new TenancyConfigError(
        'Cannot resolve tenants from subdomains because no domain is configured. Set domain, e.g. "lexigram.dev".',
      );
    }
    this.#domain = normalizeDomain(options.domain, 'the subdomain strategy domain');
    this.#suffix = `.${this.#domain}`;
    const bare = options.bareDomain ?? 'refuse';
    if (bare !== 'refuse' && bare !== 'skip') {
      throw new TenancyConfigError(
        `Cannot use bareDomain="${String(bare)}". Use "refuse" or "skip".`,
      );
    }
    this.#bareDomain = bare;
    this.#ignored = new Set((options.ignoredLabels ?? []).map((l) => l.toLowerCase()));
  }

  resolve(req: Request): TenantResolution | undefined {
    // req.hostname strips the port and applies `trust proxy` to X-Forwarded-Host.
    const raw: unknown = req.hostname;
    if (typeof raw !== 'string' || raw === '') {
      throw new HostInvalidError(
        'Cannot resolve a tenant because the request has no host. Send a Host header.',
      );
    }
    if (raw.length > MAX_HOST_LENGTH) {
      throw new HostInvalidError(
        'Cannot resolve a tenant because the host is too long. Send a valid host name.',
      );
    }
    const host = raw.toLowerCase();
    if (!HOST_CHARS.test(host) || isIP(host) !== 0) {
      throw new HostInvalidError(
        `Cannot resolve a tenant because the host is not a DNS name under ${this.#domain}. Use <tenant>.${this.#domain}.`,
      );
    }
    if (host === this.#domain) {
      if (this.#bareDomain === 'skip') return undefined;
      throw new HostInvalidError(
        `Cannot resolve a tenant from the bare domain ${this.#domain}. Use <tenant>.${this.#domain}.`,
      );
    }
    if (!host.endsWith(this.#suffix)) {
      throw new HostInvalidError(
        `Cannot resolve a tenant because the host is not under ${this.#domain}. Use <tenant>.${this.#domain}.`,
      );
    }
    const label = host.slice(0, -this.#suffix.length);
    if (label.includes('.')) {
      throw new HostInvalidError(
        `Cannot resolve a tenant from a nested subdomain of ${this.#domain}. Use exactly <tenant>.${this.#domain}.`,
      );
    }
    if (this.#ignored.has(label)) return undefined;
    return { tenantId: label, trusted: false };
  }
}
