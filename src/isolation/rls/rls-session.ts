import type { Knex } from 'knex';
import type { TenancyLogger } from '../../logger';
import type { CapturedScope } from '../scope-capture';

/** Sets and clears the tenant setting on pooled connections (RLS backstop). */
export interface RlsSession {
  enter(connection: unknown, scope: CapturedScope): Promise<void>;
  leave(connection: unknown): Promise<void>;
}

/** Options of {@link createRlsSession}. */
export interface RlsSessionOptions {
  readonly tables: readonly string[];
  readonly setting: string | undefined;
  readonly onUnsafeRole: 'refuse' | 'warn' | undefined;
  readonly logger: TenancyLogger;
}

/** Placeholder until the RLS backstop lands. */
export async function createRlsSession(
  _base: Knex,
  _options: RlsSessionOptions,
): Promise<RlsSession> {
  return Promise.reject(new Error('RLS backstop not built yet'));
}
