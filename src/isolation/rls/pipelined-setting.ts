/**
 * Sends `select set_config(name, value, true)` and a statement in one round
 * trip: both go out in one write as extended-protocol messages closed by the
 * statement's own Sync, so PostgreSQL runs them in one transaction and the
 * setting is *local* to it. Nothing survives the transaction, so no
 * connection (client-side or in a pooler such as PgBouncer) ever carries a
 * tenant from one statement to the next, and a pooler that hands each
 * transaction to another server connection hands the setting along with it.
 *
 * `before` puts the setting ahead of the statement (a single statement: one
 * implicit transaction); `after` puts it right behind the statement, before
 * the Sync (a BEGIN or SAVEPOINT: the setting then lives in that block).
 *
 * By default the setting is an unnamed statement, parsed each time: a named
 * prepared statement lives on a server connection, where raw SQL run earlier
 * (`PREPARE` under the same name, possibly on another client's behalf behind
 * a pooler) could have replaced it. With `prepared` (opt-in) it is bound to a
 * named statement *optimistically*, only where a miss is harmless: a single
 * statement on a connection outside any transaction block. If the server
 * connection lacks it (a new connection, another one behind a pooler,
 * DEALLOCATE or DISCARD ALL), that Bind fails before anything of the pipeline
 * runs, the implicit transaction rolls back, and the pipeline is sent again
 * with Close + Parse first.
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
  method?: unknown;
}

/** The node-postgres wire connection (`client.connection`). */
interface WireConnection {
  stream: { cork?: () => void; uncork?: () => void };
  parse(message: { text: string; name: string; types: unknown[] }): void;
  bind(message: { portal: string; statement: string; values: unknown[] }): void;
  execute(message: { portal: string; rows: number }): void;
  sync(): void;
}

/** What node-postgres calls on the active submittable. */
interface Submittable {
  submit(connection: WireConnection): Error | null | undefined | void;
  handleRowDescription?(message: unknown): void;
  handleDataRow?(message: unknown): void;
  handleCommandComplete?(message: unknown, connection: WireConnection): void;
  handleError?(error: unknown, connection: WireConnection): void;
  handleReadyForQuery?(connection: WireConnection): void;
  handleEmptyQuery?(connection: WireConnection): void;
  handlePortalSuspended?(connection: WireConnection): void;
  handleCopyInResponse?(connection: WireConnection): void;
  handleCopyData?(message: unknown, connection: WireConnection): void;
  callback?: unknown;
  _result?: unknown;
  binary?: unknown;
  name?: unknown;
  text?: unknown;
  queryMode?: unknown;
}

type PgQueryConstructor = new (
  config: unknown,
  values?: unknown,
  callback?: unknown,
) => Submittable;

/** A node-postgres `Client` (what knex's pool hands out). */
export interface PgClient {
  constructor: { Query?: PgQueryConstructor };
  query(config: unknown, values?: unknown, callback?: unknown): unknown;
  getTransactionStatus?: () => string | null;
}

/** Where the setting goes relative to the statement it rides with. */
export type SettingOrder = 'before' | 'after';

/** The setting statement; `true`: local to the transaction it runs in. */
export const SET_LOCAL_CONFIG = 'select set_config($1, $2, true)';

/**
 * The name {@link SET_LOCAL_CONFIG} is prepared under. Bump the suffix if the
 * text ever changes: behind a pooler, the statement bound may have been
 * prepared by another process.
 */
export const SET_LOCAL_STATEMENT = 'tenantry_set_local_config_v1';

/**
 * How the setting statement is sent: `unnamed` (parsed each time), `bind`
 * (bound to the named statement, assumed present) or `prepare` (Close +
 * Parse of the named statement, then bound).
 */
type SettingStatement = 'unnamed' | 'bind' | 'prepare';

interface CloseMessage {
  close?(message: { type: 'S'; name: string }): void;
}

function writeSetting(
  connection: WireConnection & CloseMessage,
  setting: string,
  value: string,
  statement: SettingStatement,
): void {
  const name = statement === 'unnamed' ? '' : SET_LOCAL_STATEMENT;
  if (statement === 'prepare') connection.close?.({ type: 'S', name });
  if (statement !== 'bind') connection.parse({ text: SET_LOCAL_CONFIG, name, types: [] });
  connection.bind({ portal: '', statement: name, values: [setting, value] });
  connection.execute({ portal: '', rows: 0 });
}

/** Whether a pipeline failed because the server connection lacks the named setting statement. */
function lostSettingStatement(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return (
    e?.code === '26000' && typeof e.message === 'string' && e.message.includes(SET_LOCAL_STATEMENT)
  );
}

/**
 * Wraps a submittable (a node-postgres Query, a pg-cursor, a pg-query-stream)
 * so the setting is written with it, and hides the setting's own DataRow and
 * CommandComplete from it. Any error (the setting's or the statement's) goes
 * to the statement: the pipeline stops at the first error, the transaction
 * aborts and the setting with it.
 */
class SettingPipeline {
  /** Whether the setting's DataRow/CommandComplete are the next to arrive. */
  private settingNext: boolean;

  constructor(
    private readonly statement: Submittable,
    private readonly setting: string,
    private readonly value: string,
    private readonly order: SettingOrder,
    private readonly prepared: SettingStatement = 'unnamed',
  ) {
    this.settingNext = order === 'before';
  }

