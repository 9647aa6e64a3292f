import type { TenancyConfig } from '../src/index';
import { mintDemoToken } from './demo-users';

/**
 * The start-up banner of `npm run demo`: where it listens, fresh tokens, and
 * curl commands that work with the configured isolation mode and strategy
 * chain (spec/demo/demo-tour.spec.ts runs them for several chains).
 */
export function demoTour(base: string, config: TenancyConfig): string {
  const alice = mintDemoToken('alice');
  const bob = mintDemoToken('bob');
  const carol = mintDemoToken('carol', { tenant: 'globex' });
  const { strategy, header, domain, path } = config.tenancy.resolution;
  const lines = [
    '',
    `tenantry demo listening on ${base}`,
    `  isolation: ${config.tenancy.isolation.mode}    strategies: ${strategy.join(', ')}`,
    `  tenants: acme, globex (active), initech (suspended)    users: alice (acme), bob (globex), carol (both)`,
    '',
    'Tokens (valid 1 h; mint more with `npm run --silent demo:token -- <user> [--tenant <id>]`):',
    `  export ALICE=${alice}`,
    `  export BOB=${bob}`,
    `  export CAROL=${carol}    # acting for globex`,
    '',
    'Try:',
  ];
  const viaHost = strategy.includes('subdomain') && domain !== undefined;
  const prefix = path.prefix === '/' ? '' : path.prefix;
  // The URL and flags that name `tenant` with the configured chain (the token alone when it can).
  const address = (tenant: string, route: string, signedIn = true): string | undefined => {
    if (viaHost) return `${base}${route} -H 'Host: ${tenant}.${domain}'`;
    if (signedIn && strategy.includes('jwt_claim')) return `${base}${route}`;
    if (strategy.includes('header')) return `${base}${route} -H '${header}: ${tenant}'`;
    if (strategy.includes('path')) return `${base}${prefix}/${tenant}${route}`;
    return undefined;
  };
  const auth = (user: string) => ` -H "Authorization: Bearer $${user}"`;
  lines.push(
    `  curl -s ${address('acme', '/documents')}${auth('ALICE')}`,
    `  curl -s ${address('globex', '/settings')}${auth('BOB')}`,
    `  curl -s -X POST ${address('acme', '/documents')}${auth('ALICE')} -H 'Content-Type: application/json' -d '{"title":"Hello"}'`,
  );
  if (strategy.includes('path')) {
    const host = viaHost ? ` -H 'Host: globex.${domain}'` : '';
    lines.push(`  curl -s ${base}${prefix}/globex/documents${host}${auth('CAROL')}`);
  }
  if (strategy.includes('header') && strategy.includes('jwt_claim')) {
    lines.push(
      `  curl -s ${address('acme', '/documents')}${auth('ALICE')} -H '${header}: globex'   # 403 TENANT_CONFLICT`,
    );
  }
  const suspended = address('initech', '/documents', false);
  if (suspended !== undefined) lines.push(`  curl -s ${suspended}   # 403 TENANT_SUSPENDED`);
  lines.push('', 'Ctrl-C stops the API and the embedded database.', '');
  return lines.join('\n');
}
