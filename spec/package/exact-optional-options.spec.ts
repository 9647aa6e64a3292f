/**
 * Under `exactOptionalPropertyTypes` (set by `tsc --init`) an optional field
 * refuses an explicit `undefined` unless its type says `| undefined`, so
 * `resolveTenant({ header: process.env.TENANT_HEADER })` would not compile.
 * This spec reads the public surface (src/index.ts and the subpath entries
 * tenantry/bullmq, tenantry/testing, tenantry/ws, tenantry/socket.io and tenantry/prometheus) with the compiler and
 * requires `| undefined` on every optional field of every exported type
 * users write: options, inputs, patches, strategy results.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..', '..');
/** Exported types users write values of. Records, events and problems are outputs. */
const INPUT_NAME = /(Options|Input|Init|Source|Defaults|Patch|Option)$/;
const INPUT_TYPES = new Set([
  'NewTenant',
  'TenantIsolationSettings',
  'TenantDatabaseSettings',
  'TenantResolution',
  'ResolvedTenantDatabase',
  'ProgressStream',
  'TenantCacheInvalidator',
]);

/** Every entry point of package.json's `exports`, as source. */
const ENTRIES = [
  'index.ts',
  'integrations/bullmq.ts',
  'testing/index.ts',
  'integrations/ws.ts',
  'integrations/socket-io.ts',
  'telemetry/prometheus-tenancy-metrics.ts',
].map((f) => path.join(ROOT, 'src', f));

function optionalFieldsRefusingUndefined(): string[] {
  const program = ts.createProgram(ENTRIES, {
    strict: true,
    exactOptionalPropertyTypes: true,
    experimentalDecorators: true,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    types: ['node'],
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const refusing: string[] = [];
  const exports = ENTRIES.flatMap((entry) => {
    const source = program.getSourceFile(entry);
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error(`cannot read ${entry}`);
    return checker.getExportsOfModule(moduleSymbol);
  });
  for (const exported of exports) {
    if (!INPUT_NAME.test(exported.name) && !INPUT_TYPES.has(exported.name)) continue;
    const symbol =
      exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!(symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias))) continue;
    const type = checker.getDeclaredTypeOfSymbol(symbol);
    for (const member of type.isUnion() ? type.types : [type]) {
      for (const property of checker.getPropertiesOfType(member)) {
        if (!(property.flags & ts.SymbolFlags.Optional)) continue;
        const declaration = property.valueDeclaration ?? property.declarations?.[0];
        // Optional methods (`down?(knex)`) are called, not assigned `undefined`.
        if (!declaration || !ts.isPropertySignature(declaration) || !declaration.type) continue;
        if (!declaration.getSourceFile().fileName.startsWith(path.join(ROOT, 'src'))) continue;
        const declared = checker.getTypeFromTypeNode(declaration.type);
        // `bindings?: never` (TenancyLogger) refuses pino on purpose.
        if (declared.flags & ts.TypeFlags.Never) continue;
        const parts = declared.isUnion() ? declared.types : [declared];
        const takesUndefined = parts.some(
          (t) => t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Any | ts.TypeFlags.Unknown),
        );
        if (!takesUndefined) refusing.push(`${exported.name}.${property.name}`);
      }
    }
  }
  return [...new Set(refusing)].sort();
}

describe('public option types under exactOptionalPropertyTypes', function () {
  this.timeout(60_000);

  it('reads every entry point of package.json exports', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | { types: string }>;
    };
    const fromExports = Object.values(pkg.exports)
      .filter((e): e is { types: string } => typeof e === 'object')
      .map((e) =>
        path.join(ROOT, e.types.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$/, '.ts')),
      );
    expect(fromExports).to.deep.equal(ENTRIES);
  });

  it('accept an explicit undefined for every optional field users write', () => {
    const refusing = optionalFieldsRefusingUndefined();
    expect(refusing, 'add `| undefined` to these optional fields').to.deep.equal([]);
  });
});
