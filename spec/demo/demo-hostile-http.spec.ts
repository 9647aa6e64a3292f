/**
 * The demo under hostile HTTP, over raw sockets: every malformed request is
 * answered with a 4xx application/problem+json within a second (a socket
 * deadline, not a speed measurement), never a 500 and never silence.
 * Regressions of issue 15: a malformed percent-escape in :id answered 500, a
 * NUL in a title reached PostgreSQL (500), an announced oversized body that
 * was never sent was never answered.
 */
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { mintDemoToken } from '../../demo/demo-users';
import { BODY_LIMIT_BYTES, createDemoServer } from '../../demo/http-server';
import { createScratchDatabase, createTestKnex, destroyTestKnex } from '../support/test-database';

interface RawAnswer {
  /** Every byte received until the deadline or the server closed the socket. */
  readonly text: string;
  /** Whether the server closed the connection before the deadline. */
  readonly closed: boolean;
}

/**
 * Writes `head` (and `body`) on a fresh socket and collects what comes back
 * until the server closes, a full response arrived (`untilComplete`), or
 * `deadlineMs` passed.
 */
function rawRequest(port: number, head: string, body = '', deadlineMs = 1000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), deadlineMs);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') finish(true);
      else reject(error);
    });
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (complete(text)) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.write(head.replace(/\n/g, '\r\n') + '\r\n' + body);
  });
}

/** Whether `text` holds one full final (non-1xx) response with its Content-Length body. */
function complete(text: string): boolean {
  const responses = text.split(/(?=HTTP\/1\.1 \d{3})/);
  const last = responses[responses.length - 1] ?? '';
  if (/^HTTP\/1\.1 1\d\d/.test(last)) return false;
  const split = last.indexOf('\r\n\r\n');
  if (split < 0) return false;
  const length = /\r\ncontent-length: (\d+)/i.exec(last.slice(0, split));
  return length !== null && Buffer.byteLength(last.slice(split + 4), 'latin1') >= Number(length[1]);
}

interface Parsed {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly problem: Record<string, unknown>;
  readonly interim: readonly number[];
}

function parse(answer: RawAnswer): Parsed {
  const responses = answer.text.split(/(?=HTTP\/1\.1 \d{3})/).filter((r) => r !== '');
  const final = responses[responses.length - 1];
  if (final === undefined) expect.fail('no response at all within the deadline');
  const split = final.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = final.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  const body = final.slice(split + 4);
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]),
    headers,
    problem: headers['content-type']?.startsWith('application/problem+json')
      ? (JSON.parse(Buffer.from(body, 'latin1').toString('utf8')) as Record<string, unknown>)
      : {},
    interim: responses.slice(0, -1).map((r) => Number(r.slice(9, 12))),
  };
}

