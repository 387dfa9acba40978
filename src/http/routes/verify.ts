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
import { readImageInput, whileClientStays } from './image-input.ts';
import type { WorkGate } from '../../images/work-gate.ts';

export interface VerifyRouteDeps {
  authenticate: preHandlerHookHandler;
  verifyImage: VerifyImage;
  fetcher: ImageFetcher;
  decodeLimits: DecodeLimits;
  imageGate: WorkGate;
  maxUploadBytes: number;
}

export async function registerVerifyRoutes(app: FastifyInstance, deps: VerifyRouteDeps): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { files: 1, fileSize: deps.maxUploadBytes, fields: 4 } });
    scope.post('/v1/images/verify', { preHandler: deps.authenticate }, (request, reply) =>
      whileClientStays(reply, async (signal) => {
        const { bytes, param } = await readImageInput(request, deps.fetcher, deps.maxUploadBytes, signal);
        // Decoding first: bytes that are no image are a 400 invalid_image, as in detection. Decode, manifest
        // read and detection hold the pixels: all inside the image gate.
        return deps.imageGate.run(async () => deps.verifyImage(bytes, await decodeImage(bytes, deps.decodeLimits, param), { kind: 'key', keyId: request.apiKey!.id }), signal);
      }),
    );
  });
}
