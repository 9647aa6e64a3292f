import { expect } from 'chai';
import knexFactory from 'knex';
import {
  InMemoryTenantStore,
  KnexTenantStore,
  assertServableTenant,
  currentTenant,
  runAsSystem,
  type TenantStatus,
} from '../src/index';
import { clause, messageWithCode, quoteInput } from '../src/message-text';

describe('error message text', () => {
  it('quotes user input on one line: controls, quotes and backslashes escaped, long input cut', () => {
    expect(quoteInput('acme')).to.equal('"acme"');
    expect(quoteInput('acme\ntenantry: forged')).to.equal('"acme\\ntenantry: forged"');
    expect(quoteInput('a\r\tb\u0000c\u001bd\u007fe\u0085f\u2028g')).to.equal(
      '"a\\r\\tb\\u0000c\\u001bd\\u007fe\\u0085f\\u2028g"',
    );
    expect(quoteInput('say "hi" \\ bye')).to.equal('"say \\"hi\\" \\\\ bye"');
    expect(quoteInput('x'.repeat(100), 5)).to.equal('"xxxxx…"');
    expect(quoteInput(undefined)).to.equal('"undefined"');
    for (const hostile of ['a\nb', 'a\u2029b', 'a\u000bb', 'a\u009bb']) {
      // eslint-disable-next-line no-control-regex
      expect(quoteInput(hostile)).to.not.match(/[\n\r\u000b\u2028\u2029\u009b]/);
    }
  });

  it('turns a message into a clause without its trailing full stops, on one line', () => {
    expect(`because ${clause('the disk is full.')}.`).to.equal('because the disk is full.');
    expect(clause('many dots... \n')).to.equal('many dots');
    expect(clause('line one\nline two')).to.equal('line one\\nline two');
  });

  it('keeps the code of a Node or PostgreSQL error once', () => {
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open 'x'"), {
      code: 'ENOENT',
    });
    expect(messageWithCode(enoent)).to.equal("ENOENT: no such file or directory, open 'x'");
    const pg = Object.assign(new Error('relation "t" does not exist'), { code: '42P01' });
    expect(messageWithCode(pg)).to.equal('42P01: relation "t" does not exist');
    expect(messageWithCode(new Error('plain.'))).to.equal('plain');
    expect(messageWithCode('a string')).to.equal('a string');
  });

  it('keeps library messages that echo caller input on one line', async () => {
    const forged = 'acme\ntenantry: TENANT_FORBIDDEN: forged';
    const messages: string[] = [];
    const grab = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (e) {
        messages.push((e as Error).message);
        return;
      }
      throw new Error('expected a failure');
    };
    await grab(() => assertServableTenant(forged, undefined));
    await grab(() => new InMemoryTenantStore().update(forged, { name: 'x' }));
    await grab(() => runAsSystem(forged, () => currentTenant()));
    const knex = knexFactory({ client: 'pg' });
    await grab(() => new KnexTenantStore(knex).list({ status: [forged as TenantStatus] }));
    await grab(() => new KnexTenantStore(knex, { tableName: forged }));
    await knex.destroy();
    expect(messages).to.have.length(5);
    for (const m of messages) {
      expect(m).to.include('"acme\\ntenantry: TENANT_FORBIDDEN: forged"');
      expect(m).to.not.include('\n');
      expect(m).to.match(/[^.]\.$/);
    }
  });
});
