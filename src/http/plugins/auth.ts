/**
 * Bearer-key authentication: `Authorization: Bearer <key>`, scheme case-insensitive. The caller's
 * key record is put on the request for the routes (usage is per key). Admin routes add the role check.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import type { ApiKeyRecord, KeyStore } from '../../domain/ports.ts';

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyRecord | null;
  }
}

const BEARER = /^bearer[ \t]+([^\s]+)[ \t]*$/i;

export function createAuthenticate(keys: KeyStore) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    if (!header) {
      throw new ApiError('missing_api_key', 'missing Authorization header; send "Authorization: Bearer <API key>"', { param: 'authorization' });
    }
    const m = BEARER.exec(header);
    if (!m) {
      throw new ApiError('invalid_api_key', 'Authorization header must be "Bearer <API key>"', { param: 'authorization' });
    }
    const record = await keys.verify(m[1]!);
    if (!record) throw new ApiError('invalid_api_key', 'invalid or revoked API key', { param: 'authorization' });
    request.apiKey = record;
  };
}

/** authenticate, then 403 unless the key is an admin key (the /v1/admin/... routes). */
export function createRequireAdmin(authenticate: ReturnType<typeof createAuthenticate>) {
  return async function requireAdmin(request: FastifyRequest): Promise<void> {
    await authenticate(request);
    if (request.apiKey!.role !== 'admin') {
      throw new ApiError('forbidden', `key ${request.apiKey!.id} is a user key; ${request.method} ${request.url.split('?')[0]} needs an admin key`);
    }
  };
}