  // node-postgres reads and writes these on the submittable it was given
  // (query_timeout wraps `callback`, client-level types go to `_result`).
  get callback(): unknown {
    return this.statement.callback;
  }
  set callback(value: unknown) {
    this.statement.callback = value;
  }
  get _result(): unknown {
    return this.statement._result;
  }
  get binary(): unknown {
    return this.statement.binary;
  }
  set binary(value: unknown) {
    this.statement.binary = value;
  }
  get name(): unknown {
    return this.statement.name;
  }
  get text(): unknown {
    return this.statement.text;
  }

  submit(connection: WireConnection): Error | null | undefined | void {
    connection.stream.cork?.();
    try {
      if (this.order === 'before') {
        writeSetting(connection, this.setting, this.value, this.prepared);
        return this.statement.submit(connection);
      }
      // After the statement, before its Sync: the statement's messages go
      // through a view of the connection whose sync() writes the setting first.
      const { setting, value } = this;
      const view = Object.create(connection) as WireConnection;
      view.sync = function syncAfterSetting(): void {
        writeSetting(connection, setting, value, 'unnamed');
        connection.sync();
      };
      return this.statement.submit(view);
    } finally {
      connection.stream.uncork?.();
    }
  }

  handleRowDescription(message: unknown): void {
    this.statement.handleRowDescription?.(message);
  }

  handleDataRow(message: unknown): void {
    // set_config's own row (it was not described, so it carries no fields to read).
    if (!this.settingNext) this.statement.handleDataRow?.(message);
  }

  handleCommandComplete(message: unknown, connection: WireConnection): void {
    if (this.settingNext) {
      this.settingNext = false;
      return;
    }
    this.statement.handleCommandComplete?.(message, connection);
    if (this.order === 'after') this.settingNext = true;
  }

  handleError(error: unknown, connection: WireConnection): void {
    this.statement.handleError?.(error, connection);
  }

  handleReadyForQuery(connection: WireConnection): void {
    this.statement.handleReadyForQuery?.(connection);
  }

  handleEmptyQuery(connection: WireConnection): void {
    this.statement.handleEmptyQuery?.(connection);
  }

  handlePortalSuspended(connection: WireConnection): void {
    this.statement.handlePortalSuspended?.(connection);
  }

  handleCopyInResponse(connection: WireConnection): void {
    this.statement.handleCopyInResponse?.(connection);
  }

  handleCopyData(message: unknown, connection: WireConnection): void {
    this.statement.handleCopyData?.(message, connection);
  }
}

/**
 * A view of `connection` whose `query()` sends the next statement (a config
 * with a callback, as knex's `_query` sends it, or a submittable such as
 * pg-query-stream, as knex's `_stream` does) with the setting in the same
 * round trip. Statements given as a config always use the extended protocol
 * (a single statement: PostgreSQL refuses several with 42601, see
 * {@link isMultiStatementRefusal}). Returns `undefined` when the driver is not
 * node-postgres.
 */
export function withSetting(
  connection: unknown,
  setting: string,
  value: string,
  order: SettingOrder,
  prepared = false,
): PgClient | undefined {
  const client = connection as PgClient;
  const Query = client?.constructor?.Query;
  if (typeof Query !== 'function' || typeof client.query !== 'function') return undefined;
  const view = Object.create(client) as PgClient;
  view.query = function queryWithSetting(config: unknown, values?: unknown, callback?: unknown) {
    if (typeof (config as Submittable | null)?.submit === 'function') {
      client.query(new SettingPipeline(config as Submittable, setting, value, order));
      return config;
    }
    const named = prepared && order === 'before' && client.getTransactionStatus?.() === 'I';
    if (!named || config === null || typeof config !== 'object') {
      const query = new Query(config, values, callback);
      query.queryMode = 'extended';
      return client.query(new SettingPipeline(query, setting, value, order));
    }
    // knex's _query: (config, callback). The config is copied per attempt:
    // node-postgres writes the callback into the config it is given.
    const done = (typeof values === 'function' ? values : callback) as
      ((error: unknown, result?: unknown) => void) | undefined;
    const bound = Array.isArray(values) ? values : undefined;
    const send = (statement: SettingStatement): void => {
      const query = new Query(
        { ...(config as object), queryMode: 'extended' },
        bound,
        (error: unknown, result: unknown) => {
          if (error && statement === 'bind' && lostSettingStatement(error)) {
            send('prepare'); // nothing ran: the Bind failed first, the implicit transaction rolled back
            return;
          }
          done?.(error, result);
        },
      );
      client.query(new SettingPipeline(query, setting, value, order, statement));
    };
    send('bind');
    return undefined;
  };
  return view;
}

/**
 * Whether PostgreSQL refused a statement at Parse because it holds several
 * commands (the extended protocol takes one): nothing of it ran.
 */
export function isMultiStatementRefusal(error: unknown): boolean {
  const e = error as { code?: unknown; routine?: unknown; message?: unknown } | null;
  if (e?.code !== '42601') return false;
  return (
    e.routine === 'exec_parse_message' ||
    (typeof e.message === 'string' && e.message.includes('multiple commands'))
  );
}

/**
 * Whether PostgreSQL refused a statement because it cannot run inside a
 * transaction block or pipeline (`25001`: VACUUM, DISCARD ALL, CREATE
 * DATABASE, ...). The check comes before the statement does anything.
 */
export function isOutsideTransactionOnly(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '25001';
}
