/**
 * The attack runner's tools: the corpus types, token forging (every signing
 * trick is done by hand with node:crypto so nothing "helpfully" refuses to
 * produce a hostile token), a raw HTTP client (paths and headers are sent
 * exactly as written, duplicates included), and the demo app variants.
 */
import {
  constants,
  createHmac,
  generateKeyPairSync,
  randomBytes,
  sign as cryptoSign,
  type KeyObject,
} from 'node:crypto';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { createDemoApp, type DemoApp } from '../../../demo/app';
import { DEMO_JWT_SECRET, DEMO_USERS } from '../../../demo/demo-users';

/** A string given literally or as `prefix + char * times + suffix` (keeps the corpus file small). */
export type Expandable =
  | string
  | {
      readonly repeat: string;
      readonly times: number;
      readonly prefix?: string;
      readonly suffix?: string;
    };

/** A token recipe. */
export interface AuthSpec {
  /** A literal Authorization header value. */
  readonly raw?: Expandable;
  /** Demo user whose claims are the base (sub, tid = first tenant, tenants). */
  readonly user?: string;
  readonly tid?: unknown;
  readonly tenants?: readonly string[];
  readonly aud?: string;
  readonly iss?: string;
  /** Claims removed after defaults are applied. */
  readonly omit?: readonly string[];
  readonly exp?: 'valid' | 'expired' | 'missing';
  readonly nbf?: 'future';
  /** How it is signed. Default `app` (the app's own key and algorithm). */
  readonly sign?:
    | 'app'
    | 'none'
    | 'hs-wrong-secret'
    | 'hs-empty-key'
    | 'hs512-app-secret'
    | 'hs-public-key'
    | 'rs-app-key'
    | 'rs-other-key'
    | 'ps256-app-key'
    | 'es256';
  /** alg written in the header with sign `none`. */
  readonly alg?: string;
  /** Extra JOSE header fields. */
  readonly header?: Readonly<Record<string, unknown>>;
  /** After signing: new claims over the old (signature kept), or a signature attack. */
  readonly tamper?:
    'signature' | 'strip-signature' | 'alg-none-keep-signature' | Readonly<Record<string, unknown>>;
}

/** Which demo variant a case runs against. */
export type AppKind = 'hs' | 'rs' | 'host' | 'host-proxy';

/** One case of spec/attack/corpus.json. */
export interface AttackCase {
  readonly id: string;
  readonly group: string;
  readonly app?: AppKind;
  readonly method?: string;
  readonly path?: Expandable;
  readonly headers?: Readonly<Record<string, Expandable | readonly string[]>>;
  readonly auth?: AuthSpec;
  readonly body?: unknown;
  readonly rawBody?: Expandable;
  readonly expect: {
    readonly status: number;
    readonly code?: string;
    readonly tenant?: string;
    readonly sameAsMissing?: boolean;
  };
}

/** Expands an {@link Expandable}. */
export function expand(value: Expandable): string {
  if (typeof value === 'string') return value;
  return `${value.prefix ?? ''}${value.repeat.repeat(value.times)}${value.suffix ?? ''}`;
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** RS256 issuer keys for the `rs` variant, an attacker's RSA key and an EC key. */
export interface AttackKeys {
  readonly rsa: { readonly privateKey: KeyObject; readonly publicPem: string };
  readonly otherRsa: KeyObject;
  readonly ec: KeyObject;
}

/** Makes fresh keys. */
export function makeKeys(): AttackKeys {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    rsa: {
      privateKey: rsa.privateKey,
      publicPem: rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string,
    },
    otherRsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    ec: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  };
}

/** The audience and issuer the `rs` variant requires. */
export const RS_AUDIENCE = 'tenantry-demo';
export const RS_ISSUER = 'https://id.tenantry.test';

