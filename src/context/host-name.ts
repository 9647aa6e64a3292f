import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

// Lower-case LDH labels (after IDN → punycode), 1-253 characters in all.
const DNS_NAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Normalises a host name the one way tenantry compares hosts: lower case, one
 * trailing dot removed (`acme.com.` is `acme.com`), internationalised names
 * turned into their ASCII (punycode) form with WHATWG `domainToASCII`
 * (`bücher.example` → `xn--bcher-kva.example`), then held to the DNS name
 * pattern. Returns `undefined` for anything else: IP addresses, ports, empty
 * labels, `_`, spaces, oversized names. A look-alike written with other
 * scripts (`аcme.com` with a Cyrillic `а`) becomes a different punycode name,
 * so it never equals the real one.
 *
 * @example
 * ```ts
 * normalizeHostname('App.Acme-Corp.COM.'); // 'app.acme-corp.com'
 * normalizeHostname('bücher.example'); // 'xn--bcher-kva.example'
 * normalizeHostname('10.0.0.1'); // undefined
 * ```
 */
export function normalizeHostname(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw === '' || raw.length > 254) return undefined;
  let host = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  if (isIP(host) !== 0 || host.startsWith('[')) return undefined;
  // Plain ASCII is only lower-cased: domainToASCII would also accept and rewrite odd forms (full-width dots).
  if (!/^[\x21-\x7e]+$/.test(host)) {
    host = domainToASCII(host);
    if (host === '') return undefined;
  }
  host = host.toLowerCase();
  return DNS_NAME.test(host) && isIP(host) === 0 ? host : undefined;
}
