/**
 * The final-SQL verifier on its own, without a database (like knex's
 * compiled-SQL tests): PostgreSQL's parser reads each text, the proof says
 * which parameters must carry the tenant, or refuses naming the clause.
 */
import { expect } from 'chai';
import { loadSqlParser, parseSql } from '../../../src/isolation/verifier/sql-parser';
import {
  proveStatement,
  type ProofSettings,
  type StatementProof,
} from '../../../src/isolation/verifier/statement-proof';
import { FinalSqlVerifier } from '../../../src/isolation/verifier/final-sql-verifier';
import type { CapturedScope } from '../../../src/isolation/scope-capture';

const tables = {
  tenant: new Map<string, string | undefined>([
    ['documents', undefined],
    ['comments', undefined],
  ]),
  shared: new Map<string, ReadonlySet<string>>([
    ['countries', new Set(['public'])],
    ['plans', new Set(['billing'])],
  ]),
  unknownTables: 'refuse' as const,
};

const row: ProofSettings = {
  mode: 'row',
  tenantColumn: 'tenant_id',
  tables,
  isSafeFunction: (name) => name === 'app.slugify',
};
const schema: ProofSettings = { ...row, mode: 'schema' };

function prove(sql: string, settings: ProofSettings = row): StatementProof {
  return proveStatement(parseSql(sql), settings);
}

function refusal(sql: string, settings: ProofSettings = row): string {
  try {
    prove(sql, settings);
  } catch (error) {
    expect((error as { code?: string }).code).to.equal('UNSAFE_QUERY');
    return (error as Error).message;
  }
  return expect.fail(`accepted: ${sql}`);
}

