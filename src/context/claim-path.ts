/**
 * A claim path: where a value sits in a token's claims. Either a string or a
 * list of keys.
 *
 * - A string is split at dots: `org.id` reads `claims.org.id`.
 * - A string containing `/` names a namespaced claim (Auth0, Okta): everything
 *   up to the first dot *after the last slash* is one key, the URL, and the
 *   rest is split at dots. `https://example.com/claims.tenant` reads
 *   `claims['https://example.com/claims'].tenant`; `https://example.com/tenant`
 *   is one key.
 * - A list is taken key by key, for keys the string form cannot express (a key
 *   with a dot after its last slash, such as `https://example.com/v1.0`).
 */
export type ClaimPath = string | readonly string[];

/** A parsed claim path: the keys, and the form they were written in (for messages). */
export interface ParsedClaimPath {
  readonly keys: readonly string[];
  readonly text: string;
}

/**
 * Parses a claim path once (at factory time). Returns `undefined` when it is
 * not a path (empty string, empty list, an empty key): the caller says which
 * setting is wrong.
 *
 * @example
 * ```ts
 * parseClaimPath('https://example.com/claims.tenant')?.keys; // ['https://example.com/claims', 'tenant']
 * ```
 */
export function parseClaimPath(path: unknown): ParsedClaimPath | undefined {
  let keys: string[];
  if (typeof path === 'string') {
    const slash = path.lastIndexOf('/');
    const dot = path.indexOf('.', slash + 1);
    if (slash === -1) keys = path.split('.');
    else if (dot === -1) keys = [path];
    else keys = [path.slice(0, dot), ...path.slice(dot + 1).split('.')];
  } else if (Array.isArray(path) && path.every((k) => typeof k === 'string')) {
    keys = [...(path as string[])];
  } else {
    return undefined;
  }
  if (keys.length === 0 || keys.some((k) => k === '')) return undefined;
  return Object.freeze({
    keys: Object.freeze(keys),
    text: typeof path === 'string' ? path : JSON.stringify(path),
  });
}

/**
 * Reads a parsed claim path from claims. Only own properties of plain
 * objects are followed (never `__proto__`, `constructor` or array indices
 * through the prototype), so a crafted token cannot reach inherited values.
 *
 * @example
 * ```ts
 * readClaim({ org: { id: 'acme' } }, parseClaimPath('org.id')!); // 'acme'
 * ```
 */
export function readClaim(
  claims: Readonly<Record<string, unknown>>,
  path: ParsedClaimPath,
): unknown {
  let value: unknown = claims;
  for (const key of path.keys) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
