/**
 * POST /v1/watermark/detect — is our invisible mark in this image? Accepts JSON
 * {"image_url": "<http(s) URL or data: URI>"} (same fetch rules as image_urls) or a multipart upload
 * with the file in field "image".
 */
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import multipart from '@fastify/multipart';
import type { Watermarker } from '../../domain/ports.ts';
import type { ImageFetcher } from '../../images/fetch-image.ts';
import { decodeImage, type DecodeLimits } from '../../images/decode-image.ts';
import type { WorkGate } from '../../images/work-gate.ts';
import { readImageInput, whileClientStays } from './image-input.ts';

export interface WatermarkRouteDeps {
  authenticate: preHandlerHookHandler;
  watermarker: Watermarker;
  fetcher: ImageFetcher;
  decodeLimits: DecodeLimits;
  imageGate: WorkGate;
  maxUploadBytes: number;
}

export async function registerWatermarkRoutes(app: FastifyInstance, deps: WatermarkRouteDeps): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { files: 1, fileSize: deps.maxUploadBytes, fields: 4 } });
    // A client that leaves stops the work: a decode still waiting for the gate never starts.
    scope.post('/v1/watermark/detect', { preHandler: deps.authenticate }, (request, reply) => whileClientStays(reply, (signal) => detectIn(request, signal)));

    async function detectIn(request: FastifyRequest, signal: AbortSignal) {
      const { bytes, param } = await readImageInput(request, deps.fetcher, deps.maxUploadBytes, signal);
      // Decode and detection both hold the decoded pixels: both run inside the gate.
      const result = await deps.imageGate.run(async () => deps.watermarker.detect(await decodeImage(bytes, deps.decodeLimits, param)), signal);
      return {
        detected: result.detected,
        confidence: result.confidence,
        payload: result.payload ? { issuer_id: result.payload.issuerId, generation_id: result.payload.generationId } : null,
      };
    }
  });
}
