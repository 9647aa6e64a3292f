import { expect } from 'chai';
import type { Knex } from 'knex';
import { withTenancy } from '../../src/index';
import { createTestKnex } from '../support/test-database';

// knex's Runner class: the adapter wraps its internal ensureConnection().
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Runner = require('knex/lib/execution/runner') as { prototype: Record<string, unknown> };

describe('the knex adapter (the one door to knex internals)', () => {
  let knex: Knex;
  before(() => {
    knex = createTestKnex({ pool: { min: 0, max: 1 } });
  });

  it('finds every internal it hooks on this knex version', () => {
    expect(() => withTenancy(knex, { tenantTables: ['documents'] })).to.not.throw();
  });

  /** Removes `key` from `target` for one call, as a knex upgrade that dropped it would. */
  function without(target: Record<string, unknown>, key: string, fn: () => void): void {
    const saved = Object.getOwnPropertyDescriptor(target, key);
    delete target[key];
    try {
      fn();
    } finally {
      if (saved) Object.defineProperty(target, key, saved);
    }
  }

  const refusal = (fn: () => unknown): { code?: string; message?: string } => {
    try {
      fn();
    } catch (error) {
      return error as { code?: string; message?: string };
    }
    return {};
  };

  it("refuses to start when the runner's ensureConnection() is gone (TENANCY_CONFIG_INVALID)", () => {
    without(Runner.prototype, 'ensureConnection', () => {
      const error = refusal(() => withTenancy(knex, { tenantTables: ['documents'] }));
      expect(error.code).to.equal('TENANCY_CONFIG_INVALID');
      expect(error.message).to.match(/knex 3\.\d+\.\d+ no longer has Runner#ensureConnection\(\)/);
    });
  });

  it("refuses to start when the client's positionBindings() is gone (TENANCY_CONFIG_INVALID)", () => {
    const proto = Object.getPrototypeOf(knex.client) as Record<string, unknown>;
    without(proto, 'positionBindings', () => {
      const error = refusal(() => withTenancy(knex, { tenantTables: ['documents'] }));
      expect(error.code).to.equal('TENANCY_CONFIG_INVALID');
      expect(error.message).to.match(
        /no longer has a Client#positionBindings\(\) that numbers \? as \$1/,
      );
    });
  });

  it("refuses database mode when the client's initializePool() is gone (TENANCY_CONFIG_INVALID)", () => {
    // The base client class (knex/lib/client) defines it; the pg dialect inherits it.
    const proto = Object.getPrototypeOf(Object.getPrototypeOf(knex.client)) as Record<
      string,
      unknown
    >;
    without(proto, 'initializePool', () => {
      const error = refusal(() => withTenancy(knex, { mode: 'database' }));
      expect(error.code).to.equal('TENANCY_CONFIG_INVALID');
      expect(error.message).to.match(/no longer has Client#initializePool\(\)/);
    });
  });
});
