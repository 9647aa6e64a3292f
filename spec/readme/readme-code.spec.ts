/**
 * The README as a new user meets it: tenantry packed with `npm pack`, the
 * tarball installed in a fresh CommonJS project and in an ES-module project,
 * every TypeScript block of the README compiled with the README's own
 * tsconfig.json (strict + exactOptionalPropertyTypes), and the Quick start
 * app run on the test PostgreSQL and driven over HTTP.
 *
 * Offline: the tarball is unpacked into the project's node_modules and every
 * other package is a symlink into this repository's node_modules.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createScratchDatabase, testServer } from '../support/test-database';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

interface CodeBlock {
  readonly lang: string;
  readonly code: string;
  /** The nearest `##` heading above the block. */
  readonly section: string;
  readonly line: number;
}

/** Every fenced code block of the README, with its section. */
function readmeBlocks(): CodeBlock[] {
  const lines = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
  const blocks: CodeBlock[] = [];
  let section = '';
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] as string;
    if (line.startsWith('## ')) section = line.slice(3).trim();
    const open = /^```(\w+)\s*$/.exec(line);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && lines[i] !== '```'; i += 1) body.push(lines[i] as string);
    blocks.push({
      lang: open[1] as string,
      code: `${body.join('\n')}\n`,
      section,
      line: start + 1,
    });
  }
  return blocks;
}

/**
 * The names README fragments use without defining them (an app, a store, a
 * Knex), as the Quick start defines them. Only these are assumed.
 */
const FRAGMENT_CONTEXT = `// Names the README's fragments assume, as the Quick start defines them.
declare const app: import('express').Express;
declare const store: import('tenantry').TenantStore;
declare const knex: import('knex').Knex;
`;

interface Pack {
  readonly tarball: string;
  readonly files: readonly string[];
}

interface TsConfig {
  readonly compilerOptions?: Record<string, unknown>;
}

function withGlobalTypesOnlyNode(config: TsConfig): object {
  return {
    ...config,
    compilerOptions: { ...config.compilerOptions, types: ['node'] },
    include: ['src'],
  };
}

async function packTenantry(into: string): Promise<Pack> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', into], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  // prepack's build output precedes the JSON on stdout.
  const json = stdout.slice(stdout.indexOf('[\n'));
  const [info] = JSON.parse(json) as [{ filename: string; files: { path: string }[] }];
  return { tarball: path.join(into, info.filename), files: info.files.map((f) => f.path) };
}

/** A fresh project with the tarball installed and the repository's packages linked. */
async function createProject(dir: string, type: 'commonjs' | 'module', pack: Pack): Promise<void> {
  const modules = path.join(dir, 'node_modules');
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  mkdirSync(modules);
  await run('tar', ['-xzf', pack.tarball, '-C', modules]);
  renameSync(path.join(modules, 'package'), path.join(modules, 'tenantry'));
  for (const entry of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'tenantry') continue;
    symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
  }
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: `readme-app-${type}`, private: true, type }, null, 2),
  );
  const blocks = readmeBlocks();
  const tsconfig = blocks.find((b) => b.lang === 'json' && b.section === 'Install');
  if (!tsconfig) throw new Error('README: no tsconfig.json block in the Install section');
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    // Only @types/node is global, as in a fresh project: the linked node_modules hold
    // the repository's other @types (koa through oidc-provider's), which an app would not.
    JSON.stringify(withGlobalTypesOnlyNode(JSON.parse(tsconfig.code) as TsConfig), null, 2),
  );
  const quick = blocks.filter((b) => b.section === 'Quick start');
  const yaml = quick.find((b) => b.lang === 'yaml');
  const app = quick.find((b) => b.lang === 'ts');
  if (!yaml || !app) throw new Error('README: the Quick start needs a yaml and a ts block');
  writeFileSync(path.join(dir, 'tenancy.yaml'), yaml.code);
  writeFileSync(path.join(dir, 'src', 'app.ts'), app.code);
  writeFileSync(path.join(dir, 'src', 'readme-context.d.ts'), FRAGMENT_CONTEXT);
  for (const block of blocks) {
    if (block.lang !== 'ts' || block === app) continue;
    const isModule = /^(import|export) /m.test(block.code);
    writeFileSync(
      path.join(dir, 'src', `readme-line-${block.line}.ts`),
      `// README.md line ${block.line} (${block.section})\n${block.code}${isModule ? '' : 'export {};\n'}`,
    );
  }
}

