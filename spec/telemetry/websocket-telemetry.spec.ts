import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import WebSocket, { WebSocketServer } from 'ws';
import {
  InMemoryTenantStore,
  requireTenant,
  resolveTenant,
  tenancyTelemetry,
} from '../../src/index';
import { wsTenancy } from '../../src/integrations/ws';
import { prometheusTenancyMetrics } from '../../src/telemetry/prometheus-tenancy-metrics';
import { registerTracing, type RegisteredTracing } from './support/otel';

function connect(url: string, tenant: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { 'X-Tenant-ID': tenant } });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', reject);
  });
}

describe('tracing and metrics of WebSocket upgrades', () => {
  let tracing: RegisteredTracing;
  let server: Server;
  let url: string;
  const registry = new Registry();

  before(async () => {
    tracing = registerTracing();
    const store = new InMemoryTenantStore([{ id: 'acme' }, { id: 'globex' }]);
    const telemetry = tenancyTelemetry({ metrics: prometheusTenancyMetrics({ registry }) });
    const tenancy = wsTenancy<WebSocket>({
      handlers: [resolveTenant({ store, telemetry }), requireTenant()],
      store,
      recheckIntervalMs: 0,
    });
    const wss = new WebSocketServer({ noServer: true });
    const tracer = trace.getTracer('ws-spec');
    server = createServer();
    // The application's span around the upgrade, as an HTTP instrumentation would open one.
    server.on('upgrade', (req: IncomingMessage, socket, head) =>
      tracer.startActiveSpan('upgrade', (span) => {
        let ended = false;
        const end = () => {
          if (!ended) span.end();
          ended = true;
        };
        socket.once('close', end);
        tenancy.handleUpgrade(wss, req, socket, head, end);
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/live`;
  });
  after(async () => {
    tracing.unregister();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('puts the tenant on the upgrade span and counts upgrades per tenant and refusals by code', async () => {
    expect(await connect(url, 'acme')).to.equal(101);
    expect(await connect(url, 'acme')).to.equal(101);
    expect(await connect(url, 'globex')).to.equal(101);
    expect(await connect(url, 'nope')).to.equal(404);
    for (let i = 0; i < 50 && tracing.spans().length < 4; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const tenants = tracing
      .spans()
      .map((s) => s.attributes['tenant.id'])
      .filter((t) => t !== undefined)
      .sort();
    expect(tenants).to.deep.equal(['acme', 'acme', 'globex']);
    const metric = registry.getSingleMetric('tenantry_tenant_resolved_total')!;
    const values = (await metric.get()).values.map((v) => [v.labels.tenant, v.value]);
    expect(values).to.have.deep.members([
      ['acme', 2],
      ['globex', 1],
    ]);
    const refusals = (await registry.getSingleMetric('tenantry_refusals_total')!.get()).values;
    expect(
      refusals.map((v) => [v.labels.code, v.labels.stage, v.labels.tenant, v.value]),
    ).to.deep.equal([['TENANT_NOT_FOUND', 'resolution', '', 1]]);
  });
});
