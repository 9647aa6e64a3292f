import { isIP } from 'node:net';
import type { Request } from 'express';
import { normalizeDomain } from '../config/parse-tenancy-config';
import { normalizeHostname } from '../context/host-name';
import type { BareDomainPolicy } from '../config/tenancy-config';
import { HostInvalidError, TenancyConfigError } from '../errors';
import { requestTarget } from './request-target';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';
import { quoteInput } from '../message-text';

/** Options of {@link SubdomainStrategy}. */
export interface SubdomainStrategyOptions {
  /**
   * The domain(s) tenants live under: `acme.lexigram.dev` for `lexigram.dev`.
   * A list serves several (`['lexigram.dev', 'lexigram.eu']`). Required.
   */
  readonly domain: string | readonly string[];
  /**
   * What a request to the bare domain resolves to: `refuse` (400
   * `HOST_INVALID`) or `skip` (no tenant from this strategy). Default: `refuse`.
   */
  readonly bareDomain?: BareDomainPolicy | undefined;
  /** Labels that are not tenants (`www`, `api`): skipped like the bare domain with `skip`. Default: `[]`. */
  readonly ignoredLabels?: readonly string[] | undefined;
  /**
   * What a host outside every configured domain does: `refuse` (400
   * `HOST_INVALID`) or `skip` (no tenant from this strategy, so a `domain`
   * strategy later in the chain can look it up as a custom domain). Nested
   * subdomains and non-DNS hosts are refused either way. Default: `refuse`.
   */
  readonly foreignHosts?: 'refuse' | 'skip' | undefined;
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
  readonly #domains: readonly string[];
  readonly #domain: string;
  readonly #bareDomain: BareDomainPolicy;
  readonly #ignored: ReadonlySet<string>;
  readonly #foreign: 'refuse' | 'skip';

  constructor(options: SubdomainStrategyOptions) {
    const given = typeof options?.domain === 'string' ? [options.domain] : options?.domain;
    if (!Array.isArray(given) || given.length === 0 || given.some((d) => typeof d !== 'string')) {
      throw new TenancyConfigError(
        'Cannot resolve tenants from subdomains because no domain is configured. Set domain, e.g. "lexigram.dev".',
      );
    }
    // Longest first, so `eu.lexigram.dev` wins over `lexigram.dev` for `acme.eu.lexigram.dev`.
    this.#domains = Object.freeze(
      given
        .map((d: string) => normalizeDomain(d, 'the subdomain strategy domain'))
        .sort((a, b) => b.length - a.length),
    );
    this.#domain = this.#domains.join(', ');
    const foreign = options.foreignHosts ?? 'refuse';
    if (foreign !== 'refuse' && foreign !== 'skip') {
      throw new TenancyConfigError(
        `Cannot use foreignHosts=${quoteInput(String(foreign))}. Use "refuse" or "skip".`,
      );
    }
    this.#foreign = foreign;
    const bare = options.bareDomain ?? 'refuse';
    if (bare !== 'refuse' && bare !== 'skip') {
      throw new TenancyConfigError(
        `Cannot use bareDomain=${quoteInput(String(bare))}. Use "refuse" or "skip".`,
      );
    }
    this.#bareDomain = bare;
    this.#ignored = new Set((options.ignoredLabels ?? []).map((l) => l.toLowerCase()));
  }

  resolve(req: Request): TenantResolution | undefined {
    // The absolute-form target's host, else req.hostname (port stripped, `trust proxy` applied to
    // X-Forwarded-Host); a malformed or duplicate Host is refused first.
    const raw: unknown = requestTarget(req).hostname;
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
      // Non-ASCII and IPs are refused even with foreignHosts: 'skip' when they could be a look-alike of ours.
      if (this.#foreign === 'skip' && normalizeHostname(raw) !== undefined && !this.#near(raw)) {
        return undefined;
      }
      throw new HostInvalidError(
        `Cannot resolve a tenant because the host is not a DNS name under ${this.#domain}. Use <tenant>.${this.#domains[0]}.`,
      );
    }
    const domain = this.#domains.find((d) => host === d || host.endsWith(`.${d}`));
    if (domain === undefined) {
      if (this.#foreign === 'skip') return undefined;
      throw new HostInvalidError(
        `Cannot resolve a tenant because the host is not under ${this.#domain}. Use <tenant>.${this.#domains[0]}.`,
      );
    }
    if (host === domain) {
      if (this.#bareDomain === 'skip') return undefined;
      throw new HostInvalidError(
        `Cannot resolve a tenant from the bare domain ${domain}. Use <tenant>.${domain}.`,
      );
    }
    const label = host.slice(0, -(domain.length + 1));
    if (label.includes('.')) {
      throw new HostInvalidError(
        `Cannot resolve a tenant from a nested subdomain of ${domain}. Use exactly <tenant>.${domain}.`,
      );
    }
    if (this.#ignored.has(label)) return undefined;
    return { tenantId: label, trusted: false };
  }

  /** Whether a non-ASCII host ends like one of our domains (a homograph of a tenant host). */
  #near(raw: string): boolean {
    const ascii = normalizeHostname(raw) ?? '';
    return this.#domains.some((d) => ascii.endsWith(`.${d}`) || ascii === d);
  }
}
