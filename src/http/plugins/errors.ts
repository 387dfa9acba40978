/**
 * The one place error bodies are built. ApiErrors map by their catalogue entry; Fastify's own
 * client errors (bad JSON, body too large, wrong content type) are translated to catalogue codes;
 * anything else is a 500 whose details stay in the log.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, isApiError, storageFullError } from '../../domain/errors.ts';

function fromFastifyError(err: FastifyError, maxBodyBytes: number): ApiError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('invalid_json', `request body is not valid JSON: ${err.message.replace(/^Body is not valid JSON but content-type is set to 'application\/json'$/, 'could not be parsed')}`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('invalid_json', 'request body is empty; expected a JSON object');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('body_too_large', `request body is larger than the limit of ${maxBodyBytes} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type', 'Content-Type must be application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('invalid_json', 'Content-Length does not match the body');
    default:
      break;
  }
  // @fastify/multipart's parser (busboy) reports a broken multipart body with plain Errors.
  if (/^Multipart: |unexpected end of multipart data|Malformed part header|Unexpected end of form/i.test(err.message ?? '')) {
    return new ApiError('invalid_value', `multipart body could not be read: ${err.message}`);
  }
  if (err instanceof SyntaxError || err.name === 'SyntaxError') {
    return new ApiError('invalid_json', `request body is not valid JSON: ${err.message}`);
  }
  if (err.statusCode === 413) return new ApiError('body_too_large', `request body is larger than the limit of ${maxBodyBytes} bytes`);
  if (err.statusCode === 415) return new ApiError('unsupported_media_type', err.message);
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return new ApiError('invalid_value', err.message);
  return null;
}

export function sendApiError(reply: FastifyReply, err: ApiError): FastifyReply {
  if (err.retryAfterS !== undefined) reply.header('retry-after', String(err.retryAfterS));
  return reply.code(err.status).type('application/json').send(err.toBody());
}

export function registerErrorHandling(app: FastifyInstance, maxBodyBytes: number): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const mapped = isApiError(err) ? err : (storageFullError(err) ?? fromFastifyError(err, maxBodyBytes));
    if (mapped) {
      // 503s (queue full, no backend up, draining) are the server saying "busy", not a fault: no stack.
      if (mapped.status >= 500 && mapped.status !== 503) request.log.error({ err, code: mapped.code }, mapped.message);
      else request.log.info({ code: mapped.code, param: mapped.param }, mapped.message);
      return sendApiError(reply, mapped);
    }
    request.log.error({ err }, 'unhandled error');
    return sendApiError(reply, new ApiError('internal_error', `internal error (request id ${request.id})`));
  });
  app.setNotFoundHandler((request, reply) =>
    sendApiError(reply, new ApiError('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}
