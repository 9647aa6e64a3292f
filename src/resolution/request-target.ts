import type { Request } from 'express';
import { HostInvalidError, RequestInvalidError } from '../errors';

/**
 * The request target and authority of a request, parsed once as RFC 9112
 * (§3.2) and RFC 9110 (§7.2) define them, for every strategy.
 */
export interface RequestTarget {
  /** The path of the target (origin-form, or the path of an absolute-form target), raw (not decoded). */
  readonly path: string;
  /** `?query` of the target, or `''`. */
  readonly search: string;
  /** Whether the target was absolute-form (`GET http://host/path`). */
  readonly absolute: boolean;
  /** `scheme://authority` of an absolute-form target, else `''`. */
  readonly origin: string;
  /**
   * The authority's host name, lower case, without port: from an
   * absolute-form target, else from `Host` (or `X-Forwarded-Host` through
   * `trust proxy`, as Express's `req.hostname`). `undefined` if none was sent.
   */
  readonly hostname: string | undefined;
}

// host [":" port], host = reg-name | IPv4 | "[" IPv6 "]"; port = digits (RFC 3986 §3.2.2-3).
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]{0,5})?$/;
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?$/;

function hostOf(authority: string): string {
  const withoutPort = authority.startsWith('[')
    ? authority.slice(0, authority.indexOf(']') + 1)
    : (authority.split(':')[0] ?? '');
  return withoutPort.toLowerCase();
}

function checkAuthority(value: string, what: string): void {
  if (value === '' || value.length > 260 || !AUTHORITY.test(value)) {
    throw new HostInvalidError(
      `Cannot resolve a tenant because the ${what} is not host[:port] (found junk such as a second ":", "@" or a non-numeric port). Send a valid host.`,
    );
  }
  const colon = value.startsWith('[') ? value.indexOf(':', value.indexOf(']')) : value.indexOf(':');
  if (colon !== -1 && Number(value.slice(colon + 1) || '0') > 65535) {
    throw new HostInvalidError(
      `Cannot resolve a tenant because the port of the ${what} is out of range. Send a valid host.`,
    );
  }
}

// The header checks run again for each strategy and chain that asks (a loop
// over a handful of raw headers). They are not memoised on the request: Express
// gives every request object a map of its own, so each property added to it
// is a map copy in V8 (measured in bench/http-instructions.bench.ts).
function checkHeaders(req: Request): string | undefined {
  const raw = req.rawHeaders;
  // Node drops headers beyond maxHeadersCount without a word: a conflicting header could be among them.
  const server = (req.socket as { server?: { maxHeadersCount?: number | null } } | undefined)
    ?.server;
  const limit = server?.maxHeadersCount ?? 2000;
  if (limit > 0 && raw.length / 2 >= limit) {
    throw new RequestInvalidError(
      `Cannot resolve a tenant because the request has ${limit} or more headers, so some may have been dropped by the HTTP parser. Send fewer headers.`,
    );
  }
  let header: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 4 || !isHostName(name)) continue;
    if (header !== undefined) {
      throw new HostInvalidError(
        'Cannot resolve a tenant because the request has more than one Host header (RFC 9112 §3.2). Send one.',
      );
    }
    header = (raw[i + 1] as string).trim();
  }
  if (header !== undefined && header !== lastValidHost) {
    checkAuthority(header, 'Host header');
    lastValidHost = header;
  }
  return header;
}

// The last Host value that passed checkAuthority(): a service answers mostly
// one or a few hosts, so the regular expression runs once per change of host.
let lastValidHost: string | undefined;

/** `name` (4 characters) is "host" in any case, without allocating a lower-case copy. */
function isHostName(name: string): boolean {
  return (
    (name.charCodeAt(0) | 0x20) === 0x68 &&
    (name.charCodeAt(1) | 0x20) === 0x6f &&
    (name.charCodeAt(2) | 0x20) === 0x73 &&
    (name.charCodeAt(3) | 0x20) === 0x74
  );
}

function parse(req: Request): RequestTarget {
  const header = checkHeaders(req);
  const url = req.url;
  let path: string;
  let search: string;
  let absolute = false;
  let authority: string | undefined;
  if (url.startsWith('/')) {
    const q = url.indexOf('?');
    path = q === -1 ? url : url.slice(0, q);
    search = q === -1 ? '' : url.slice(q);
  } else {
    const match = ABSOLUTE.exec(url);
    if (match === null) {
      // asterisk-form (OPTIONS *) or authority-form (CONNECT): no path, no tenant from it.
      return {
        path: '',
        search: '',
        absolute: false,
        origin: '',
        hostname: hostnameOf(req, undefined),
      };
    }
    absolute = true;
    authority = match[2] ?? '';
    if (authority.includes('@')) {
      throw new HostInvalidError(
        'Cannot resolve a tenant because the request target carries user information ("@"). Send host[:port] only.',
      );
    }
    checkAuthority(authority, 'authority of the request target');
    path = match[3] === undefined || match[3] === '' ? '/' : match[3];
    search = match[4] ?? '';
    if (header !== undefined && hostOf(header) !== hostOf(authority)) {
      // RFC 9112 §3.2.2 lets the target win; two different hosts in one request are refused instead.
      throw new HostInvalidError(
        'Cannot resolve a tenant because the request target and the Host header name different hosts. Send one host.',
      );
    }
  }
  return {
    path,
    search,
    absolute,
    origin: absolute ? `${url.slice(0, url.indexOf('://'))}://${authority ?? ''}` : '',
    hostname: hostnameOf(req, authority),
  };
}

function hostnameOf(req: Request, authority: string | undefined): string | undefined {
  if (authority !== undefined) return hostOf(authority);
  const name: unknown = req.hostname; // Host, or X-Forwarded-Host through trust proxy
  return typeof name === 'string' && name !== '' ? name.toLowerCase() : undefined;
}

/**
 * The parsed target and host of a request, read from the current `req.url`
 * (which Express rewrites under a mount path, keeping an absolute-form
 * target's scheme and host). Throws 400 `HOST_INVALID` for a duplicate
 * `Host`, junk after a host (`:80@evil`, `:abc`), userinfo in an
 * absolute-form target, or a target and `Host` that name different hosts;
 * 400 `REQUEST_INVALID` when the parser may have dropped headers (as many as
 * `server.maxHeadersCount`).
 *
 * @example
 * ```ts
 * const { path, hostname } = requestTarget(req); // 'GET http://acme.example/x' → '/x', 'acme.example'
 * ```
 */
export function requestTarget(req: Request): RequestTarget {
  return parse(req);
}

/**
 * Only the header checks of {@link requestTarget} (duplicate or malformed
 * `Host`, possibly dropped headers). `resolveTenant()` runs it for every
 * chain, before any strategy.
 *
 * @example
 * ```ts
 * checkRequestHeaders(req); // throws HOST_INVALID / REQUEST_INVALID
 * ```
 */
export function checkRequestHeaders(req: Request): void {
  checkHeaders(req);
}
