import { createRequire } from 'node:module';
import ts from 'typescript';

/**
 * The builder interfaces of Knex's own type declarations whose methods can
 * carry a table reference, a column key or a raw fragment, with the method
 * names of each, read with the TypeScript compiler (inherited members
 * included). A Knex upgrade that adds a method makes the corpus spec fail
 * until the corpus covers it.
 */
export const KNEX_INTERFACES = ['QueryBuilder', 'JoinClause', 'OnConflictQueryBuilder'] as const;

export type KnexInterface = (typeof KNEX_INTERFACES)[number];

/** `interface -> method names`, sorted, read from `knex/types/index.d.ts`. */
export function knexDeclaredMethods(): Record<KnexInterface, string[]> {
  const file = createRequire(__filename).resolve('knex/types/index.d.ts');
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  if (source === undefined) throw new Error(`Cannot read ${file}`);
  const found = new Map<string, ts.InterfaceDeclaration>();
  const visit = (node: ts.Node, namespace: string): void => {
    if (ts.isModuleDeclaration(node)) {
      const body = node.body;
      if (body !== undefined) ts.forEachChild(body, (child) => visit(child, node.name.text));
      return;
    }
    if (ts.isInterfaceDeclaration(node) && namespace === 'Knex') {
      if (!found.has(node.name.text)) found.set(node.name.text, node);
    }
    ts.forEachChild(node, (child) => visit(child, namespace));
  };
  visit(source, '');
  const out = {} as Record<KnexInterface, string[]>;
  for (const name of KNEX_INTERFACES) {
    const declaration = found.get(name);
    if (declaration === undefined) throw new Error(`knex types declare no Knex.${name}`);
    const symbol = checker.getSymbolAtLocation(declaration.name);
    if (symbol === undefined) throw new Error(`no symbol for Knex.${name}`);
    const type = checker.getDeclaredTypeOfSymbol(symbol);
    out[name] = checker
      .getPropertiesOfType(type)
      .map((p) => p.name)
      .sort();
  }
  return out;
}