function signJws(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  how: NonNullable<AuthSpec['sign']>,
  app: AppKind,
  keys: AttackKeys,
): string {
  let alg: string;
  let signer: (data: Buffer) => Buffer;
  const hmac = (hash: string, key: string | Buffer) => (data: Buffer) =>
    createHmac(hash, key).update(data).digest();
  const resolved = how === 'app' ? (app === 'rs' ? 'rs-app-key' : 'hs-app') : how;
  switch (resolved) {
    case 'hs-app':
      alg = 'HS256';
      signer = hmac('sha256', DEMO_JWT_SECRET);
      break;
    case 'hs-wrong-secret':
      alg = 'HS256';
      signer = hmac('sha256', randomBytes(48));
      break;
    case 'hs-empty-key':
      alg = 'HS256';
      signer = hmac('sha256', Buffer.alloc(0));
      break;
    case 'hs512-app-secret':
      alg = 'HS512';
      signer = hmac('sha512', DEMO_JWT_SECRET);
      break;
    case 'hs-public-key':
      // The classic confusion: the RSA public key (PEM text) used as an HMAC secret.
      alg = 'HS256';
      signer = hmac('sha256', keys.rsa.publicPem);
      break;
    case 'rs-app-key':
      alg = 'RS256';
      signer = (data) => cryptoSign('sha256', data, keys.rsa.privateKey);
      break;
    case 'rs-other-key':
      alg = 'RS256';
      signer = (data) => cryptoSign('sha256', data, keys.otherRsa);
      break;
    case 'ps256-app-key':
      alg = 'PS256';
      signer = (data) =>
        cryptoSign('sha256', data, {
          key: keys.rsa.privateKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: 32,
        });
      break;
    case 'es256':
      alg = 'ES256';
      signer = (data) => cryptoSign('sha256', data, { key: keys.ec, dsaEncoding: 'ieee-p1363' });
      break;
    case 'none':
      return `${b64({ typ: 'JWT', ...header, alg: header.alg ?? 'none' })}.${b64(claims)}.`;
    default:
      throw new TypeError(`Unknown signing recipe "${String(resolved)}".`);
  }
  const input = `${b64({ typ: 'JWT', ...header, alg })}.${b64(claims)}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
}

/** Builds the Authorization header value for a recipe. */
export function authorization(spec: AuthSpec, app: AppKind, keys: AttackKeys): string {
  if (spec.raw !== undefined) return expand(spec.raw);
  const user = DEMO_USERS[spec.user ?? 'alice'];
  if (user === undefined) throw new TypeError(`Unknown demo user "${String(spec.user)}".`);
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    sub: user.id,
    tid: spec.tid ?? user.tenants[0],
    tenants: [...(spec.tenants ?? user.tenants)],
    iat: now - 5,
    exp: spec.exp === 'expired' ? now - 3600 : now + 3600,
    ...(app === 'rs' ? { aud: spec.aud ?? RS_AUDIENCE, iss: spec.iss ?? RS_ISSUER } : {}),
    ...(app !== 'rs' && spec.aud !== undefined ? { aud: spec.aud } : {}),
    ...(app !== 'rs' && spec.iss !== undefined ? { iss: spec.iss } : {}),
    ...(spec.nbf === 'future' ? { nbf: now + 3600 } : {}),
  };
  if (spec.exp === 'missing') delete claims.exp;
  for (const key of spec.omit ?? []) delete claims[key];
  const header: Record<string, unknown> = { ...(spec.header ?? {}) };
  if (spec.alg !== undefined) header.alg = spec.alg;
  let token = signJws(header, claims, spec.sign ?? 'app', app, keys);
  const [h, p, s] = token.split('.') as [string, string, string];
  const tamper = spec.tamper;
  if (tamper === 'signature') {
    // Flip a character in the middle: the last one may only carry padding bits.
    const i = Math.floor(s.length / 2);
    token = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
  } else if (tamper === 'strip-signature') {
    token = `${h}.${p}.`;
  } else if (tamper === 'alg-none-keep-signature') {
    token = `${b64({ typ: 'JWT', alg: 'none' })}.${p}.${s}`;
  } else if (tamper !== undefined) {
    token = `${h}.${b64({ ...claims, ...tamper })}.${s}`;
  }
  return `Bearer ${token}`;
}

/** A raw HTTP answer. */
export interface RawResponse {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  readonly json: unknown;
}

/** Sends a request exactly as given (raw path, duplicate headers, Host override). */
export function send(
  port: number,
  method: string,
  rawPath: string,
  headers: OutgoingHttpHeaders,
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path: rawPath,
        headers,
        setHost: headers.host === undefined,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text === '' ? undefined : JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text,
            json,
          });
        });
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`Request ${method} ${rawPath} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** The four variants of the demo over one database, listening on loopback. */
export interface DemoVariants {
  readonly ports: Readonly<Record<AppKind, number>>;
  readonly main: DemoApp;
  close(): Promise<void>;
}

async function listen(app: DemoApp['app']): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as AddressInfo).port }),
    );
  });
}

/**
 * Starts the demo in `mode` over `knex` (seeded), plus the variants that
 * share its data: `rs` (RS256 public key, audience and issuer required),
 * `host` (subdomain under lexigram.dev) and `host-proxy` (the same behind
 * `trust proxy: loopback`).
 */
export async function startDemoVariants(
  knex: Knex,
  mode: 'row' | 'schema' | 'database',
  databasePrefix: string,
  keys: AttackKeys,
): Promise<DemoVariants> {
  const common = { knex, isolation: mode, env: false as const, databasePrefix };
  const main = await createDemoApp(common);
  const dir = mkdtempSync(path.join(tmpdir(), 'tenantry-attack-'));
  const rsConfig = path.join(dir, 'tenancy-rs.json');
  writeFileSync(
    rsConfig,
    JSON.stringify({
      tenancy: {
        resolution: {
          strategy: ['jwt_claim', 'header', 'path'],
          path: { prefix: '/api/v1', stripTenantSegment: true },
          jwt: {
            algorithms: ['RS256'],
            publicKey: keys.rsa.publicPem,
            audience: RS_AUDIENCE,
            issuer: RS_ISSUER,
          },
        },
        isolation: { mode, tenantTables: ['documents'] },
      },
    }),
  );
  const rs = await createDemoApp({ ...common, configFile: rsConfig, seed: false });
  const host = await createDemoApp({
    ...common,
    strategies: ['jwt_claim', 'subdomain'],
    domain: 'lexigram.dev',
    seed: false,
  });
  const hostProxy = await createDemoApp({
    ...common,
    strategies: ['jwt_claim', 'subdomain'],
    domain: 'lexigram.dev',
    seed: false,
  });
  hostProxy.app.set('trust proxy', 'loopback');
  const apps = { hs: main, rs, host, 'host-proxy': hostProxy } as const;
  const servers: Server[] = [];
  const ports = {} as Record<AppKind, number>;
  for (const [kind, demo] of Object.entries(apps) as [AppKind, DemoApp][]) {
    const { server, port } = await listen(demo.app);
    servers.push(server);
    ports[kind] = port;
  }
  return {
    ports,
    main,
    async close() {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      for (const demo of Object.values(apps)) await demo.close();
    },
  };
}
