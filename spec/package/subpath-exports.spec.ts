/**
 * The realtime adapters live in the subpaths tenantry/ws and tenantry/socket.io
 * so that an app without WebSockets never loads them, and no entry point ever
 * loads the optional peers `ws`, `socket.io`, `express-session` or `cookie-session` themselves
 * (the adapters are structural). Checked in a fresh Node process on the
 * compiled entries; spec/readme checks the same subpaths from the packed tarball.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);
const BUILD = path.resolve(__dirname, '..', '..', 'src');
const ROOT = path.resolve(__dirname, '..', '..', '..');

interface Loaded {
  readonly exports: string[];
  readonly peers: string[];
  readonly realtime: string[];
}

/** Requires `entries` in a fresh process; reports their exports and which peers/realtime files got loaded. */
async function load(...entries: string[]): Promise<Loaded> {
  const script = `
    const path = require('node:path');
    const exported = [];
    for (const entry of ${JSON.stringify(entries)}) exported.push(...Object.keys(require(entry)));
    const files = Object.keys(require.cache);
    const peer = (name) => files.some((f) => f.includes(path.sep + 'node_modules' + path.sep + name + path.sep));
    console.log(JSON.stringify({
      exports: exported,
      peers: ['ws', 'socket.io', 'engine.io', 'express-session', 'cookie-session'].filter(peer),
      realtime: files.filter((f) => f.includes(path.sep + 'realtime' + path.sep)).map((f) => path.basename(f)).sort(),
    }));`;
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: ROOT });
  return JSON.parse(stdout) as Loaded;
}

describe('subpath exports tenantry/ws and tenantry/socket.io', function () {
  this.timeout(30_000);

  it('are declared in package.json, pointing at the built integrations', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
    };
    expect(pkg.exports['./ws']).to.deep.equal({
      types: './dist/integrations/ws.d.ts',
      default: './dist/integrations/ws.js',
    });
    expect(pkg.exports['./socket.io']).to.deep.equal({
      types: './dist/integrations/socket-io.d.ts',
      default: './dist/integrations/socket-io.js',
    });
  });

  it('keep the realtime adapters out of the main entry: loading tenantry loads no realtime module and no peer', async () => {
    const main = await load(path.join(BUILD, 'index.js'));
    expect(main.exports).to.include.members([
      'resolveTenant',
      'bindSessionToTenant',
      'RedisNonceStore',
    ]);
    expect(main.exports).not.to.include.members(['wsTenancy']);
    for (const name of [
      'wsTenancy',
      'socketIoTenancy',
      'TenantConnections',
      'createUpgradeResolver',
    ]) {
      expect(main.exports, name).not.to.include(name);
    }
    expect(main.realtime).to.deep.equal([]);
    expect(main.peers).to.deep.equal([]);
  });

  it('load their adapters without loading ws, socket.io or express-session', async () => {
    const ws = await load(path.join(BUILD, 'integrations', 'ws.js'));
    expect(ws.exports).to.include.members([
      'wsTenancy',
      'createUpgradeResolver',
      'writeUpgradeRefusal',
      'TenantConnections',
      'TENANT_CLOSE_CODES',
      'DEFAULT_UPGRADE_TIMEOUT_MS',
    ]);
    expect(ws.peers).to.deep.equal([]);
    const io = await load(path.join(BUILD, 'integrations', 'socket-io.js'));
    expect(io.exports).to.include.members([
      'socketIoTenancy',
      'TENANT_CLOSED_EVENT',
      'TenantConnections',
    ]);
    expect(io.peers).to.deep.equal([]);
  });

  it('share one TenantConnections class', async () => {
    const script = `
      const a = require(${JSON.stringify(path.join(BUILD, 'integrations', 'ws.js'))});
      const b = require(${JSON.stringify(path.join(BUILD, 'integrations', 'socket-io.js'))});
      console.log(JSON.stringify({ same: a.TenantConnections === b.TenantConnections }));`;
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: ROOT });
    expect(JSON.parse(stdout)).to.deep.equal({ same: true });
  });
});
