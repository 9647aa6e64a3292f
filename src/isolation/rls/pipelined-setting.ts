/**
 * Sends `select set_config(name, value, false)` and a statement in one round
 * trip: both go out in one write as extended-protocol messages closed by a
 * single Sync, so PostgreSQL runs them in one implicit transaction, the
 * setting first. If the statement fails, that transaction aborts and the
 * setting reverts with it, so the caller learns the outcome (and whether the
 * connection is outside a transaction block) from `onSettled`.
 *
 * This speaks node-postgres' submittable interface (what `client.query()`
 * accepts besides a config): `submit(connection)` writes messages, and the
 * client hands each backend message to the active submittable's handlers.
 */

/** A statement as knex's PostgreSQL client sends it (`client._query`). */
export interface KnexPgStatement {
  sql?: unknown;
  bindings?: unknown;
  options?: unknown;
  response?: unknown;
}

/** How a pipelined statement ended, for the caller's bookkeeping. */
export interface PipelineOutcome {
  /** The statement (and so the setting) succeeded. */
  readonly ok: boolean;
  /** The backend's transaction status after it (`I` idle, `T` in a block, `E` failed block). */
  readonly transactionStatus: string | null;
}

/** The node-postgres wire connection (`client.connection`). */
interface WireConnection {
  stream: { cork?: () => void; uncork?: () => void };
  parse(message: { text: string; name: string; types: unknown[] }): void;
  close(message: { type: 'S'; name: string }): void;
  bind(message: { portal: string; statement: string; values: unknown[] }): void;
  execute(message: { portal: string; rows: number }): void;
}

/** A node-postgres `Query` (the handlers the client calls). */
interface PgQuery {
  submit(connection: WireConnection): Error | null;
  handleRowDescription(message: unknown): void;
  handleDataRow(message: unknown): void;
  handleCommandComplete(message: unknown, connection: WireConnection): void;
  handleError(error: unknown, connection: WireConnection): void;
  handleReadyForQuery(connection: WireConnection): void;
  handleEmptyQuery(connection: WireConnection): void;
  handlePortalSuspended(connection: WireConnection): void;
  handleCopyInResponse(connection: WireConnection): void;
  handleCopyData(message: unknown, connection: WireConnection): void;
}

type PgQueryConstructor = new (
  config: Record<string, unknown>,
  values: undefined,
  callback: (error: Error | null, result: unknown) => void,
) => PgQuery;

/** A node-postgres `Client` (what knex's pool hands out). */
interface PgClient {
  constructor: { Query?: PgQueryConstructor };
  query(submittable: unknown): unknown;
  getTransactionStatus?: () => string | null;
}

const SET_CONFIG = 'select set_config($1, $2, false)';

/** The name set_config is prepared under, once per connection (skips parse and plan). */
const SET_CONFIG_STATEMENT = 'tenantry_set_config';

/**
 * Connections known to hold the prepared set_config: a pipeline that
 * succeeded after preparing it. Any failure forgets it, and the next pipeline
 * closes (a no-op when absent) and prepares it again, so a statement lost to
 * an aborted pipeline costs one re-parse; one dropped by a user's DEALLOCATE ALL
 * costs one retry (see {@link lostPreparedStatement}), never an error.
 */
const prepared = new WeakSet<object>();

/** Options knex may pass through that change how a statement is sent or read. */
const PLAIN_OPTIONS = new Set(['rowMode', 'types']);

// A knex transaction's plain opening statement. Only the bare form: a BEGIN
// with an isolation level must come before any query of its transaction, and
// the set_config sent ahead of it would be one ("SET TRANSACTION ISOLATION
// LEVEL must be called before any query"); those pay the round trip first.
const BEGIN = /^\s*begin(?:\s+transaction)?\s*;?\s*$/i;

class SettingThenStatement {
  private settingDone = false;

  constructor(
    private readonly statement: PgQuery,
    private readonly setting: string,
    private readonly value: string,
    private readonly prepare: boolean,
  ) {}

