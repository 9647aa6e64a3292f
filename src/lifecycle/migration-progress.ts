import { clause } from '../message-text';
import type { TenantMigrationProgress } from './fleet-migrator';

/** A writable text stream (e.g. `process.stderr`). */
export interface ProgressStream {
  write(text: string): unknown;
  /** Present and true on a terminal. */
  readonly isTTY?: boolean | undefined;
  /** Terminal width. */
  readonly columns?: number | undefined;
}

/**
 * An `onProgress` callback for `migrateTenants()`: a redrawn progress bar on
 * a terminal, one plain line per tenant otherwise (logs, CI).
 *
 * @example
 * ```ts
 * await manager.migrateTenants({ onProgress: migrationProgressReporter(process.stderr) });
 * ```
 */
export function migrationProgressReporter(
  stream: ProgressStream,
): (progress: TenantMigrationProgress) => void {
  let failed = 0;
  return (p) => {
    if (p.outcome === 'failed') failed += 1;
    if (!stream.isTTY) {
      const detail =
        p.outcome === 'failed'
          ? `: ${clause(p.error ?? 'error')}`
          : p.applied.length > 0
            ? ` (${p.applied.join(', ')})`
            : '';
      stream.write(`[${p.done}/${p.total}] ${p.tenantId} ${p.outcome}${detail}\n`);
      return;
    }
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 40));
    const filled = Math.round((p.done / p.total) * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    stream.write(`\r[${bar}] ${p.done}/${p.total} failed ${failed}`);
    if (p.done === p.total) stream.write('\n');
  };
}