describe('demo app under hostile HTTP (raw sockets)', function () {
  this.timeout(60_000);
  let central: Knex;
  let demo: DemoApp;
  let server: Server;
  let port: number;
  const auth = () => `Authorization: Bearer ${mintDemoToken('alice')}`;

  before(async () => {
    central = createTestKnex({ pool: { min: 0, max: 4 } }, await createScratchDatabase('hostile'));
    demo = await createDemoApp({ knex: central, isolation: 'row', env: false });
    server = createDemoServer(demo.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await demo.close();
    await destroyTestKnex(central);
  });

  const get = (path: string) =>
    rawRequest(port, `GET ${path} HTTP/1.1\nHost: localhost\n${auth()}\nConnection: close\n`);

  for (const path of [
    '/documents/%C0%AE',
    '/documents/%',
    '/documents/%E0%A4%A',
    '/documents/%zz',
  ]) {
    it(`answers a malformed percent-escape in :id (${path}) with 400 problem+json, not 500`, async () => {
      const answer = parse(await get(path));
      expect(answer.status).to.equal(400);
      expect(answer.headers['content-type']).to.match(/^application\/problem\+json/);
      expect(answer.problem).to.include({ status: 400, code: 'BAD_REQUEST' });
    });
  }

  it('still answers a well-formed escape normally (404 for an unknown id)', async () => {
    const answer = parse(await get('/documents/%61bc'));
    expect([answer.status, answer.problem.code]).to.deep.equal([404, 'DOCUMENT_NOT_FOUND']);
  });

  for (const [label, json] of [
    ['a title', '{"title":"a\\u0000b"}'],
    ['a body', '{"title":"ok","body":"x\\u0000"}'],
  ] as const) {
    it(`answers a NUL character in ${label} with 400 VALIDATION_FAILED (POST and PATCH)`, async () => {
      for (const method of [
        'POST /documents',
        'PATCH /documents/00000000-0000-4000-8000-000000000000',
      ]) {
        const answer = parse(
          await rawRequest(
            port,
            `${method} HTTP/1.1\nHost: localhost\n${auth()}\nContent-Type: application/json\n` +
              `Content-Length: ${Buffer.byteLength(json)}\nConnection: close\n`,
            json,
          ),
        );
        expect([answer.status, answer.problem.code], method).to.deep.equal([
          400,
          'VALIDATION_FAILED',
        ]);
        expect(JSON.stringify(answer.problem.errors)).to.contain('NUL');
      }
    });
  }

  it('answers an announced oversized body that is never sent with 413 at once, and closes', async () => {
    const raw = await rawRequest(
      port,
      `POST /documents HTTP/1.1\nHost: localhost\n${auth()}\nContent-Type: application/json\n` +
        `Content-Length: ${10 * 1024 * 1024}\n`,
    );
    const answer = parse(raw);
    expect([answer.status, answer.problem.code]).to.deep.equal([413, 'BODY_TOO_LARGE']);
    expect(answer.headers.connection).to.equal('close');
  });

  it('answers an oversized body announced with Expect: 100-continue with 413, never 100', async () => {
    const answer = parse(
      await rawRequest(
        port,
        `POST /documents HTTP/1.1\nHost: localhost\n${auth()}\nContent-Type: application/json\n` +
          `Content-Length: ${BODY_LIMIT_BYTES + 1}\nExpect: 100-continue\n`,
      ),
    );
    expect(answer.interim).to.deep.equal([]);
    expect([answer.status, answer.problem.code]).to.deep.equal([413, 'BODY_TOO_LARGE']);
  });

  it('still tells a body within the limit to continue, and stores it', async () => {
    const json = '{"title":"continued"}';
    const socket = connect(port, '127.0.0.1');
    const text = await new Promise<string>((resolve, reject) => {
      let got = '';
      const timer = setTimeout(() => resolve(got), 2000);
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        got += chunk.toString('latin1');
        if (
          got.startsWith('HTTP/1.1 100') &&
          !got.includes('HTTP/1.1 201') &&
          got.endsWith('\r\n\r\n')
        ) {
          socket.write(json);
        }
        if (complete(got)) {
          clearTimeout(timer);
          resolve(got);
        }
      });
      socket.write(
        `POST /documents HTTP/1.1\r\nHost: localhost\r\n${auth()}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${json.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      );
    });
    socket.destroy();
    const answer = parse({ text, closed: true });
    expect(answer.interim).to.deep.equal([100]);
    expect(answer.status).to.equal(201);
  });

  it('answers malformed JSON and an unsupported charset with 4xx problem+json', async () => {
    for (const [type, body, status] of [
      ['application/json', '{"title":', 400],
      ['application/json; charset=koi8-r', '{"title":"x"}', 415],
    ] as const) {
      const answer = parse(
        await rawRequest(
          port,
          `POST /documents HTTP/1.1\nHost: localhost\n${auth()}\nContent-Type: ${type}\n` +
            `Content-Length: ${body.length}\nConnection: close\n`,
          body,
        ),
      );
      expect(answer.status, type).to.equal(status);
      expect(answer.headers['content-type']).to.match(/^application\/problem\+json/);
    }
  });
});
