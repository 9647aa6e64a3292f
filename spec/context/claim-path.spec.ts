import { expect } from 'chai';
import { parseClaimPath, readClaim } from '../../src/index';

describe('claim paths', () => {
  const claims = Object.freeze({
    tid: 'acme',
    org: { id: 'globex', nested: { deep: 'initech' } },
    'https://example.com/claims': { tenant: 'hooli', 'a.b': 'dotted' },
    'https://example.com/tenant': 'umbrella',
    'https://example.com/v1.0': { tenant: 'versioned' },
    list: ['x'],
  });

  const cases: Array<[string | string[], unknown]> = [
    ['tid', 'acme'],
    ['org.id', 'globex'],
    ['org.nested.deep', 'initech'],
    ['https://example.com/claims.tenant', 'hooli'],
    ['https://example.com/tenant', 'umbrella'],
    [['https://example.com/v1.0', 'tenant'], 'versioned'],
    [['https://example.com/claims', 'a.b'], 'dotted'],
    ['org.missing', undefined],
    ['tid.length', undefined], // never walks into strings
    ['list.0', undefined], // nor into arrays
    ['org.__proto__', undefined],
    ['constructor', undefined],
    ['org.toString', undefined],
  ];
  for (const [path, expected] of cases) {
    it(`reads ${JSON.stringify(path)} as ${JSON.stringify(expected)}`, () => {
      const parsed = parseClaimPath(path);
      expect(parsed).to.not.equal(undefined);
      expect(readClaim(claims, parsed!)).to.equal(expected);
    });
  }

  it('splits a namespaced path at the first dot after the last slash', () => {
    expect(parseClaimPath('https://example.com/claims.tenant')?.keys).to.deep.equal([
      'https://example.com/claims',
      'tenant',
    ]);
    expect(parseClaimPath('https://example.com/a/b.c.d')?.keys).to.deep.equal([
      'https://example.com/a/b',
      'c',
      'd',
    ]);
  });

  for (const bad of ['', '.', 'a..b', 'a.', [], [''], [1], 42, null]) {
    it(`refuses ${JSON.stringify(bad)} as a path`, () => {
      expect(parseClaimPath(bad)).to.equal(undefined);
    });
  }
});
