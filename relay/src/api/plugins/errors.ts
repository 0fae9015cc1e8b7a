import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { DomainError, type DomainErrorKind } from '../../core/domain-error.js';
import { endWithHttpResponse } from '../../http/raw-response.js';
import { RelayError } from '../relay-error.js';
import type { ApiPluginOptions } from '../route-kit.js';

export const BODY_LIMIT_BYTES = 1024 * 1024;

/** The status each kind of domain failure is answered with. */
const DOMAIN_STATUS: Record<DomainErrorKind, 400 | 404 | 409 | 422 | 503> = { invalid: 400, 'not-found': 404, conflict: 409, unprocessable: 422, unavailable: 503 };

interface ValidationIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns Ajv's first issue into a sentence that names the field (and, for a choice of values, lists them). */
function describeValidation(issues: readonly ValidationIssue[], context: string): string {
  const issue = issues[0]!;
  const field = `${context}${issue.instancePath.replace(/\//g, '.')}`.replace(/^body\./, '');
  // A union of literals (the power action, a scope) fails on each branch: list the values it takes.
  const allowed = issues.filter((other) => other.keyword === 'const' && other.instancePath === issue.instancePath).map((other) => String(other.params.allowedValue));
  if (allowed.length > 1) return `${field} must be one of ${allowed.join(', ')}`;
  if (issue.keyword === 'enum' && Array.isArray(issue.params.allowedValues)) return `${field} must be one of ${(issue.params.allowedValues as unknown[]).join(', ')}`;
  if (issue.keyword === 'additionalProperties') {
    return `unknown field "${String(issue.params.additionalProperty).slice(0, 64)}" in ${field}; remove it`;
  }
  if (issue.keyword === 'required') return `${field === 'body' ? 'body' : field}: missing required field "${String(issue.params.missingProperty)}"`;
  if (issue.keyword === 'minProperties') return `${field}: send at least one field to change`;
  return `${field} ${issue.message ?? 'is invalid'}`;
}

/** Fastify's `frameworkErrors`: errors raised before routing (a malformed percent-encoding, an over-long path parameter), in our shape. */
export function frameworkError(error: FastifyError, _request: unknown, reply: unknown): void {
  const refusal =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new RelayError(414, 'UriTooLong', 'a path segment is longer than the relay accepts; names are at most 63 characters')
      : new RelayError(400, 'InvalidUrl', 'the request URL is malformed (bad percent-encoding?)');
  void (reply as { status(code: number): { send(body: unknown): void } }).status(refusal.status).send({ error: { code: refusal.code, message: refusal.message } });
}

/**
 * Fastify's `clientErrorHandler`: malformed HTTP (a bad request line or header, a timeout) never
 * reaches a route; it is answered in our shape too. `answered` holds the connections on which a
 * request was already parsed and answered: a second answer would reach the client as garbage, so
 * those are just closed.
 */
export function clientErrorHandler(answered: WeakSet<object>) {
  return (error: NodeJS.ErrnoException, socket: Duplex): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    if (answered.has(socket)) return void socket.destroy();
    const [status, code, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'RequestTimeout', 'the request took too long to arrive']
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'HeadersTooLarge', 'the request headers are too large']
          : [400, 'MalformedRequest', 'the request is not well-formed HTTP/1.1'];
    endWithHttpResponse(socket, status as number, { contentType: 'application/json', body: JSON.stringify({ error: { code, message } }), destroyAfterMs: 1000 });
  };
}

/**
 * Every error in the documented shape `{"error":{"code","message"}}`: the API's own (RelayError),
 * the domain services' (DomainError, mapped by kind), schema validation, Fastify's body errors,
 * the store's disk trouble (503), unknown routes (404), requests without Host, and requests
 * while the relay shuts down (503, connection not kept).
 */
const errorsPlugin: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  // JSON only: Fastify would otherwise hand text/plain bodies to the JSON schemas as strings.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof RelayError) return reply.status(error.status).send({ error: { code: error.code, message: error.message } });
    if (error instanceof DomainError) return reply.status(DOMAIN_STATUS[error.kind]).send({ error: { code: error.code, message: error.message } });
    if (error.validation) {
      const issues = error.validation as unknown as ValidationIssue[];
      return reply.status(400).send({ error: { code: 'ValidationFailed', message: describeValidation(issues, error.validationContext ?? 'body') } });
    }
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.status(413).send({ error: { code: 'PayloadTooLarge', message: `the request body is larger than ${BODY_LIMIT_BYTES} bytes` } });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.status(415).send({ error: { code: 'UnsupportedMediaType', message: 'send the body as Content-Type: application/json' } });
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply.status(400).send({ error: { code: 'InvalidJson', message: 'the body is empty; send a JSON object' } });
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply.status(400).send({ error: { code: 'InvalidRequest', message: 'Content-Length does not match the body' } });
    }
    if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return reply.status(400).send({ error: { code: 'InvalidJson', message: 'the body is not valid JSON' } });
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ error: { code: 'InvalidRequest', message: error.message } });
    }
    // The store's disk is full, read-only or failing: the request is refused as unavailable, not as a bug.
    const storeCode = (error as { code?: unknown }).code;
    if (typeof storeCode === 'string' && /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|BUSY|LOCKED|PROTOCOL|NOMEM)/.test(storeCode)) {
      request.log.error({ err: error.message, code: storeCode }, 'the store refused a request');
      deps.metrics?.storeWriteFailed();
      return reply.status(503).send({ error: { code: 'StoreUnavailable', message: `the relay's store cannot be written now (${storeCode}: disk full or read-only?); nothing was changed; try again once it is fixed` } });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.status(500).send({ error: { code: 'InternalError', message: 'the relay failed to handle this request; see its log' } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'NotFound', message: `no such API route: ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` } }),
  );

  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && !request.headers.host) {
      throw new RelayError(400, 'MalformedRequest', 'an HTTP/1.1 request needs a Host header');
    }
  });

  // While the relay shuts down, new requests get a 503 in the documented shape (and the connection is not kept).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    void reply.header('Connection', 'close');
    throw new RelayError(503, 'ServiceUnavailable', 'the relay is shutting down; try again when it is back');
  });
};

export default fp(errorsPlugin, { name: 'lifeline-errors', fastify: '5.x' });
