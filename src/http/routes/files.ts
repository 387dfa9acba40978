/**
 * GET /files/<key> — downloads of generated images. Unauthenticated, like the CDN links of the API
 * this server mirrors: the key holds a random UUID, so a URL is only known to whoever was given it.
 * The body is streamed from the blob store (a file, or an S3 object read as it arrives), never held whole.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import type { BlobStore } from '../../domain/ports.ts';

export function registerFileRoutes(app: FastifyInstance, deps: { blobs: BlobStore }): void {
  app.get('/files/*', async (request, reply) => {
    const key = (request.params as { '*': string })['*'];
    const blob = await deps.blobs.get(key);
    if (!blob) throw new ApiError('not_found', `no file ${key}`);
    reply.type(blob.contentType).header('cache-control', 'public, max-age=31536000, immutable');
    if (blob.sizeBytes !== undefined) reply.header('content-length', blob.sizeBytes);
    return reply.send(blob.stream);
  });
}
