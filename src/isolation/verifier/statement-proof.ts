import { UnsafeQueryError } from '../../errors';
import { SAFE_BUILTIN_FUNCTIONS as SAFE_FUNCTIONS } from './safe-functions';
import type { ParseNode, ParseResult } from './sql-parser';

/**
 * The tables the verifier knows, read from the configuration (never from
 * the rewrite). Names are as PostgreSQL stores them.
 */
export interface VerifierTables {
  /** Tenant table name -> the schema it was declared in (undefined: `public`). */
  readonly tenant: ReadonlyMap<string, string | undefined>;
  /** Shared table name -> the schemas it was declared in. */
  readonly shared: ReadonlyMap<string, ReadonlySet<string>>;
  /** Whether an undeclared table counts as shared (`public` only) or is refused. */
  readonly unknownTables: 'refuse' | 'shared';
}

/** Settings of one proof. */
export interface ProofSettings {
  readonly mode: 'row' | 'schema';
  readonly tenantColumn: string;
  readonly tables: VerifierTables;
  /** Function names accepted besides the built-in allow-list (lower case; `schema.name` when qualified). */
  readonly isSafeFunction: (name: string) => boolean;
}

/**
 * What a statement needs at execution to be tenant-safe. The SQL text is
 * the same for every tenant in row mode (the tenant is a binding), so a
 * proof is cached by text and checked against each execution's bindings.
 */
export interface StatementProof {
  /** Whether the statement reads or writes a tenant table. */
  readonly touchesTenant: boolean;
  /**
   * Row mode: for each tenant-table reference (and each tenant-column
   * write), the `$n` parameters of which at least one must be bound to the
   * current tenant id.
   */
  readonly tenantParamGroups: ReadonlyArray<readonly number[]>;
  /** Schema mode: the schemas that qualify tenant tables (must be the current tenant's). */
  readonly tenantSchemas: readonly string[];
}

type Node = ParseNode;
type TableKind = 'tenant' | 'shared' | 'cte';

/** WITH names visible at one query level, linked to the enclosing level's. */
interface CteScope {
  readonly names: ReadonlySet<string>;
  readonly parent: CteScope | undefined;
}

/** A tenant-table reference of one level, with the conditions that filter its rows. */
interface TenantRef {
  readonly exposed: string;
  readonly schema: string | undefined;
  readonly relname: string;
  readonly aliased: boolean;
  readonly filters: readonly unknown[];
  readonly clause: string;
}

/** One query level's FROM namespace. */
interface Level {
  readonly ctes: CteScope | undefined;
  readonly names: Set<string>;
  readonly tenantRefs: TenantRef[];
}

function refuse(reason: string, clause: string, relation?: string): never {
  const where = relation === undefined ? `in ${clause}` : `in ${clause}, relation "${relation}"`;
  throw new UnsafeQueryError(
    `Cannot send this statement because tenantry cannot prove it tenant-safe (${where}): ${reason}. ` +
      'Use the query builder, or runAsSystem(reason, fn) for deliberate cross-tenant work.',
  );
}

