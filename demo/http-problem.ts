/**
 * The demo's own errors (bad input, missing documents, no login), rendered as
 * RFC 9457 problem+json in the same shape as tenantry's `tenancyErrorHandler()`.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { DocumentChanges, NewDocument } from './document-service';

/** One invalid field of a request body. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/** An error the demo answers itself. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    message: string,
    readonly errors?: readonly FieldProblem[],
  ) {
    super(message);
    this.name = 'HttpProblem';
  }
}

/** 404 with one body for every absent document, so foreign ids cannot be told from missing ones. */
export function documentNotFound(): HttpProblem {
  return new HttpProblem(
    404,
    'DOCUMENT_NOT_FOUND',
    'Document not found',
    'Cannot find this document. Check the id.',
  );
}

function invalid(errors: FieldProblem[]): HttpProblem {
  return new HttpProblem(
    400,
    'VALIDATION_FAILED',
    'Invalid request body',
    `Cannot accept the request body because ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}. Fix it and retry.`,
    errors,
  );
}

const TITLE_MAX = 200;
const BODY_MAX = 20_000;
// PostgreSQL text cannot hold U+0000: refused here as bad input rather than failing in the database.
const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';

function checkFields(
  input: unknown,
  required: readonly string[],
): { value: Record<string, unknown>; errors: FieldProblem[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { value: {}, errors: [{ field: '(body)', message: 'must be a JSON object' }] };
  }
  const value = input as Record<string, unknown>;
  const errors: FieldProblem[] = [];
  for (const key of Object.keys(value)) {
    if (key === 'title' || key === 'body') continue;
    // tenant_id in particular: the tenant comes from the request's resolution, never from the body.
    errors.push({
      field: key,
      message:
        key === 'tenant_id' || key === 'tenantId'
          ? 'is set by the server from the resolved tenant'
          : 'is not a known field',
    });
  }
  for (const key of required) {
    if (value[key] === undefined) errors.push({ field: key, message: 'is required' });
  }
  const title = value.title;
  if (title !== undefined) {
    if (typeof title !== 'string' || title.trim() === '') {
      errors.push({ field: 'title', message: 'must be a non-empty string' });
    } else if (title.includes('\u0000')) {
      errors.push({ field: 'title', message: NUL_MESSAGE });
    } else if (title.length > TITLE_MAX) {
      errors.push({ field: 'title', message: `must be at most ${TITLE_MAX} characters` });
    }
  }
  const body = value.body;
  if (body !== undefined) {
    if (typeof body !== 'string') errors.push({ field: 'body', message: 'must be a string' });
    else if (body.includes('\u0000')) errors.push({ field: 'body', message: NUL_MESSAGE });
    else if (body.length > BODY_MAX) {
      errors.push({ field: 'body', message: `must be at most ${BODY_MAX} characters` });
    }
  }
  return { value, errors };
}

/** Validates a POST /documents body. */
export function parseNewDocument(input: unknown): NewDocument {
  const { value, errors } = checkFields(input, ['title']);
  if (errors.length > 0) throw invalid(errors);
  return {
    title: (value.title as string).trim(),
    ...(value.body !== undefined ? { body: value.body as string } : {}),
  };
}

/** Validates a PATCH /documents/:id body (at least one field). */
export function parseDocumentChanges(input: unknown): DocumentChanges {
  const { value, errors } = checkFields(input, []);
  if (errors.length === 0 && value.title === undefined && value.body === undefined) {
    errors.push({ field: '(body)', message: 'must change title or body' });
  }
  if (errors.length > 0) throw invalid(errors);
  return {
    ...(value.title !== undefined ? { title: (value.title as string).trim() } : {}),
    ...(value.body !== undefined ? { body: value.body as string } : {}),
  };
}

/** 404 for every route the demo does not have. */
export const routeNotFound: RequestHandler = (req, _res, next) => {
  next(
    new HttpProblem(
      404,
      'ROUTE_NOT_FOUND',
      'Not found',
      `Cannot ${req.method} ${req.path} because the demo has no such route. See the README tour.`,
    ),
  );
};

interface BodyParserError {
  type?: unknown;
  status?: unknown;
}

/**
 * Renders {@link HttpProblem}s and body-parser failures; passes everything
 * else (tenantry's errors) on to `tenancyErrorHandler()`.
 */
export const demoProblemHandler: ErrorRequestHandler = (err: unknown, req, res, next) => {
  let problem: HttpProblem | undefined;
  if (err instanceof HttpProblem) problem = err;
  else if (typeof err === 'object' && err !== null) {
    const e = err as BodyParserError;
    if (e.type === 'entity.parse.failed') {
      problem = new HttpProblem(
        400,
        'BODY_INVALID',
        'Malformed JSON',
        'Cannot parse the request body because it is not valid JSON. Send a JSON object.',
      );
    } else if (e.type === 'entity.too.large') {
      problem = new HttpProblem(
        413,
        'BODY_TOO_LARGE',
        'Request body too large',
        'Cannot accept the request body because it is too large. Send less than 64 kB.',
      );
    } else if (typeof e.type === 'string' && typeof e.status === 'number' && e.status < 500) {
      problem = new HttpProblem(
        e.status,
        'BODY_INVALID',
        'Unreadable body',
        'Cannot read the request body. Send JSON in UTF-8.',
      );
    }
  }
  if (problem === undefined) {
    next(err);
    return;
  }
  res
    .status(problem.status)
    .type('application/problem+json')
    .json({
      type: `urn:tenantry-demo:problem:${problem.code.toLowerCase().replace(/_/g, '-')}`,
      title: problem.title,
      status: problem.status,
      detail: problem.message,
      code: problem.code,
      instance: req.path,
      ...(problem.errors ? { errors: problem.errors } : {}),
    });
};

/**
 * The last handler: anything unexpected is a 500 problem+json whose details
 * stay in the log, never in the response.
 */
export function internalErrorHandler(log: (error: unknown) => void): ErrorRequestHandler {
  return function demoInternalErrorHandler(err: unknown, req, res, next): void {
    log(err);
    if (res.headersSent) {
      next(err);
      return;
    }
    res.status(500).type('application/problem+json').json({
      type: 'urn:tenantry-demo:problem:internal',
      title: 'Internal error',
      status: 500,
      code: 'INTERNAL',
      instance: req.path,
    });
  };
}
