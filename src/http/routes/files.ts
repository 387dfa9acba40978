/**
 * GET /files/<key> — downloads of generated images. Unauthenticated, like the CDN links of the API
 * this server mirrors: the key holds a random UUID, so a URL is only known to whoever was given it.
 * The body is streamed from the blob store (a file, or an S3 object read as it arrives), never held whole.
 * Only keys under PUBLIC_PREFIX are served: the store also holds a job's reference images (`inputs/<job id>-<k>.rgb`),
 * whose names carry no secret beyond the job id, so they are never downloadable.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../domain/errors.ts';
import type { BlobStore } from '../../domain/ports.ts';

/** The blob keys /files/ serves (run-generation.ts names every stored image `generations/<ms>-<uuid>.<ext>`). */
export const PUBLIC_PREFIX = 'generations/';

export function registerFileRoutes(app: FastifyInstance, deps: { blobs: BlobStore }): void {
  app.get('/files/*', async (request, reply) => {
    const key = (request.params as { '*': string })['*'];
    const blob = key.startsWith(PUBLIC_PREFIX) ? await deps.blobs.get(key) : null;
    if (!blob) throw new ApiError('not_found', `no file ${key}`);
    reply.type(blob.contentType).header('cache-control', 'public, max-age=31536000, immutable');
    if (blob.sizeBytes !== undefined) reply.header('content-length', blob.sizeBytes);
    return reply.send(blob.stream);
  });
}
