// Stream helpers for the isolation specs (knex .stream() through pg-query-stream).

/** A streamed row; the isolation fixtures give every row a tenant_id or a home schema. */
export type StreamedRow = Record<string, unknown> & { tenant_id: string; id: number };

/** Reads every row of a knex stream (pg-query-stream). */
export function readStream(stream: NodeJS.ReadableStream): Promise<StreamedRow[]> {
  return new Promise((resolve, reject) => {
    const rows: StreamedRow[] = [];
    stream.on('data', (row: StreamedRow) => rows.push(row));
    stream.on('error', reject);
    stream.on('end', () => resolve(rows));
  });
}

/** The error code a knex stream fails with (it must fail). */
export function streamError(open: () => NodeJS.ReadableStream): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const stream = open();
    stream.on('error', (error: { code?: string }) => resolve(error.code));
    stream.on('end', () => reject(new Error('the stream ended without an error')));
    stream.resume();
  });
}
