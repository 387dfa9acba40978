/**
 * The generation use case: from a validated request to a stored, charged image. Talks only to
 * interfaces (engines, fetcher, enhancer, watermarker, blob store, usage store).
 *
 * Order matters for "nothing charged for a failure": the ledger row is written last, after the image
 * is stored; if anything before it fails, no row exists. If the ledger write itself fails the caller
 * gets an error and no image URL.
 */
import crypto from 'node:crypto';
import { ApiError, isApiError, isAbortError } from '../domain/errors.ts';
import type { BlobStore, PromptEnhancer, UsageStore, Watermarker } from '../domain/ports.ts';
import type { Engine, EngineProgress, RawImage } from '../domain/types.ts';
import type { GenerationParams } from '../contracts/validate-generation.ts';
import type { ImageFetcher } from '../images/fetch-image.ts';
import { decodeImage, type DecodeLimits } from '../images/decode-image.ts';
import { aiGeneratedXmp, encodePng, TRAINED_ALGORITHMIC_MEDIA, type PngTextEntry } from '../images/png.ts';
import type { BoundedQueue } from './bounded-queue.ts';

export interface ModelSlot {
  engine: Engine;
  queue: BoundedQueue;
}

export interface GenerateDeps {
  models: Map<string, ModelSlot>;
  fetcher: ImageFetcher;
  decodeLimits: DecodeLimits;
  enhancer: PromptEnhancer;
  watermarker: Watermarker | null;
  watermarkIssuerId: number;
  blobs: BlobStore;
  usage: UsageStore;
  pricesUsd: Record<string, number>;
  creditsPerUsd: number;
  /** Base of returned image URLs (known once the server listens). */
  publicUrl: () => string;
  requestTimeoutMs: number;
  software: string;
  now?: () => number;
  randomSeed?: () => number;
}

export interface GenerateContext {
  requestId: string;
  keyId: string;
  /** Fires when the client went away. */
  signal: AbortSignal;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  onProgress?: (p: EngineProgress) => void;
}

export interface GenerationOutcome {
  createdMs: number;
  url: string | null;
  b64Json: string | null;
  seed: number;
  revisedPrompt: string;
  width: number;
  height: number;
  credits: number;
  usd: number;
  timings: Record<string, number>;
}

/** Seeds are 0..2^31−1, as in the seed's schema. */
const MAX_SEED = 2147483647;

/** 32 bits identifying a generation by its parameters, so the same request carries the same mark. */
function generationIdOf(parts: Array<string | number>, refs: RawImage[]): number {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(String(p)).update('\0');
  for (const r of refs) h.update(`${r.width}x${r.height}`).update(r.data);
  return h.digest().readUInt32BE(0);
}

