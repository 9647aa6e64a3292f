/**
 * JWT verification cost per request: the jwt_claim strategy with a cached
 * JWKS key (jwksUri, the keys fetched once from a loopback server) against
 * the same strategy with the same key given statically (the baseline),
 * alternating call by call in one process. Also prints jsonwebtoken's
 * synchronous verify of the same token, the implementation jose replaced,
 * as a reference. Goal: JWKS / static <= 1.05.
 *
 *   npm run build:test && node build/bench/jwt.bench.js
 */
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Request } from 'express';
import jsonwebtoken from 'jsonwebtoken';
import { JwtClaimStrategy } from '../src/index';
import { interleave, line } from './support/interleaved';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 2000);

async function main(): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const token = jsonwebtoken.sign(
    { sub: 'u1', tid: 'acme', aud: 'api', iss: 'https://idp' },
    privateKey,
    {
      algorithm: 'RS256',
      keyid: 'k1',
      expiresIn: '1h',
    },
  );
  const req = { headers: { authorization: `Bearer ${token}` } } as unknown as Request;
  const common = { algorithms: ['RS256'], audience: 'api', issuer: 'https://idp' };
  const staticKey = new JwtClaimStrategy({ ...common, publicKey });
  const jwks = new JwtClaimStrategy({ ...common, jwksUri: `http://127.0.0.1:${port}/jwks` });
  let fetched = 0;
  server.on('request', () => (fetched += 1));
  const check = async (s: JwtClaimStrategy): Promise<void> => {
    const found = await s.resolve(req);
    if (found?.tenantId !== 'acme') throw new Error('jwt bench: the token did not resolve acme');
  };
  try {
    const timings = await interleave(
      [
        { name: 'static key (jose, baseline)', run: () => check(staticKey) },
        { name: 'jwksUri, cached key (jose)', run: () => check(jwks) },
        {
          name: 'jsonwebtoken.verify (old, sync)',
          run: async () =>
            jsonwebtoken.verify(token, publicKey, { algorithms: ['RS256'], audience: 'api' }),
        },
      ],
      ROUNDS,
      PER_ROUND,
    );
    for (const t of timings) console.log(line(t));
    const [base, remote, old] = timings as [
      (typeof timings)[0],
      (typeof timings)[0],
      (typeof timings)[0],
    ];
    console.log(`JWKS fetches during the run: ${fetched} (the key stays cached)`);
    console.log(
      `jwksUri / static key (median): ${(remote.medianUs / base.medianUs).toFixed(3)}  (goal <= 1.05)`,
    );
    console.log(`jwksUri / static key (mean):   ${(remote.meanUs / base.meanUs).toFixed(3)}`);
    console.log(
      `jose static / jsonwebtoken (median): ${(base.medianUs / old.medianUs).toFixed(3)}  (reference)`,
    );
  } finally {
    server.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
