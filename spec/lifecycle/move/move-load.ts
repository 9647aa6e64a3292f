/**
 * Concurrent HTTP load on several tenants while one of them moves: every
 * worker writes (a new task, or an update of one it wrote), then reads its
 * tenant's tasks. It records what was acknowledged and every failure, for
 * the assertions: no cross-tenant row, no lost acknowledged write, reads
 * never fail, writes fail only with 503 (and Retry-After).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoadFailure {
  readonly tenant: string;
  readonly op: 'read' | 'write';
  readonly status: number;
  readonly at: number;
  readonly retryAfter: string | null;
  readonly body: string;
}

export interface LoadResult {
  /** Acknowledged titles per tenant, and the last acknowledged `n` of updated tasks. */
  readonly written: Map<string, Set<string>>;
  readonly updated: Map<string, Map<string, number>>;
  readonly failures: LoadFailure[];
  readonly foreignRows: string[];
  readonly reads: number;
  readonly writes: number;
}

export function startLoad(
  baseUrl: string,
  tenants: readonly string[],
): { stop(): Promise<LoadResult> } {
  let running = true;
  const written = new Map(tenants.map((t) => [t, new Set<string>()]));
  const updated = new Map(tenants.map((t) => [t, new Map<string, number>()]));
  const failures: LoadFailure[] = [];
  const foreignRows: string[] = [];
  let reads = 0;
  let writes = 0;

  async function call(tenant: string, method: string, path: string, body?: unknown) {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { 'x-tenant-id': tenant, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { res, text };
  }

  async function worker(tenant: string): Promise<void> {
    let i = 0;
    const mine: string[] = [];
    while (running) {
      i += 1;
      const update = i % 4 === 0 && mine.length > 0;
      const { res, text } = update
        ? await call(tenant, 'PATCH', `/tasks/${mine[i % mine.length] as string}`, { n: i })
        : await call(tenant, 'POST', '/tasks', {
            title: `${tenant}:w-${String(i).padStart(6, '0')}`,
          });
      writes += 1;
      if (res.status === 201) {
        const row = JSON.parse(text) as { id: string };
        mine.push(row.id);
        written.get(tenant)?.add(`${tenant}:w-${String(i).padStart(6, '0')}`);
      } else if (res.status === 200) {
        updated.get(tenant)?.set(mine[i % mine.length] as string, i);
      } else {
        failures.push({
          tenant,
          op: 'write',
          status: res.status,
          at: Date.now(),
          retryAfter: res.headers.get('retry-after'),
          body: text.slice(0, 300),
        });
      }
      const read = await call(tenant, 'GET', '/tasks');
      reads += 1;
      if (read.res.status !== 200) {
        failures.push({
          tenant,
          op: 'read',
          status: read.res.status,
          at: Date.now(),
          retryAfter: null,
          body: read.text.slice(0, 300),
        });
      } else {
        for (const row of JSON.parse(read.text) as { title: string }[]) {
          if (!row.title.startsWith(`${tenant}:`)) foreignRows.push(`${tenant} saw ${row.title}`);
        }
      }
      await sleep(5);
    }
  }

  const workers = tenants.map((t) => worker(t));
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
      return { written, updated, failures, foreignRows, reads, writes };
    },
  };
}
