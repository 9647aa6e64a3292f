/**
 * The one door to the PostgreSQL parser (npm `libpg-query`: PostgreSQL's own
 * parser compiled to WebAssembly, no native build). The verifier reads the
 * raw parse tree it returns as JSON; nothing else in tenantry touches it.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const libpg = require('libpg-query') as {
  loadModule(): Promise<void>;
  parseSync(sql: string): unknown;
};

/** A node of the raw parse tree as libpg-query emits it (`{ "SelectStmt": { ... } }` or a bare struct). */
export type ParseNode = Readonly<Record<string, unknown>>;

/** The parser's answer: the statements of one SQL text. */
export interface ParseResult {
  readonly stmts?: ReadonlyArray<{ readonly stmt?: ParseNode }>;
}

let loaded = false;
let loading: Promise<void> | undefined;

/**
 * Loads the WebAssembly parser once per process. Statements wait for it
 * before they are sent (the scoped client's checkout awaits it).
 */
export function loadSqlParser(): Promise<void> {
  if (loaded) return Promise.resolve();
  loading ??= libpg.loadModule().then(
    () => {
      loaded = true;
    },
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** Whether {@link loadSqlParser} has finished. */
export function sqlParserLoaded(): boolean {
  return loaded;
}

/** Parses `sql` synchronously; throws the parser's syntax error. Needs {@link loadSqlParser} first. */
export function parseSql(sql: string): ParseResult {
  if (!loaded) {
    throw new Error('The SQL parser is not loaded yet: await loadSqlParser() first.');
  }
  return libpg.parseSync(sql) as ParseResult;
}