export function createGenerateImage(deps: GenerateDeps) {
  const now = deps.now ?? Date.now;
  const randomSeed = deps.randomSeed ?? (() => crypto.randomInt(0, MAX_SEED + 1));

  return async function generateImage(params: GenerationParams, ctx: GenerateContext): Promise<GenerationOutcome> {
    const slot = deps.models.get(params.model);
    if (!slot) throw new ApiError('model_not_found', `model "${params.model}" is not served here`, { param: 'model' });
    const priceUsd = deps.pricesUsd[params.model];
    if (priceUsd === undefined) throw new ApiError('model_not_found', `model "${params.model}" has no price configured`, { param: 'model' });

    const timeout = AbortSignal.timeout(deps.requestTimeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);
    const timings: Record<string, number> = {};
    const mark = (name: string, since: number) => (timings[name] = Math.round((performance.now() - since) * 100) / 100);

    const rethrow = (err: unknown): never => {
      if (timeout.aborted && !isApiError(err)) {
        throw new ApiError('generation_timeout', `the generation did not finish within ${deps.requestTimeoutMs} ms`);
      }
      if (ctx.signal.aborted && !isApiError(err)) {
        throw new ApiError('client_closed_request', 'the client closed the connection before the image was ready');
      }
      if (isAbortError(err) && timeout.aborted) {
        throw new ApiError('generation_timeout', `the generation did not finish within ${deps.requestTimeoutMs} ms`);
      }
      throw err;
    };

    try {
      // Reference images: fetched and decoded concurrently, each error naming its item.
      let t = performance.now();
      const references = await Promise.all(
        params.imageUrls.map(async (url, i) => {
          const param = `image_urls[${i}]`;
          const bytes = await deps.fetcher.fetchBytes(url, param, signal);
          return decodeImage(bytes, deps.decodeLimits, param);
        }),
      );
      mark('inputs_ms', t);

      const seed = params.seed ?? randomSeed();
      t = performance.now();
      const enhanced = params.enhancePrompt
        ? await deps.enhancer.enhance({ requestId: ctx.requestId, model: params.model, prompt: params.prompt, seed, isEdit: references.length > 0, signal })
        : { prompt: params.prompt, source: 'original' as const };
      mark('enhance_ms', t);
      if (params.enhancePrompt) ctx.log.info({ enhanceSource: enhanced.source, fallbackReason: (enhanced as { fallbackReason?: string }).fallbackReason }, 'prompt enhanced');

      t = performance.now();
      const result = await slot.queue.run(
        () =>
          slot.engine.generate(
            {
              requestId: ctx.requestId,
              model: params.model,
              prompt: enhanced.prompt,
              negativePrompt: params.negativePrompt,
              width: params.width,
              height: params.height,
              seed,
              referenceImages: references,
            },
            signal,
            ctx.onProgress,
          ),
        signal,
      );
      mark('engine_ms', t);
      let image = result.image;
      if (image.width !== params.width || image.height !== params.height || image.data.length !== params.width * params.height * 3) {
        throw new ApiError('backend_error', `engine ${slot.engine.id} returned ${image.width}x${image.height}, asked for ${params.width}x${params.height}`);
      }

      t = performance.now();
      if (params.watermark) {
        if (!deps.watermarker) throw new ApiError('engine_unavailable', 'watermarking is not available on this server');
        const generationId = generationIdOf([params.model, enhanced.prompt, params.negativePrompt, seed, params.width, params.height], references);
        image = deps.watermarker.embed(image, { issuerId: deps.watermarkIssuerId, generationId });
      }
      mark('watermark_ms', t);

      t = performance.now();
      const text: PngTextEntry[] = [
        { keyword: 'Software', text: deps.software },
        { keyword: 'Model', text: params.model },
        { keyword: 'Prompt', text: enhanced.prompt },
        ...(params.prompt !== enhanced.prompt ? [{ keyword: 'Original prompt', text: params.prompt }] : []),
        ...(params.negativePrompt ? [{ keyword: 'Negative prompt', text: params.negativePrompt }] : []),
        { keyword: 'Seed', text: String(seed) },
        { keyword: 'Size', text: `${params.width}x${params.height}` },
        { keyword: 'Engine', text: slot.engine.id },
        { keyword: 'Watermark', text: params.watermark ? 'invisible' : 'none' },
        { keyword: 'DigitalSourceType', text: TRAINED_ALGORITHMIC_MEDIA },
        { keyword: 'XML:com.adobe.xmp', text: aiGeneratedXmp(deps.software) },
      ];
      const png = await encodePng(image, text);
      mark('encode_ms', t);

      const createdMs = now();
      t = performance.now();
      let url: string | null = null;
      if (params.responseFormat === 'url') {
        const key = `generations/${createdMs}-${crypto.randomUUID()}.png`;
        await deps.blobs.put(key, png, 'image/png');
        url = `${deps.publicUrl()}/files/${key}`;
      }
      mark('store_ms', t);

      if (signal.aborted) rethrow(signal.reason);
      const usd = priceUsd;
      const credits = Math.round(usd * deps.creditsPerUsd * 1e6) / 1e6;
      t = performance.now();
      await deps.usage.record({
        keyId: ctx.keyId,
        requestId: ctx.requestId,
        model: params.model,
        width: params.width,
        height: params.height,
        seed,
        credits,
        usd,
        createdAtMs: createdMs,
      });
      mark('ledger_ms', t);

      return {
        createdMs,
        url,
        b64Json: params.responseFormat === 'b64_json' ? png.toString('base64') : null,
        seed,
        revisedPrompt: enhanced.prompt,
        width: params.width,
        height: params.height,
        credits,
        usd,
        timings,
      };
    } catch (err) {
      return rethrow(err);
    }
  };
}

export type GenerateImage = ReturnType<typeof createGenerateImage>;