  submit(connection: WireConnection): Error | null {
    connection.stream.cork?.();
    try {
      if (this.prepare) {
        connection.close({ type: 'S', name: SET_CONFIG_STATEMENT });
        connection.parse({ text: SET_CONFIG, name: SET_CONFIG_STATEMENT, types: [] });
      }
      connection.bind({
        portal: '',
        statement: SET_CONFIG_STATEMENT,
        values: [this.setting, this.value],
      });
      connection.execute({ portal: '', rows: 0 });
      // The statement's own Parse/Bind/Describe/Execute/Sync close the pipeline.
      return this.statement.submit(connection);
    } finally {
      connection.stream.uncork?.();
    }
  }

  handleRowDescription(message: unknown): void {
    this.statement.handleRowDescription(message);
  }

  handleDataRow(message: unknown): void {
    // set_config's own row (it was not described, so it carries no fields to read).
    if (this.settingDone) this.statement.handleDataRow(message);
  }

  handleCommandComplete(message: unknown, connection: WireConnection): void {
    if (!this.settingDone) {
      this.settingDone = true;
      return;
    }
    this.statement.handleCommandComplete(message, connection);
  }

  handleError(error: unknown, connection: WireConnection): void {
    this.statement.handleError(error, connection);
  }

  handleReadyForQuery(connection: WireConnection): void {
    this.statement.handleReadyForQuery(connection);
  }

  handleEmptyQuery(connection: WireConnection): void {
    this.statement.handleEmptyQuery(connection);
  }

  handlePortalSuspended(connection: WireConnection): void {
    this.statement.handlePortalSuspended(connection);
  }

  handleCopyInResponse(connection: WireConnection): void {
    this.statement.handleCopyInResponse(connection);
  }

  handleCopyData(message: unknown, connection: WireConnection): void {
    this.statement.handleCopyData(message, connection);
  }
}

/**
 * Sends `statement` on `connection` with the setting in the same round trip,
 * resolving as knex's own `_query` does (the statement, with `response` set).
 * Returns `undefined`, sending nothing, when the statement cannot safely be
 * pipelined: no bound values (it might hold several statements, which the
 * extended protocol refuses) unless it is a plain transaction BEGIN, options that
 * change how it is sent (named or cursor statements), or a driver that is not
 * node-postgres. The caller then sets the value in a round trip of its own.
 */
export function sendWithSetting(
  connection: unknown,
  setting: string,
  value: string,
  statement: KnexPgStatement,
  onSettled: (outcome: PipelineOutcome) => void,
): Promise<KnexPgStatement> | undefined {
  const client = connection as PgClient;
  const Query = client?.constructor?.Query;
  if (typeof Query !== 'function' || typeof statement.sql !== 'string') return undefined;
  const values = statement.bindings ?? [];
  if (!Array.isArray(values)) return undefined;
  if (values.length === 0 && !BEGIN.test(statement.sql)) return undefined;
  const options = (statement.options ?? {}) as Record<string, unknown>;
  if (typeof options !== 'object' || Object.keys(options).some((k) => !PLAIN_OPTIONS.has(k))) {
    return undefined;
  }
  return new Promise((resolve, reject) => {
    const attempt = (prepare: boolean): void => {
      let settled = false;
      const query = new Query(
        { ...options, text: statement.sql, values, queryMode: 'extended' },
        undefined,
        (error, response) => {
          if (settled) return; // node-postgres may call back again on ReadyForQuery
          settled = true;
          if (error === null) prepared.add(client);
          else prepared.delete(client);
          if (error !== null && !prepare && lostPreparedStatement(error)) {
            // Someone ran DEALLOCATE ALL or DISCARD ALL: the Bind failed before
            // the statement ran (the pipeline stops at the first error), so it
            // is safe to send the whole pipeline again, preparing first.
            attempt(true);
            return;
          }
          onSettled({
            ok: error === null,
            transactionStatus: client.getTransactionStatus?.() ?? null,
          });
          if (error !== null) {
            reject(error);
            return;
          }
          statement.response = response;
          resolve(statement);
        },
      );
      client.query(new SettingThenStatement(query, setting, value, prepare));
    };
    attempt(!prepared.has(client));
  });
}

function lostPreparedStatement(error: Error): boolean {
  return (
    (error as { code?: unknown }).code === '26000' &&
    error.message.includes(`"${SET_CONFIG_STATEMENT}"`)
  );
}
