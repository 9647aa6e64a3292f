import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { OutgoingHttpHeaders } from 'node:http';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { readEveryDocument, type StoredDocument } from '../../bench/load/tenant-data';
import {
  adminQuery,
  createScratchDatabase,
  createTestKnex,
  testServer,
} from '../support/test-database';
import {
  authorization,
  expand,
  makeKeys,
  send,
  startDemoVariants,
  type AttackCase,
  type AttackKeys,
  type DemoVariants,
  type RawResponse,
} from './support/attack-kit';

const CORPUS_FILE = path.resolve(__dirname, '..', '..', '..', 'spec', 'attack', 'corpus.json');
const corpus = JSON.parse(readFileSync(CORPUS_FILE, 'utf8')) as { cases: AttackCase[] };
const MODES = ['row', 'schema', 'database'] as const;

/** The answer without `instance` (it echoes the path, which differs by id). */
function comparable(r: RawResponse): unknown {
  const body = r.json as Record<string, unknown> | undefined;
  if (body === undefined || typeof body !== 'object') return { status: r.status, text: r.text };
  const rest = { ...body };
  delete rest.instance;
  return { status: r.status, contentType: r.contentType, body: rest };
}

describe('attack corpus (spec/attack/corpus.json)', function () {
  this.timeout(60_000);
  let keys: AttackKeys;

  before(() => {
    keys = makeKeys();
  });

  it('holds well over 50 distinct cases, each with an expected status and code', () => {
    const ids = new Set(corpus.cases.map((c) => c.id));
    expect(ids.size).to.equal(corpus.cases.length);
    expect(corpus.cases.length).to.be.greaterThan(100);
    for (const c of corpus.cases) {
      expect(c.expect.status, c.id).to.be.a('number');
      if (c.expect.status !== 200) expect(c.expect.code, c.id).to.be.a('string');
    }
  });

  for (const mode of MODES) {
    describe(`against the demo in ${mode} mode`, () => {
      let knex: Knex;
      let centralUrl: string;
      let demo: DemoVariants;
      let prefix: string;
      let initial: StoredDocument[];
      let docOf: Record<string, string>;

      before(async function () {
        this.timeout(60_000);
        const database = await createScratchDatabase(`atk_${mode}`);
        centralUrl = testServer().urlFor(database);
        knex = createTestKnex({ pool: { min: 0, max: 10 } }, database);
        prefix = `atk${randomBytes(3).toString('hex')}_`;
        demo = await startDemoVariants(knex, mode, prefix, keys);
        initial = await readEveryDocument(centralUrl, mode);
        docOf = {};
        for (const d of initial) docOf[d.tenant] ??= d.id;
        expect(Object.keys(docOf).sort()).to.deep.equal(['acme', 'globex', 'initech']);
      });

      after(async () => {
        await demo?.close();
        const dbs = await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [
          `${prefix}%`,
        ]);
        for (const row of dbs.rows as { datname: string }[]) {
          await adminQuery(`DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
        }
      });

      function fill(template: string, missing: string): string {
        return template.replace(
          /\{(\w+)\.doc(:upper)?\}|\{missing\}/g,
          (_m, tenant?: string, upper?: string) => {
            const id = tenant === undefined ? missing : docOf[tenant];
            if (id === undefined) throw new Error(`No seeded document for ${String(tenant)}`);
            return upper ? id.toUpperCase() : id;
          },
        );
      }

      async function run(c: AttackCase, asMissing: boolean): Promise<RawResponse> {
        const app = c.app ?? 'hs';
        const missing = randomUUID();
        const sub = (s: string): string => {
          const filled = fill(s, missing);
          // The "missing" twin of a foreign-row case: the other tenant's id replaced by a random one.
          return asMissing
            ? filled.replace(new RegExp(Object.values(docOf).join('|'), 'gi'), (m) =>
                m === m.toUpperCase() ? missing.toUpperCase() : missing,
              )
            : filled;
        };
        const headers: OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(c.headers ?? {})) {
          headers[name.toLowerCase()] = Array.isArray(value)
            ? [...(value as string[])]
            : expand(value as Parameters<typeof expand>[0]);
        }
        if (c.auth !== undefined) headers.authorization = authorization(c.auth, app, keys);
        let body: string | undefined;
        if (c.rawBody !== undefined) body = expand(c.rawBody);
        else if (c.body !== undefined) body = sub(JSON.stringify(c.body));
        if (body !== undefined) {
          headers['content-type'] = 'application/json';
          headers['content-length'] = String(Buffer.byteLength(body));
        }
        return send(
          demo.ports[app],
          c.method ?? 'GET',
          sub(expand(c.path ?? '/documents')),
          headers,
          body,
        );
      }

      for (const c of corpus.cases) {
        const want = `${c.expect.status}${c.expect.code ? ` ${c.expect.code}` : ''}`;
        it(`[${c.group}] ${c.id}: answers ${want}${c.expect.sameAsMissing ? ', exactly like a missing id' : ''}`, async () => {
          const r = await run(c, false);
          expect(r.status, `${c.id}: ${r.text.slice(0, 300)}`).to.equal(c.expect.status);
          if (c.expect.code !== undefined) {
            expect(r.contentType).to.match(/^application\/problem\+json/);
            expect((r.json as { code?: unknown }).code, r.text.slice(0, 300)).to.equal(
              c.expect.code,
            );
          }
          if (c.expect.tenant !== undefined) {
            const own = new Set(
              initial.filter((d) => d.tenant === c.expect.tenant).map((d) => d.id),
            );
            const listed = (r.json as { documents: { id: string }[] }).documents.map((d) => d.id);
            expect(listed.length).to.be.greaterThan(0);
            for (const id of listed)
              expect(own.has(id), `foreign document ${id} listed`).to.equal(true);
          }
          if (c.expect.sameAsMissing) {
            const twin = await run(c, true);
            expect(comparable(r)).to.deep.equal(comparable(twin));
          }
        });
      }

      it('left every row of every tenant exactly as it was', async () => {
        const after = await readEveryDocument(centralUrl, mode);
        expect(after).to.deep.equal(initial);
      });
    });
  }
});
