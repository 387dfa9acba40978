/**
 * The run half of a generation: from a claimed job to the outcome the job store commits (the image
 * stored, the response body, the ledger entry). enhance → engine → watermark → encode → store.
 * Charging is not done here: the job store writes the ledger row in the same transaction that marks
 * the job succeeded, so a job that fails or is canceled at any point before leaves no row.
 */
import crypto from 'node:crypto';
import { ApiError } from '../domain/errors.ts';
import type { JobRecord, GenerationResponseBody } from '../domain/jobs.ts';
import type { BlobStore, PromptEnhancer, UsageEntry, Watermarker, WatermarkPayload } from '../domain/ports.ts';
import type { Engine, EngineProgress, RawImage } from '../domain/types.ts';
import { aiGeneratedXmp, encodePng, TRAINED_ALGORITHMIC_MEDIA, type PngTextEntry } from '../images/png.ts';
import { decodeReference } from './reference-blobs.ts';
import type { ContentCredentialsSigner } from '../provenance/index.ts';

export interface RunGenerationDeps {
  /** Public model id → the engine that draws it. */
  engines: Map<string, Engine>;
  blobs: BlobStore;
  enhancer: PromptEnhancer;
  watermarker: Watermarker | null;
  watermarkIssuerId: number;
  /** Signs a C2PA manifest into every image (C2PA_CERT / C2PA_KEY); null: images go out unsigned. */
  contentCredentials?: ContentCredentialsSigner | null;
  pricesUsd: Record<string, number>;
  creditsPerUsd: number;
  /** Base of returned image URLs (known once the server listens). */
  publicUrl: () => string;
  software: string;
  now?: () => number;
}

export interface RunContext {
  /** Fires on cancel, on the run's deadline, and at shutdown. */
  signal: AbortSignal;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  onProgress?: (p: EngineProgress) => void;
}

export interface RunOutcome {
  result: GenerationResponseBody;
  outputKeys: string[];
  usage: UsageEntry;
  timings: Record<string, number>;
  engineInfo: Record<string, string | number | boolean>;
}

/** 32 bits identifying a generation by its parameters, so the same request carries the same mark. */
function generationIdOf(parts: Array<string | number>, refs: RawImage[]): number {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(String(p)).update('\0');
  for (const r of refs) h.update(`${r.width}x${r.height}`).update(r.data);
  return h.digest().readUInt32BE(0);
}

