/**
 * The demo's HTTP edge: the announced-body limit and the server that owns
 * `Expect: 100-continue`, so a client announcing an oversized body gets its
 * 413 at once instead of being asked (or waited on) to send it.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Express, RequestHandler } from 'express';
import { HttpProblem } from './http-problem';

/** The largest request body the demo reads (body-parser's limit too). */
export const BODY_LIMIT_BYTES = 64 * 1024;

/** Requests that arrived with `Expect: 100-continue` and have not been told to continue yet. */
const awaitingContinue = new WeakSet<IncomingMessage>();

/**
 * Refuses a request whose `Content-Length` is over `limitBytes` with 413
 * before reading any of it, and closes the connection after answering (the
 * unread body cannot be skipped on a kept-alive connection). body-parser
 * alone reads (and waits for) the whole announced body before its 413, so a
 * client that announces a large body and never sends it would get no answer.
 * A request within the limit that is waiting for `100 Continue` gets it here,
 * just before its body is read.
 */
export function announcedBodyLimit(limitBytes: number): RequestHandler {
  if (!Number.isInteger(limitBytes) || limitBytes <= 0) {
    throw new TypeError('announcedBodyLimit(limitBytes) needs a positive integer.');
  }
  return function demoAnnouncedBodyLimit(req, res, next): void {
    const announced = req.headers['content-length'];
    if (announced !== undefined && Number(announced) > limitBytes) {
      awaitingContinue.delete(req);
      res.setHeader('Connection', 'close');
      next(
        new HttpProblem(
          413,
          'BODY_TOO_LARGE',
          'Request body too large',
          `Cannot accept the request body because it is too large. Send less than ${limitBytes / 1024} kB.`,
        ),
      );
      return;
    }
    if (awaitingContinue.delete(req)) res.writeContinue();
    next();
  };
}

/**
 * An HTTP server for the demo app that answers `Expect: 100-continue` itself
 * (through {@link announcedBodyLimit}) instead of Node's automatic
 * `100 Continue`, which would invite an oversized body.
 */
export function createDemoServer(app: Express): Server {
  const server = createServer(app);
  server.on('checkContinue', (req, res) => {
    awaitingContinue.add(req);
    app(req, res);
  });
  return server;
}