describe('proveStatement() (the final-SQL verifier)', () => {
  before(() => loadSqlParser());

  describe('row mode: accepts', () => {
    const accepted: Array<[string, number[][]]> = [
      ['select * from "documents" where "documents"."tenant_id" = $1', [[1]]],
      ['select * from documents d where d.id = $1 and d.tenant_id = $2', [[2]]],
      ['select * from documents where $1 = documents.tenant_id', [[1]]],
      ['select * from public.documents where public.documents.tenant_id = $1', [[1]]],
      ['select * from documents where (id = $1 or id = $2) and documents.tenant_id = $3', [[3]]],
      [
        'select * from documents left join comments on comments.document_id = documents.id and comments.tenant_id = $1 where documents.tenant_id = $2',
        [[1], [2]],
      ],
      [
        'select * from documents join comments on comments.tenant_id = $1 where documents.tenant_id = $2',
        [[1], [2]],
      ],
      [
        'select * from countries where exists (select 1 from documents where documents.tenant_id = $1)',
        [[1]],
      ],
      [
        'with d as (select * from documents where documents.tenant_id = $1) select * from d join countries on true',
        [[1]],
      ],
      [
        'select id from documents where documents.tenant_id = $1 union all select id from comments where comments.tenant_id = $2',
        [[1], [2]],
      ],
      [
        'select count(*), lower(title) from documents where documents.tenant_id = $1 group by 2',
        [[1]],
      ],
      ['select app.slugify(title) from documents where documents.tenant_id = $1', [[1]]],
      ['insert into documents (tenant_id, id) values ($1, $2), ($3, $4) returning id', [[1], [3]]],
      [
        'insert into documents (tenant_id, id) values ($1, $2) on conflict (tenant_id, id) do update set id = excluded.id, tenant_id = excluded.tenant_id',
        [[1]],
      ],
      [
        'insert into comments (tenant_id, id) select d.tenant_id, d.id from documents d where d.tenant_id = $1',
        [[1]],
      ],
      ['update documents set title = $1 where documents.tenant_id = $2', [[2]]],
      [
        'update documents set title = $1 from comments where comments.tenant_id = $2 and documents.tenant_id = $3',
        [[2], [3]],
      ],
      ['delete from documents where documents.tenant_id = $1 returning *', [[1]]],
      ['select 1', []],
      ['select * from countries', []],
      ['begin', []],
      ['savepoint trx1', []],
    ];
    for (const [sql, groups] of accepted) {
      it(sql, () => {
        const proof = prove(sql);
        expect([...proof.tenantParamGroups].sort()).to.deep.equal(groups);
        expect(proof.touchesTenant).to.equal(groups.length > 0);
      });
    }
  });

  describe('row mode: refuses', () => {
    const refused: Array<[string, RegExp]> = [
      ['select * from documents', /no top-level AND condition "documents.tenant_id/],
      ['select * from documents where id = $1 or documents.tenant_id = $2', /no top-level AND/],
      ['select * from documents where not (documents.tenant_id = $1)', /no top-level AND/],
      ['select * from documents where documents.tenant_id <> $1', /no top-level AND/],
      ['select * from documents where tenant_id = $1', /no top-level AND/],
      [
        'select * from documents d where documents.tenant_id = $1',
        /no top-level AND "d.tenant_id|no top-level AND condition "d\./,
      ],
      [
        'select * from documents left join comments on comments.document_id = documents.id where documents.tenant_id = $1',
        /relation "comments"/,
      ],
      [
        'select * from documents left join comments on comments.tenant_id = $1 and false where comments.id > 0',
        /relation "documents"/,
      ],
      [
        'select * from documents full join comments on comments.tenant_id = $1 and documents.tenant_id = $2',
        /no top-level AND/,
      ],
      [
        'select * from countries where exists (select 1 from documents where countries.code = $1)',
        /a subquery|FROM/,
      ],
      [
        'select * from documents where documents.tenant_id = $1; delete from comments',
        /2 statements/,
      ],
      ['select * from secrets', /neither a declared tenant table/],
      ['select * from pg_stat_activity', /neither a declared tenant table/],
      ['select * from U&"d\\006Fcuments"', /relation "documents"/],
      ['select * from other.documents', /relation "other.documents"/],
      ['select * from "Documents"', /relation "Documents"/],
      ['select * from documents as d(tenant_id, x) where d.tenant_id = $1', /column aliases/],
      [
        "select query_to_xml('select * from documents', true, true, '')",
        /query_to_xml\(\) is not on the allow-list/,
      ],
      ["select table_to_xml('documents'::regclass, true, true, '')", /table_to_xml/],
      ["select set_config('app.tenant_id', 'globex', false)", /set_config/],
      ['select public.anything(1)', /public.anything/],
      ['do $$ begin delete from comments; end $$', /DoStmt/],
      ['select * into copy from documents where documents.tenant_id = $1', /intoClause/],
      ['truncate documents', /TRUNCATE of a row-mode table would delete every tenant's rows/],
      ['set search_path = tenant_globex', /VariableSetStmt/],
      ['prepare p as select * from documents', /PrepareStmt/],
      [
        'with x as (select 1) select * from (with y as (select 1) select * from y) s, x, y',
        /relation "y"/,
      ],
      ['with documents as (select 1) select * from documents', /shadow a tenant table/],
      ['insert into documents (id) values ($1)', /must list "tenant_id"/],
      [
        "insert into documents (tenant_id, id) values ($1, $2), ('globex', $3)",
        /bound to the current tenant in every row/,
      ],
      [
        'insert into documents select * from documents where documents.tenant_id = $1',
        /must list "tenant_id"/,
      ],
      [
        'insert into comments (id, tenant_id) select d.tenant_id, d.id from documents d where d.tenant_id = $1',
        /not provably the current tenant/,
      ],
      [
        'insert into comments (tenant_id, id) select * from documents d where d.tenant_id = $1',
        /SELECT \*|another width/,
      ],
      [
        'insert into documents (tenant_id, id) values ($1, $2) on conflict (id) do nothing',
        /conflict target must include/,
      ],
      [
        'insert into documents (tenant_id, id) values ($1, $2) on conflict do nothing',
        /conflict target must include/,
      ],
      [
        "insert into documents (tenant_id, id) values ($1, $2) on conflict (tenant_id, id) do update set tenant_id = 'globex'",
        /may only be set to the current tenant/,
      ],
      [
        "update documents set tenant_id = 'globex' where documents.tenant_id = $1",
        /may only be set/,
      ],
      [
        'update documents set (title, tenant_id) = (select title, tenant_id from comments) where documents.tenant_id = $1',
        /may only be set|neither|no top-level/,
      ],
      ['update documents set title = $1', /no top-level AND/],
      [
        'delete from documents using comments where documents.tenant_id = $1',
        /relation "comments"/,
      ],
      ['delete from documents where current of c', /CurrentOfExpr|no top-level/],
      [
        'select * from (documents join comments using (id)) j where j.tenant_id = $1',
        /aliased JOIN/,
      ],
      [
        'select * from documents join comments using (id) as documents where documents.tenant_id = $1',
        /aliased JOIN/,
      ],
      [
        'select * from documents, lateral (select * from comments) c where documents.tenant_id = $1',
        /relation "comments"/,
      ],
      ['select * from jsonb_to_record($1) as x(a int)', /column definition list/],
    ];
    for (const [sql, pattern] of refused) {
      it(sql, () => {
        expect(refusal(sql)).to.match(pattern);
      });
    }
  });

  describe('schema mode', () => {
    it('records the schema of every tenant table and accepts qualified shared tables', () => {
      const proof = prove(
        'select * from tenant_acme.documents join public.countries on true join billing.plans on true',
        schema,
      );
      expect(proof.tenantSchemas).to.deep.equal(['tenant_acme']);
    });
    for (const [sql, pattern] of [
      ['select * from documents', /qualified with the tenant schema/],
      ['select * from countries', /must be schema-qualified/],
      ['select * from billing.countries', /relation "billing.countries"/],
      ['select * from tenant_globex.secret', /relation "tenant_globex.secret"/],
    ] as const) {
      it(`refuses ${sql}`, () => {
        expect(refusal(sql, schema)).to.match(pattern);
      });
    }
    it("counts undeclared tables as shared only in public with unknownTables: 'shared'", () => {
      const lax: ProofSettings = { ...schema, tables: { ...tables, unknownTables: 'shared' } };
      expect(prove('select * from public.audit', lax).touchesTenant).to.equal(false);
      expect(refusal('select * from tenant_globex.secret', lax)).to.match(/tenant_globex.secret/);
      expect(refusal('select * from " tenant_globex".secret', lax)).to.match(/secret/);
    });
  });
});

describe('FinalSqlVerifier', () => {
  before(() => loadSqlParser());

  const acme: CapturedScope = Object.freeze({
    kind: 'tenant',
    id: 'acme',
    record: { id: 'acme', status: 'active' } as never,
  });
  const none: CapturedScope = Object.freeze({ kind: 'none' });
  const system: CapturedScope = Object.freeze({ kind: 'system', reason: 'test' });

  function verifier(cacheSize = 10): FinalSqlVerifier {
    return new FinalSqlVerifier({ ...row, cacheSize, schemaFor: () => 'tenant_acme' });
  }
  const codeOf = (fn: () => void): string | undefined => {
    try {
      fn();
    } catch (error) {
      return (error as { code?: string }).code;
    }
    return undefined;
  };

  it('checks the bindings of every execution against the cached proof', () => {
    const v = verifier();
    const sql = 'select * from documents where documents.tenant_id = ?';
    const toFinal = { positionBindings: (s: string) => s.replace('?', '$1') };
    v.verify(sql, ['acme'], acme, undefined, toFinal);
    expect(codeOf(() => v.verify(sql, ['globex'], acme, undefined, toFinal))).to.equal(
      'UNSAFE_QUERY',
    );
    expect(codeOf(() => v.verify(sql, ['acme'], none, undefined, toFinal))).to.equal(
      'TENANT_SCOPE_REQUIRED',
    );
    expect(codeOf(() => v.verify(sql, ['acme'], acme, system, toFinal))).to.equal(
      'TENANT_SCOPE_REQUIRED',
    );
    v.verify('select * from documents', [], system);
    expect(v.stats).to.deep.equal({ parsed: 1, cached: 3, refused: 3 });
  });

  it('caches refusals, evicts the least recently used proof, and can run without a cache', () => {
    const v = verifier(2);
    const a = 'select 1';
    const b = 'select 2';
    v.verify(a, [], none);
    v.verify(b, [], none);
    v.verify(a, [], none); // a is now the most recent
    v.verify('select 3', [], none); // evicts b
    expect(v.size).to.equal(2);
    v.verify(b, [], none);
    expect(v.stats.parsed).to.equal(4);
    expect(codeOf(() => v.verify('select * from documents', [], acme))).to.equal('UNSAFE_QUERY');
    expect(codeOf(() => v.verify('select * from documents', [], acme))).to.equal('UNSAFE_QUERY');
    const off = verifier(0);
    off.verify(a, [], none);
    off.verify(a, [], none);
    expect(off.size).to.equal(0);
    expect(off.stats.parsed).to.equal(2);
  });

  it('refuses SQL the parser does not accept, with the parser message', () => {
    const v = verifier();
    let message = '';
    try {
      v.verify('select from where', [], acme);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).to.match(/parser does not accept it \(syntax error/);
  });

  it('refuses a bad cache size at construction (TypeError)', () => {
    expect(() => verifier(-1)).to.throw(TypeError, /proof cache size/);
  });
});
