/**
 * POST /v1/images/verify — where does this image come from? Same input as watermark detection (JSON
 * {"image_url": URL or data: URI}, or multipart field "image"). Answers the C2PA manifest's state and
 * assertions, the invisible mark, and the generation the mark points to, within the caller's own key
 * (provenance/trace-mark.ts). Reading only: nothing is stored or charged.
 */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import multipart from '@fastify/multipart';
import { decodeImage, type DecodeLimits } from '../../images/decode-image.ts';
import type { ImageFetcher } from '../../images/fetch-image.ts';
import type { VerifyImage } from '../../provenance/verify-image.ts';
import { readImageInput } from './image-input.ts';

export interface VerifyRouteDeps {
  authenticate: preHandlerHookHandler;
  verifyImage: VerifyImage;
  fetcher: ImageFetcher;
  decodeLimits: DecodeLimits;
  maxUploadBytes: number;
}

export async function registerVerifyRoutes(app: FastifyInstance, deps: VerifyRouteDeps): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { files: 1, fileSize: deps.maxUploadBytes, fields: 4 } });
    scope.post('/v1/images/verify', { preHandler: deps.authenticate }, async (request) => {
      const { bytes, param } = await readImageInput(request, deps.fetcher, deps.maxUploadBytes);
      // Decoding first: bytes that are no image are a 400 invalid_image, as in detection.
      const image = await decodeImage(bytes, deps.decodeLimits, param);
      return deps.verifyImage(bytes, image, { kind: 'key', keyId: request.apiKey!.id });
    });
  });
}