export function createRunGeneration(deps: RunGenerationDeps) {
  const now = deps.now ?? Date.now;

  return async function runGeneration(job: JobRecord, ctx: RunContext): Promise<RunOutcome> {
    const params = job.params;
    const engine = deps.engines.get(params.model);
    if (!engine) throw new ApiError('model_not_found', `model "${params.model}" is not served here`, { param: 'model' });
    const priceUsd = deps.pricesUsd[params.model];
    if (priceUsd === undefined) throw new ApiError('model_not_found', `model "${params.model}" has no price configured`, { param: 'model' });
    const { signal } = ctx;
    const timings: Record<string, number> = {};
    const mark = (name: string, since: number) => (timings[name] = Math.round((performance.now() - since) * 100) / 100);

    let t = performance.now();
    const references = await Promise.all(
      params.referenceKeys.map(async (key) => {
        const blob = await deps.blobs.get(key);
        if (!blob) throw new ApiError('internal_error', `the job's stored reference image ${key} is missing`);
        return decodeReference(blob.data);
      }),
    );
    mark('inputs_ms', t);

    t = performance.now();
    const enhanced = params.enhancePrompt
      ? await deps.enhancer.enhance({ requestId: job.requestId, model: params.model, prompt: params.prompt, seed: params.seed, isEdit: references.length > 0, signal })
      : { prompt: params.prompt, source: 'original' as const };
    mark('enhance_ms', t);
    if (params.enhancePrompt) ctx.log.info({ enhanceSource: enhanced.source, fallbackReason: (enhanced as { fallbackReason?: string }).fallbackReason }, 'prompt enhanced');
    signal.throwIfAborted();

    t = performance.now();
    const drawn = await engine.generate(
      {
        requestId: job.requestId,
        model: params.model,
        prompt: enhanced.prompt,
        negativePrompt: params.negativePrompt,
        width: params.width,
        height: params.height,
        seed: params.seed,
        referenceImages: references,
        // enhance_prompt false promises the prompt is drawn as given; true lets the chosen engine adapt it.
        mayAdaptPrompt: params.enhancePrompt,
      },
      signal,
      ctx.onProgress,
    );
    mark('engine_ms', t);
    // What the engine drew with: the enhanced prompt, or the builtin engine's rewording of it into its vocabulary.
    const drawnPrompt = drawn.drawnPrompt ?? enhanced.prompt;
    let image = drawn.image;
    if (image.width !== params.width || image.height !== params.height || image.data.length !== params.width * params.height * 3) {
      throw new ApiError('backend_error', `engine ${engine.id} returned ${image.width}x${image.height}, asked for ${params.width}x${params.height}`);
    }
    signal.throwIfAborted();

    t = performance.now();
    let markPayload: WatermarkPayload | null = null;
    if (params.watermark) {
      if (!deps.watermarker) throw new ApiError('engine_unavailable', 'watermarking is not available on this server');
      const generationId = generationIdOf([params.model, drawnPrompt, params.negativePrompt, params.seed, params.width, params.height], references);
      markPayload = { issuerId: deps.watermarkIssuerId, generationId };
      image = deps.watermarker.embed(image, markPayload);
    }
    mark('watermark_ms', t);

    t = performance.now();
    const text: PngTextEntry[] = [
      { keyword: 'Software', text: deps.software },
      { keyword: 'Model', text: params.model },
      { keyword: 'Prompt', text: drawnPrompt },
      ...(params.prompt !== drawnPrompt ? [{ keyword: 'Original prompt', text: params.prompt }] : []),
      ...(params.negativePrompt ? [{ keyword: 'Negative prompt', text: params.negativePrompt }] : []),
      { keyword: 'Seed', text: String(params.seed) },
      { keyword: 'Size', text: `${params.width}x${params.height}` },
      { keyword: 'Engine', text: engine.id },
      { keyword: 'Watermark', text: params.watermark ? 'invisible' : 'none' },
      { keyword: 'DigitalSourceType', text: TRAINED_ALGORITHMIC_MEDIA },
      { keyword: 'XML:com.adobe.xmp', text: aiGeneratedXmp(deps.software) },
    ];
    const encoded = await encodePng(image, text);
    mark('encode_ms', t);
    signal.throwIfAborted();

    const createdMs = now();
    t = performance.now();
    const png = deps.contentCredentials
      ? await deps.contentCredentials.sign(encoded, 'image/png', { model: params.model, engine: String(drawn.info?.backend ?? engine.id), engineKind: drawn.info?.backendKind, prompt: params.prompt, drawnPrompt, createdAtMs: createdMs, watermark: markPayload })
      : encoded;
    if (deps.contentCredentials) mark('sign_ms', t);
    t = performance.now();
    const outputKeys: string[] = [];
    let item: GenerationResponseBody['data'][number];
    if (params.responseFormat === 'url') {
      const key = `generations/${createdMs}-${crypto.randomUUID()}.png`;
      await deps.blobs.put(key, png, 'image/png');
      outputKeys.push(key);
      item = { url: `${deps.publicUrl()}/files/${key}`, seed: params.seed, revised_prompt: drawnPrompt };
    } else {
      item = { b64_json: png.toString('base64'), seed: params.seed, revised_prompt: drawnPrompt };
    }
    mark('store_ms', t);

    const usd = priceUsd;
    const credits = Math.round(usd * deps.creditsPerUsd * 1e6) / 1e6;
    return {
      result: { created: createdMs, data: [item], meta: { usage: { credits_used: credits, usd_spent: usd } } },
      outputKeys,
      usage: {
        keyId: job.keyId,
        requestId: job.requestId,
        model: params.model,
        width: params.width,
        height: params.height,
        seed: params.seed,
        credits,
        usd,
        createdAtMs: createdMs,
        watermark: markPayload,
      },
      timings,
      engineInfo: drawn.info ?? {},
    };
  };
}

export type RunGeneration = ReturnType<typeof createRunGeneration>;