async function compile(dir: string): Promise<void> {
  try {
    await run(process.execPath, [TSC, '-p', dir], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    expect.fail(`tsc failed in ${dir}:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** Starts the compiled Quick start; resolves with its base URL once it listens. */
function startApp(
  dir: string,
  databaseUrl: string,
): Promise<{ child: ChildProcess; base: string; output: () => string }> {
  const child = spawn(process.execPath, ['build/app.js'], {
    cwd: dir,
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /listening on (http:\/\/localhost:\d+)/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve({ child, base: m[1] as string, output: () => out });
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`the Quick start app exited (${code}) before listening:\n${out}`));
    });
  });
}

interface Answer {
  readonly status: number;
  readonly type: string;
  readonly body: Record<string, unknown>;
}

async function call(
  base: string,
  route: string,
  init: { method?: string; tenant?: string; body?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (init.tenant !== undefined) headers['X-Tenant-ID'] = init.tenant;
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${base}${route}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: (await res.json()) as Record<string, unknown>,
  };
}

/**
 * Loads every compiled README fragment with the names it assumes defined as
 * real objects (an Express app, an in-memory store, an unconnected Knex), so
 * an example that compiles but throws at start-up fails here.
 */
const FRAGMENT_RUNNER = `const path = require('node:path');
const fs = require('node:fs');
require('reflect-metadata');
const express = require('express');
const knexFactory = require('knex');
const { InMemoryTenantStore } = require('tenantry');
globalThis.app = express();
globalThis.store = new InMemoryTenantStore([{ id: 'acme', name: 'Acme' }]);
globalThis.knex = knexFactory({ client: 'pg' });
const dir = path.join(__dirname, 'build');
const files = fs.readdirSync(dir).filter((f) => /^readme-line-\\d+\\.js$/.test(f));
for (const file of files) require(path.join(dir, file));
console.log('loaded ' + files.length + ' fragments');
void globalThis.knex.destroy();
`;

async function runFragments(dir: string): Promise<void> {
  writeFileSync(path.join(dir, 'run-fragments.js'), FRAGMENT_RUNNER);
  try {
    const { stdout } = await run(process.execPath, ['run-fragments.js'], { cwd: dir });
    expect(stdout).to.match(/loaded [1-9]\d* fragments/);
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    expect.fail(`a README fragment throws when loaded:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/**
 * Loads every subpath export of the installed tarball at run time (require() in
 * the CommonJS project, import in the ES-module one): each exposes its
 * functions, they share one tenant scope with `tenantry` (a job built through
 * `tenantry/bullmq` inside `runWithTenant()` of `tenantry` carries that
 * tenant), and a path not exported is refused.
 */
const SUBPATH_CHECK = `const tenantry = await import('tenantry');
const bullmq = await import('tenantry/bullmq');
const testing = await import('tenantry/testing');
const ws = await import('tenantry/ws');
const socketIo = await import('tenantry/socket.io');
const { createRequire } = await import('node:module');
const loaded = Object.keys(createRequire(process.cwd() + '/x.js').cache);
const peers = ['ws', 'socket.io', 'express-session', 'cookie-session'].filter((name) =>
  loaded.some((file) => file.includes('/node_modules/' + name + '/')),
);
const queue = { add: async (name, data) => ({ name, data }) };
const job = await tenantry.runWithTenant('acme', () => bullmq.addTenantJob(queue, 'x', { n: 1 }));
let internal = 'loaded';
try {
  await import('tenantry/dist/index.js');
} catch (error) {
  internal = error.code;
}
console.log(JSON.stringify({
  tenantry: typeof tenantry.withTenancy,
  bullmq: [typeof bullmq.addTenantJob, typeof bullmq.tenantJobProcessor],
  testing: typeof testing.findCrossTenantRows,
  ws: [typeof ws.wsTenancy, typeof ws.createUpgradeResolver],
  socketIo: typeof socketIo.socketIoTenancy,
  sameConnections: ws.TenantConnections === socketIo.TenantConnections,
  mainHasRealtime: 'wsTenancy' in tenantry,
  peers,
  job,
  internal,
}));
`;

async function checkSubpaths(dir: string, type: 'commonjs' | 'module'): Promise<void> {
  const file = type === 'module' ? 'check-subpaths.mjs' : 'check-subpaths.cjs';
  // CommonJS: the same checks through require(), wrapped for the awaits.
  const body =
    type === 'module'
      ? SUBPATH_CHECK
      : `(async () => {\n${SUBPATH_CHECK.replace(/await import\(/g, 'require(')}})();\n`;
  writeFileSync(path.join(dir, file), body);
  const { stdout } = await run(process.execPath, [file], { cwd: dir });
  expect(JSON.parse(stdout)).to.deep.equal({
    tenantry: 'function',
    bullmq: ['function', 'function'],
    testing: 'function',
    ws: ['function', 'function'],
    socketIo: 'function',
    sameConnections: true,
    mainHasRealtime: false,
    peers: [],
    job: { name: 'x', data: { tenantId: 'acme', data: { n: 1 } } },
    internal: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
  });
}

async function driveQuickStart(dir: string): Promise<void> {
  const database = await createScratchDatabase('readme');
  const databaseUrl = testServer().urlFor(database);
  const app = await startApp(dir, databaseUrl);
  try {
    const created = await call(app.base, '/documents', {
      method: 'POST',
      tenant: 'acme',
      body: '{"title":"hello"}',
    });
    expect(created.status, app.output()).to.equal(201);
    expect(created.body).to.include({ title: 'hello' });
    const listed = await call(app.base, '/documents', { tenant: 'acme' });
    expect(listed.body).to.deep.equal({
      tenant: 'acme',
      documents: [{ id: created.body.id, title: 'hello' }],
    });

    const unknown = await call(app.base, '/documents', { tenant: 'globex' });
    expect([unknown.status, unknown.body.code]).to.deep.equal([404, 'TENANT_NOT_FOUND']);
    expect(unknown.type).to.match(/^application\/problem\+json/);
    const none = await call(app.base, '/documents');
    expect([none.status, none.body.code]).to.deep.equal([401, 'TENANT_REQUIRED']);
    const malformed = await call(app.base, '/documents', {
      method: 'POST',
      tenant: 'acme',
      body: '{"title":',
    });
    expect([malformed.status, malformed.body.code]).to.deep.equal([400, 'ENTITY_PARSE_FAILED']);
    expect(malformed.type).to.match(/^application\/problem\+json/);

    // Another process suspends the tenant: the packed CLI, as the README shows.
    await run(
      process.execPath,
      [
        path.join(dir, 'node_modules', 'tenantry', 'dist', 'cli', 'main.js'),
        '--config',
        'tenancy.yaml',
        'tenants',
        'suspend',
        'acme',
        '--reason',
        'unpaid',
      ],
      { cwd: dir, env: { ...process.env, DATABASE_URL: databaseUrl } },
    );
    // The cache TTL is 30 s; the notifier must make the suspension visible long before.
    let after: Answer | undefined;
    for (let i = 0; i < 50; i += 1) {
      after = await call(app.base, '/documents', { tenant: 'acme' });
      if (after.status !== 200) break;
      await sleep(100);
    }
    expect([after?.status, after?.body.code]).to.deep.equal([403, 'TENANT_SUSPENDED']);
  } finally {
    const exited = new Promise<number | null>((resolve) => app.child.once('exit', resolve));
    app.child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(10_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') app.child.kill('SIGKILL');
    expect(code, `the app did not stop on SIGTERM:\n${app.output()}`).to.equal(0);
  }
}

describe('README (as a package user meets it)', function () {
  this.timeout(240_000);
  let work: string;
  let pack: Pack;

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'tenantry-readme-'));
    pack = await packTenantry(work);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs LICENSE, README and type declarations, and no source maps pointing to unshipped src', () => {
    expect(pack.files).to.include.members([
      'LICENSE',
      'README.md',
      'dist/index.d.ts',
      'package.json',
    ]);
    expect(pack.files.filter((f) => f.endsWith('.map'))).to.deep.equal([]);
    expect(pack.files.filter((f) => f.startsWith('src/'))).to.deep.equal([]);
    const meta = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(meta).to.include({ license: 'MIT' });
    expect(meta.repository).to.be.an('object');
    expect(meta.homepage).to.be.a('string');
    expect(meta.keywords).to.include('multi-tenancy');
    expect(meta.peerDependencies).to.have.property('@types/express');
    expect(meta.peerDependenciesMeta).to.deep.equal({
      '@opentelemetry/api': { optional: true },
      '@types/express': { optional: true },
      bullmq: { optional: true },
      'cookie-session': { optional: true },
      'express-session': { optional: true },
      'prom-client': { optional: true },
      'socket.io': { optional: true },
      ws: { optional: true },
      // Online moves stream COPY through it.
      'pg-copy-streams': { optional: true },
    });
    expect(Object.keys(meta.exports as object)).to.deep.equal([
      '.',
      './bullmq',
      './testing',
      './ws',
      './socket.io',
      './prometheus',
      './package.json',
    ]);
    expect(pack.files).to.include.members([
      'dist/integrations/bullmq.d.ts',
      'dist/integrations/bullmq.js',
      'dist/telemetry/prometheus-tenancy-metrics.d.ts',
      'dist/telemetry/prometheus-tenancy-metrics.js',
      'dist/testing/index.d.ts',
      'dist/testing/index.js',
      'dist/integrations/ws.d.ts',
      'dist/integrations/ws.js',
      'dist/integrations/socket-io.d.ts',
      'dist/integrations/socket-io.js',
    ]);
    expect(readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).to.match(/^MIT License/);
  });

  it('compiles every TypeScript block in a CommonJS project, loads each one, require()s each subpath export, and the Quick start runs and answers over HTTP', async () => {
    const dir = path.join(work, 'cjs');
    await createProject(dir, 'commonjs', pack);
    const js = readFileSync(path.join(dir, 'node_modules', 'tenantry', 'dist', 'index.js'), 'utf8');
    expect(js).not.to.contain('sourceMappingURL');
    await compile(dir);
    await runFragments(dir);
    await checkSubpaths(dir, 'commonjs');
    await driveQuickStart(dir);
  });

  it('compiles every TypeScript block in an ES-module project, imports each subpath export, and the Quick start runs there too', async () => {
    const dir = path.join(work, 'esm');
    await createProject(dir, 'module', pack);
    await compile(dir);
    await checkSubpaths(dir, 'module');
    await driveQuickStart(dir);
  });
});