function isObject(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The type name and body of a wrapped node (`{ "SelectStmt": {...} }`). */
function unwrap(value: unknown): [string, Node] | undefined {
  if (!isObject(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const type = keys[0] as string;
  const body = value[type];
  return isObject(body) ? [type, body] : undefined;
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function str(value: unknown): string | undefined {
  const node = unwrap(value);
  if (node === undefined || node[0] !== 'String') return undefined;
  const sval = node[1].sval;
  return typeof sval === 'string' ? sval : '';
}

function names(value: unknown): string[] | undefined {
  const out: string[] = [];
  for (const item of list(value)) {
    const s = str(item);
    if (s === undefined) return undefined;
    out.push(s);
  }
  return out;
}

function cteVisible(scope: CteScope | undefined, name: string): boolean {
  for (let s = scope; s !== undefined; s = s.parent) if (s.names.has(name)) return true;
  return false;
}

/** Fields of a SelectStmt the verifier understands; any other field set is refused. */
const SELECT_FIELDS = new Set([
  'distinctClause',
  'targetList',
  'fromClause',
  'whereClause',
  'groupClause',
  'groupDistinct',
  'havingClause',
  'windowClause',
  'valuesLists',
  'sortClause',
  'limitOffset',
  'limitCount',
  'limitOption',
  'lockingClause',
  'withClause',
  'op',
  'all',
  'larg',
  'rarg',
]);

/**
 * Expression node types that compute on their inputs only. Every other
 * node type inside an expression is refused: after a parser upgrade an
 * unknown construct becomes a refusal, never an unchecked pass.
 */
const EXPRESSION_TYPES = new Set([
  'ColumnRef',
  'ParamRef',
  'A_Const',
  'A_Expr',
  'BoolExpr',
  'NullTest',
  'BooleanTest',
  'TypeCast',
  'CollateClause',
  'FuncCall',
  'SubLink',
  'CaseExpr',
  'CaseWhen',
  'CoalesceExpr',
  'MinMaxExpr',
  'A_ArrayExpr',
  'A_Indirection',
  'A_Indices',
  'A_Star',
  'RowExpr',
  'SQLValueFunction',
  'ResTarget',
  'SortBy',
  'List',
  'String',
  'Integer',
  'Float',
  'Boolean',
  'BitString',
  'GroupingSet',
  'NamedArgExpr',
  'SetToDefault',
  'MultiAssignRef',
  'WindowDef',
  'GroupingFunc',
]);

/** Fields holding a bare (unwrapped) struct, by field name, inside expressions. */
const BARE_TYPE_NAME = 'typeName';
const BARE_WINDOW = 'over';

/**
 * Proves one parsed SQL text tenant-safe, or throws UNSAFE_QUERY naming
 * the clause and relation. It shares no code with the rewrite: it reads
 * only PostgreSQL's parse tree and the configuration.
 */
export function proveStatement(parsed: ParseResult, settings: ProofSettings): StatementProof {
  const stmts = parsed.stmts ?? [];
  if (stmts.length !== 1) {
    refuse(`it holds ${stmts.length} statements where exactly one is allowed`, 'the statement');
  }
  const prover = new Prover(settings);
  prover.topLevel((stmts[0] as { stmt?: Node }).stmt);
  return prover.result();
}

class Prover {
  readonly #s: ProofSettings;
  #touches = false;
  readonly #groups: number[][] = [];
  readonly #schemas = new Set<string>();

  constructor(settings: ProofSettings) {
    this.#s = settings;
  }

  result(): StatementProof {
    return {
      touchesTenant: this.#touches,
      tenantParamGroups: this.#groups,
      tenantSchemas: [...this.#schemas],
    };
  }

  topLevel(stmt: Node | undefined): void {
    const node = unwrap(stmt);
    if (node === undefined) refuse('it is empty', 'the statement');
    const [type, body] = node;
    if (type === 'TransactionStmt') {
      const kind = body.kind;
      const allowed = [
        'TRANS_STMT_BEGIN',
        'TRANS_STMT_START',
        'TRANS_STMT_COMMIT',
        'TRANS_STMT_ROLLBACK',
        'TRANS_STMT_SAVEPOINT',
        'TRANS_STMT_RELEASE',
        'TRANS_STMT_ROLLBACK_TO',
      ];
      if (typeof kind !== 'string' || !allowed.includes(kind)) {
        refuse(`transaction command ${String(kind)} is not allowed`, 'the statement');
      }
      return;
    }
    if (type === 'TruncateStmt') {
      this.#truncate(body);
      return;
    }
    this.#dataStatement(type, body, undefined, 'the statement');
  }

  /**
   * Schema mode only: TRUNCATE of tenant tables, each qualified with a schema the execution
   * check holds to the current tenant's. Row mode tables hold every tenant's rows; a shared
   * table is every tenant's data; CASCADE reaches tables by foreign key, unnamed here.
   */
  #truncate(t: Node): void {
    const clause = 'TRUNCATE';
    this.#checkFields(t, ['relations', 'restart_seqs', 'behavior'], clause);
    if (this.#s.mode !== 'schema') {
      refuse("TRUNCATE of a row-mode table would delete every tenant's rows", clause);
    }
    if (t.behavior !== 'DROP_RESTRICT')
      refuse('TRUNCATE ... CASCADE reaches unnamed tables', clause);
    const level: Level = { ctes: undefined, names: new Set(), tenantRefs: [] };
    const relations = list(t.relations);
    if (relations.length === 0) refuse('a TRUNCATE without a table', clause);
    for (const item of relations) {
      const rel = unwrap(item);
      if (rel === undefined || rel[0] !== 'RangeVar') refuse('an unknown TRUNCATE target', clause);
      if (this.#target({ relation: rel[1] }, level, [], clause) !== 'tenant') {
        refuse(
          "TRUNCATE of a shared table would delete every tenant's data",
          clause,
          String(rel[1].relname),
        );
      }
    }
  }

  /** SELECT, INSERT, UPDATE or DELETE (top level or a WITH query). */
  #dataStatement(type: string, body: Node, ctes: CteScope | undefined, clause: string): void {
    switch (type) {
      case 'SelectStmt':
        this.#select(body, ctes, clause);
        return;
      case 'InsertStmt':
        this.#insert(body, ctes);
        return;
      case 'UpdateStmt':
        this.#update(body, ctes);
        return;
      case 'DeleteStmt':
        this.#delete(body, ctes);
        return;
      default:
        refuse(`a ${type} is not a query the tenant-scoped Knex may send`, clause);
    }
  }

  // ---- WITH ---------------------------------------------------------------

  #withClause(withClause: unknown, outer: CteScope | undefined): CteScope | undefined {
    if (!isObject(withClause)) return outer;
    const ctes = list(withClause.ctes).map((c) => {
      const node = unwrap(c);
      if (node === undefined || node[0] !== 'CommonTableExpr') refuse('unknown WITH item', 'WITH');
      return node[1];
    });
    const recursive = withClause.recursive === true;
    const declared = new Set<string>();
    for (const cte of ctes) {
      const name = cte.ctename;
      if (typeof name !== 'string') refuse('a WITH query without a name', 'WITH');
      if (this.#s.tables.tenant.has(name)) {
        refuse('a WITH query may not shadow a tenant table', 'WITH', name);
      }
      if (declared.has(name)) refuse('a WITH name is used twice', 'WITH', name);
      declared.add(name);
    }
    const all: CteScope = { names: declared, parent: outer };
    // A non-recursive WITH query sees only the ones before it; a recursive list sees all.
    const seen = new Set<string>();
    for (const cte of ctes) {
      const scope: CteScope = recursive ? all : { names: new Set(seen), parent: outer };
      const query = unwrap(cte.ctequery);
      if (query === undefined) refuse('a WITH query without a body', 'WITH', String(cte.ctename));
      this.#dataStatement(query[0], query[1], scope, `WITH "${String(cte.ctename)}"`);
      seen.add(cte.ctename as string);
    }
    return all;
  }

  // ---- SELECT -------------------------------------------------------------

  /** Proves a SELECT (or VALUES, or set operation) level; returns its level for INSERT ... SELECT. */
  #select(s: Node, outer: CteScope | undefined, clause: string): Level | undefined {
    for (const key of Object.keys(s)) {
      if (!SELECT_FIELDS.has(key)) refuse(`the SELECT clause "${key}" is not allowed`, clause);
    }
    const ctes = this.#withClause(s.withClause, outer);
    if (s.op !== undefined && s.op !== 'SETOP_NONE') {
      if (!isObject(s.larg) || !isObject(s.rarg)) refuse('a set operation without arms', clause);
      this.#select(s.larg, ctes, `${clause} (set operation)`);
      this.#select(s.rarg, ctes, `${clause} (set operation)`);
      if (s.lockingClause !== undefined) refuse('FOR UPDATE on a set operation', clause);
      this.#expressions([s.sortClause, s.limitOffset, s.limitCount], ctes, clause);
      return undefined;
    }
    const level: Level = { ctes, names: new Set(), tenantRefs: [] };
    const where = s.whereClause;
    for (const item of list(s.fromClause)) this.#fromItem(item, level, [where], 'FROM');
    this.#expressions(
      [
        s.distinctClause,
        s.targetList,
        where,
        s.groupClause,
        s.havingClause,
        s.windowClause,
        s.valuesLists,
        s.sortClause,
        s.limitOffset,
        s.limitCount,
      ],
      ctes,
      clause,
    );
    this.#lockingClause(s.lockingClause, level, clause);
    this.#constrain(level);
    return level;
  }

  #lockingClause(value: unknown, level: Level, clause: string): void {
    for (const item of list(value)) {
      const node = unwrap(item);
      if (node === undefined || node[0] !== 'LockingClause')
        refuse('unknown locking clause', clause);
      // FOR UPDATE OF names FROM items of this level, not relations.
      for (const rel of list(node[1].lockedRels)) {
        const r = unwrap(rel);
        const name = r?.[0] === 'RangeVar' ? r[1].relname : undefined;
        if (typeof name !== 'string' || r?.[1].schemaname !== undefined || !level.names.has(name)) {
          refuse('FOR UPDATE OF must name a table of this query level', clause);
        }
      }
    }
  }

  // ---- FROM ---------------------------------------------------------------

  #register(level: Level, name: string, clause: string): void {
    if (level.names.has(name)) refuse('two FROM items have the same name', clause, name);
    level.names.add(name);
  }

  /** The kind of a relation reference, refusing what is neither tenant, shared nor a visible CTE. */
  #classify(
    schema: string | undefined,
    relname: string,
    ctes: CteScope | undefined,
    allowCte: boolean,
    clause: string,
  ): TableKind {
    const label = schema === undefined ? relname : `${schema}.${relname}`;
    if (allowCte && schema === undefined && cteVisible(ctes, relname)) return 'cte';
    const tables = this.#s.tables;
    if (tables.tenant.has(relname)) {
      const declared = tables.tenant.get(relname) ?? 'public';
      if (this.#s.mode === 'row') {
        if (schema === undefined || schema === declared) return 'tenant';
      } else if (schema !== undefined && !tables.shared.get(relname)?.has(schema)) {
        // Any schema: the execution check accepts only the current tenant's.
        return 'tenant';
      } else if (schema === undefined) {
        refuse('a tenant table must be qualified with the tenant schema', clause, label);
      }
    }
    const shared = tables.shared.get(relname);
    if (shared !== undefined) {
      if (schema === undefined ? this.#s.mode === 'row' : shared.has(schema)) return 'shared';
      if (schema === undefined) refuse('a shared table must be schema-qualified', clause, label);
    }
    if (
      tables.unknownTables === 'shared' &&
      !tables.tenant.has(relname) &&
      !relname.startsWith('pg_') &&
      (schema === 'public' || (schema === undefined && this.#s.mode === 'row'))
    ) {
      return 'shared';
    }
    refuse('it is neither a declared tenant table, a shared table nor a WITH query', clause, label);
  }

  #relation(
    rv: Node,
    level: Level,
    filters: readonly unknown[],
    clause: string,
    allowCte: boolean,
  ): void {
    const relname = rv.relname;
    const schema = rv.schemaname;
    if (typeof relname !== 'string') refuse('a relation without a name', clause);
    if (rv.catalogname !== undefined) refuse('a database-qualified name', clause, relname);
    if (schema !== undefined && typeof schema !== 'string')
      refuse('a bad schema name', clause, relname);
    const kind = this.#classify(schema, relname, level.ctes, allowCte, clause);
    const alias = isObject(rv.alias) ? rv.alias : undefined;
    const aliasName = alias?.aliasname;
    if (alias !== undefined && typeof aliasName !== 'string')
      refuse('a bad alias', clause, relname);
    const exposed = (aliasName as string | undefined) ?? relname;
    this.#register(level, exposed, clause);
    if (kind !== 'tenant') return;
    if (alias?.colnames !== undefined) {
      refuse('column aliases on a tenant table could rename its tenant column', clause, relname);
    }
    this.#touches = true;
    if (this.#s.mode === 'schema') {
      this.#schemas.add(schema as string);
      return;
    }
    level.tenantRefs.push({
      exposed,
      schema,
      relname,
      aliased: aliasName !== undefined,
      filters,
      clause,
    });
  }

  #fromItem(item: unknown, level: Level, filters: readonly unknown[], clause: string): void {
    const node = unwrap(item);
    if (node === undefined) refuse('an unknown FROM item', clause);
    const [type, body] = node;
    switch (type) {
      case 'RangeVar':
        this.#relation(body, level, filters, clause, true);
        return;
      case 'JoinExpr': {
        if (body.alias !== undefined || body.join_using_alias !== undefined) {
          refuse('an aliased JOIN hides its tables', clause);
        }
        const quals = body.quals;
        const withQuals = quals === undefined ? filters : [...filters, quals];
        // A join's ON filters the rows of a side it does not preserve.
        let left = filters;
        let right = filters;
        switch (body.jointype) {
          case 'JOIN_INNER':
            left = withQuals;
            right = withQuals;
            break;
          case 'JOIN_LEFT':
            right = withQuals;
            break;
          case 'JOIN_RIGHT':
            left = withQuals;
            break;
          case 'JOIN_FULL':
            break;
          default:
            refuse(`join type ${String(body.jointype)}`, clause);
        }
        this.#fromItem(body.larg, level, left, 'JOIN');
        this.#fromItem(body.rarg, level, right, 'JOIN');
        this.#expression(quals, level.ctes, 'JOIN ... ON');
        return;
      }
      case 'RangeSubselect': {
        const sub = unwrap(body.subquery);
        if (sub === undefined || sub[0] !== 'SelectStmt')
          refuse('a FROM subquery that is not a SELECT', clause);
        this.#select(sub[1], level.ctes, 'a FROM subquery');
        const alias = isObject(body.alias) ? body.alias.aliasname : undefined;
        if (typeof alias === 'string') this.#register(level, alias, clause);
        return;
      }
      case 'RangeFunction': {
        for (const entry of list(body.functions)) {
          const pair = unwrap(entry);
          const items = pair?.[0] === 'List' ? list(pair[1].items) : [];
          const fn = items[0];
          const coldef = items[1];
          if (isObject(coldef) && Object.keys(coldef).length > 0) {
            refuse('a column definition list on a FROM function', clause);
          }
          this.#expression(fn, level.ctes, 'a FROM function');
        }
        if (body.coldeflist !== undefined)
          refuse('a column definition list on a FROM function', clause);
        const alias = isObject(body.alias) ? body.alias.aliasname : undefined;
        if (typeof alias === 'string') this.#register(level, alias, clause);
        return;
      }
      default:
        refuse(`a ${type} FROM item is not allowed`, clause);
    }
  }

  // ---- row-mode constraint -----------------------------------------------

  /** Every tenant reference of the level needs `<its name>.<tenant column> = $n` in a filter of its rows. */
  #constrain(level: Level): void {
    for (const ref of level.tenantRefs) {
      const params: number[] = [];
      for (const filter of ref.filters) this.#tenantParams(filter, ref, params);
      if (params.length === 0) {
        refuse(
          `no top-level AND condition "${ref.exposed}.${this.#s.tenantColumn} = <tenant>" filters its rows`,
          ref.clause,
          ref.relname,
        );
      }
      this.#groups.push(params);
    }
  }

  #tenantParams(expr: unknown, ref: TenantRef, out: number[]): void {
    const node = unwrap(expr);
    if (node === undefined) return;
    const [type, body] = node;
    if (type === 'BoolExpr') {
      if (body.boolop === 'AND_EXPR')
        for (const arg of list(body.args)) this.#tenantParams(arg, ref, out);
      return;
    }
    if (type !== 'A_Expr' || body.kind !== 'AEXPR_OP') return;
    const op = names(body.name);
    if (op === undefined || !(op.length === 1 || (op.length === 2 && op[0] === 'pg_catalog')))
      return;
    if (op[op.length - 1] !== '=') return;
    const pairs: Array<[unknown, unknown]> = [
      [body.lexpr, body.rexpr],
      [body.rexpr, body.lexpr],
    ];
    for (const [column, value] of pairs) {
      const param = paramNumber(value);
      if (param !== undefined && this.#isTenantColumnOf(column, ref)) {
        out.push(param);
        return;
      }
    }
  }

  #isTenantColumnOf(expr: unknown, ref: TenantRef): boolean {
    const node = unwrap(expr);
    if (node === undefined || node[0] !== 'ColumnRef') return false;
    const fields = names(node[1].fields);
    if (fields === undefined || fields[fields.length - 1] !== this.#s.tenantColumn) return false;
    if (fields.length === 2) return fields[0] === ref.exposed;
    if (fields.length === 3) {
      return (
        !ref.aliased &&
        ref.schema !== undefined &&
        fields[0] === ref.schema &&
        fields[1] === ref.relname
      );
    }
    return false;
  }

  // ---- INSERT / UPDATE / DELETE -------------------------------------------

  /** The target table of a write (never a WITH name: PostgreSQL writes tables only). */
  #target(stmt: Node, level: Level, filters: readonly unknown[], clause: string): TableKind {
    const rv = stmt.relation;
    if (!isObject(rv)) refuse('a write without a target table', clause);
    const before = level.tenantRefs.length;
    this.#relation(rv, level, filters, clause, false);
    if (this.#s.mode === 'row') return level.tenantRefs.length > before ? 'tenant' : 'shared';
    const relname = rv.relname as string;
    return this.#s.tables.tenant.has(relname) ? 'tenant' : 'shared';
  }

  #checkFields(stmt: Node, allowed: readonly string[], clause: string): void {
    for (const key of Object.keys(stmt)) {
      if (!allowed.includes(key)) refuse(`the clause "${key}" is not allowed`, clause);
    }
  }

  /** SET lists: the tenant column may only be set to the tenant (or to `excluded.<tenant column>` in an upsert). */
  #assignments(
    targets: unknown,
    ctes: CteScope | undefined,
    clause: string,
    upsert: boolean,
  ): void {
    const column = this.#s.tenantColumn;
    for (const item of list(targets)) {
      const node = unwrap(item);
      if (node === undefined || node[0] !== 'ResTarget') refuse('an unknown SET item', clause);
      const target = node[1];
      if (target.name === column) {
        if (target.indirection !== undefined)
          refuse('a partial write of the tenant column', clause);
        if (this.#s.mode === 'row') {
          const param = paramNumber(target.val);
          if (param !== undefined) this.#groups.push([param]);
          else if (!(upsert && isExcludedColumn(target.val, column))) {
            refuse(`"${column}" may only be set to the current tenant`, clause);
          }
        }
      }
      this.#expression(target.val, ctes, clause);
    }
  }

  #returning(value: unknown, ctes: CteScope | undefined): void {
    this.#expression(value, ctes, 'RETURNING');
  }

  #update(u: Node, outer: CteScope | undefined): void {
    const clause = 'UPDATE';
    this.#checkFields(
      u,
      ['relation', 'targetList', 'whereClause', 'fromClause', 'returningList', 'withClause'],
      clause,
    );
    const ctes = this.#withClause(u.withClause, outer);
    const level: Level = { ctes, names: new Set(), tenantRefs: [] };
    const where = u.whereClause;
    this.#target(u, level, [where], clause);
    for (const item of list(u.fromClause)) this.#fromItem(item, level, [where], 'UPDATE ... FROM');
    this.#assignments(u.targetList, ctes, 'UPDATE ... SET', false);
    this.#expression(where, ctes, 'WHERE');
    this.#returning(u.returningList, ctes);
    this.#constrain(level);
  }

  #delete(d: Node, outer: CteScope | undefined): void {
    const clause = 'DELETE';
    this.#checkFields(
      d,
      ['relation', 'usingClause', 'whereClause', 'returningList', 'withClause'],
      clause,
    );
    const ctes = this.#withClause(d.withClause, outer);
    const level: Level = { ctes, names: new Set(), tenantRefs: [] };
    const where = d.whereClause;
    this.#target(d, level, [where], clause);
    for (const item of list(d.usingClause))
      this.#fromItem(item, level, [where], 'DELETE ... USING');
    this.#expression(where, ctes, 'WHERE');
    this.#returning(d.returningList, ctes);
    this.#constrain(level);
  }

  #insert(ins: Node, outer: CteScope | undefined): void {
    const clause = 'INSERT';
    this.#checkFields(
      ins,
      [
        'relation',
        'cols',
        'selectStmt',
        'onConflictClause',
        'returningList',
        'withClause',
        'override',
      ],
      clause,
    );
    const ctes = this.#withClause(ins.withClause, outer);
    // The target's rows are not read: it needs no WHERE, only the stamped value.
    const level: Level = { ctes, names: new Set(), tenantRefs: [] };
    const kind = this.#target(ins, level, [], clause);
    level.tenantRefs.length = 0;
    const column = this.#s.tenantColumn;
    const cols = list(ins.cols).map((c) => {
      const node = unwrap(c);
      if (node === undefined || node[0] !== 'ResTarget' || typeof node[1].name !== 'string') {
        refuse('an unknown insert column', clause);
      }
      if (node[1].name === column && node[1].indirection !== undefined) {
        refuse('a partial write of the tenant column', clause);
      }
      return node[1].name as string;
    });
    const position = cols.indexOf(column);
    const rowMode = this.#s.mode === 'row' && kind === 'tenant';
    if (rowMode && position === -1) {
      refuse(
        `an insert into a tenant table must list "${column}"`,
        clause,
        String((ins.relation as Node).relname),
      );
    }
    const source = unwrap(ins.selectStmt);
    if (source === undefined) {
      if (rowMode) refuse('DEFAULT VALUES cannot carry the tenant', clause);
    } else {
      if (source[0] !== 'SelectStmt') refuse('an unknown insert source', clause);
      const sel = source[1];
      if (sel.valuesLists !== undefined) {
        const rows = list(sel.valuesLists);
        this.#select(sel, ctes, 'INSERT ... VALUES');
        if (rowMode) {
          for (const row of rows) {
            const items =
              unwrap(row)?.[0] === 'List' ? list((unwrap(row) as [string, Node])[1].items) : [];
            if (items.length !== cols.length)
              refuse('a VALUES row of another width than the column list', clause);
            const param = paramNumber(items[position]);
            if (param === undefined)
              refuse(`"${column}" must be bound to the current tenant in every row`, clause);
            this.#groups.push([param]);
          }
        }
      } else {
        const sourceLevel = this.#select(sel, ctes, 'INSERT ... SELECT');
        if (rowMode) this.#insertSelectTenant(sel, sourceLevel, cols.length, position, clause);
      }
    }
    const conflict = ins.onConflictClause;
    if (isObject(conflict)) {
      this.#checkFields(
        conflict,
        ['action', 'infer', 'targetList', 'whereClause', 'location'],
        'ON CONFLICT',
      );
      if (rowMode) {
        const infer = isObject(conflict.infer) ? conflict.infer : undefined;
        const elems = list(infer?.indexElems).map((e) => unwrap(e)?.[1]?.name);
        if (infer?.conname !== undefined || !elems.includes(column)) {
          refuse(
            `the conflict target must include "${column}" so one tenant's insert never meets another tenant's row`,
            'ON CONFLICT',
          );
        }
      }
      if (isObject(conflict.infer))
        this.#expression(conflict.infer.whereClause, ctes, 'ON CONFLICT');
      this.#assignments(conflict.targetList, ctes, 'ON CONFLICT ... DO UPDATE SET', true);
      this.#expression(conflict.whereClause, ctes, 'ON CONFLICT ... WHERE');
    }
    this.#returning(ins.returningList, ctes);
  }

  /** INSERT ... SELECT maps columns by position: the tenant column's position must carry the tenant. */
  #insertSelectTenant(
    sel: Node,
    level: Level | undefined,
    width: number,
    position: number,
    clause: string,
  ): void {
    if (level === undefined) refuse('INSERT ... SELECT from a set operation', clause);
    const targets = list(sel.targetList);
    if (targets.length !== width)
      refuse('INSERT ... SELECT of another width than the column list', clause);
    for (const t of targets) {
      const val = unwrap(t)?.[1]?.val;
      const col = unwrap(val);
      if (
        col?.[0] === 'ColumnRef' &&
        list(col[1].fields).some((f) => unwrap(f)?.[0] === 'A_Star')
      ) {
        refuse('INSERT ... SELECT * cannot be mapped by position', clause);
      }
    }
    const value = unwrap(targets[position])?.[1]?.val;
    const param = paramNumber(value);
    if (param !== undefined) {
      this.#groups.push([param]);
      return;
    }
    // A constrained tenant reference's own tenant column is the tenant.
    const ref = level.tenantRefs.find((r) => this.#isTenantColumnOf(value, r));
    // Unqualified, the column binds to the level's only FROM item when that is the tenant table.
    const only = level.names.size === 1 && level.tenantRefs.length === 1;
    const bare = names(
      unwrap(value)?.[0] === 'ColumnRef' ? (unwrap(value) as [string, Node])[1].fields : undefined,
    );
    const unqualified = only && bare?.length === 1 && bare[0] === this.#s.tenantColumn;
    if (ref === undefined && !unqualified) {
      refuse(
        `the selected value for "${this.#s.tenantColumn}" is not provably the current tenant`,
        clause,
      );
    }
  }

  // ---- expressions ---------------------------------------------------------

  #expressions(values: readonly unknown[], ctes: CteScope | undefined, clause: string): void {
    for (const value of values) this.#expression(value, ctes, clause);
  }

  #expression(value: unknown, ctes: CteScope | undefined, clause: string): void {
    if (value === undefined || value === null) return;
    if (Array.isArray(value)) {
      for (const item of value) this.#expression(item, ctes, clause);
      return;
    }
    if (!isObject(value)) return;
    if (Object.keys(value).length === 0) return; // a NULL list slot
    const node = unwrap(value);
    if (node === undefined) refuse('an unknown expression', clause);
    const [type, body] = node;
    if (!EXPRESSION_TYPES.has(type)) refuse(`a ${type} is not allowed in an expression`, clause);
    if (type === 'A_Const') return;
    if (type === 'SubLink') {
      const sub = unwrap(body.subselect);
      if (sub === undefined || sub[0] !== 'SelectStmt')
        refuse('a subquery that is not a SELECT', clause);
      this.#select(sub[1], ctes, 'a subquery');
      this.#expression(body.testexpr, ctes, clause);
      return;
    }
    if (type === 'FuncCall') this.#function(body, clause);
    for (const key of Object.keys(body)) {
      const field = body[key];
      if (typeof field !== 'object' || field === null) continue;
      if (key === BARE_TYPE_NAME) {
        this.#expressions([(field as Node).typmods, (field as Node).arrayBounds], ctes, clause);
      } else if (key === BARE_WINDOW) {
        const w = field as Node;
        this.#expressions(
          [w.partitionClause, w.orderClause, w.startOffset, w.endOffset],
          ctes,
          clause,
        );
      } else if (
        key === 'funcname' ||
        key === 'name' ||
        key === 'collname' ||
        key === 'fields' ||
        key === 'indirection'
      ) {
        this.#expression(field, ctes, clause); // String / A_Star / A_Indices lists
      } else if (Array.isArray(field) || unwrap(field) !== undefined) {
        this.#expression(field, ctes, clause);
      } else {
        refuse(`an unknown part "${key}" of a ${type}`, clause);
      }
    }
  }

  #function(fn: Node, clause: string): void {
    const parts = names(fn.funcname);
    if (parts === undefined || parts.length === 0)
      refuse('a function with an unreadable name', clause);
    const qualified = parts.join('.');
    const builtin =
      (parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog')) &&
      SAFE_FUNCTIONS.has(parts[parts.length - 1] as string);
    if (!builtin && !this.#s.isSafeFunction(qualified)) {
      refuse(
        `function ${qualified}() is not on the allow-list (declare it in safeFunctions if it cannot run SQL)`,
        clause,
      );
    }
  }
}

function paramNumber(value: unknown): number | undefined {
  const node = unwrap(value);
  if (node === undefined || node[0] !== 'ParamRef') return undefined;
  const n = node[1].number;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

function isExcludedColumn(value: unknown, column: string): boolean {
  const node = unwrap(value);
  if (node === undefined || node[0] !== 'ColumnRef') return false;
  const fields = names(node[1].fields);
  return (
    fields !== undefined && fields.length === 2 && fields[0] === 'excluded' && fields[1] === column
  );
}
