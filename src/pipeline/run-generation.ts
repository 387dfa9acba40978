/**
 * The run half of a generation: from a claimed job to the outcome the job store commits (the image
 * stored, the response body, the ledger entry). enhance → (engine → watermark → encode → store) × n.
 * Charging is not done here: the job store writes the ledger row in the same transaction that marks
 * the job succeeded, so a job that fails or is canceled at any point before leaves no row.
 */
import crypto from 'node:crypto';
import { ApiError } from '../domain/errors.ts';
import type { JobRecord, GenerationResponseBody } from '../domain/jobs.ts';
import type { BlobStore, PromptEnhancer, UsageEntry, Watermarker, WatermarkPayload } from '../domain/ports.ts';
import { chargeFor } from '../domain/money.ts';
import type { Engine, EngineProgress, RawImage } from '../domain/types.ts';
import type { EnhanceResult } from '../domain/ports.ts';
import { encodeOutput } from '../images/encode-output.ts';
import { decodeReference } from './reference-blobs.ts';
import { getBlobBuffer } from '../blobs/get-blob-buffer.ts';
import type { ContentCredentialsSigner, SignableMimeType } from '../provenance/index.ts';

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
  /** Base of returned image URLs (known once the server listens); the blob store's urlFor builds on it. */
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

/** Seeds are 0..2^31−1, as in the seed's schema. */
const MAX_SEED = 2147483647;

/** Image `index` of `count`: its steps continue the job's count, so progress runs once from 0 to the end. */
function progressOfImage(onProgress: RunContext['onProgress'], index: number, count: number): RunContext['onProgress'] {
  if (!onProgress || count === 1) return onProgress;
  return (p) => onProgress({ ...p, step: index * p.totalSteps + p.step, totalSteps: count * p.totalSteps });
}

/** What drawImage needs from the job's run: the inputs read once for all n images. */
interface ImageRun {
  index: number;
  count: number;
  engine: Engine;
  enhanced: Pick<EnhanceResult, 'prompt'>;
  references: RawImage[];
  createdMs: number;
  /** Adds a stage's time since `since` (summed over the images). */
  mark: (name: string, since: number) => void;
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
    const mark = (name: string, since: number) => (timings[name] = Math.round(((timings[name] ?? 0) + performance.now() - since) * 100) / 100);

    let t = performance.now();
    const references = await Promise.all(
      params.referenceKeys.map(async (key) => {
        const blob = await getBlobBuffer(deps.blobs, key);
        if (!blob) throw new ApiError('internal_error', `the job's stored reference image ${key} is missing`);
        return decodeReference(blob);
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

    const count = params.n ?? 1;
    const createdMs = now();
    const images: Array<Awaited<ReturnType<typeof drawImage>>> = [];
    for (let index = 0; index < count; index++) {
      images.push(await drawImage(job, ctx, { index, count, engine, enhanced, references, createdMs, mark }));
    }

    // One job, one ledger row: n images cost n times the price, charged in whole micro-USD (domain/money.ts).
    const { usd, credits } = chargeFor(priceUsd, count, deps.creditsPerUsd);
    return {
      result: { created: createdMs, data: images.map((i) => i.item), meta: { usage: { credits_used: credits, usd_spent: usd } } },
      outputKeys: images.flatMap((i) => i.outputKeys),
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
        // The ledger row keeps one mark: the first image's (n > 1 images carry seed + i, so their marks differ).
        watermark: images[0]?.markPayload ?? null,
      },
      timings,
      engineInfo: { ...(images.at(-1)?.engineInfo ?? {}), ...(count > 1 ? { images: count } : {}) },
    };
  };

  /** One of the job's n images, seed + index (wrapping inside the seed range): engine → watermark → encode → store. */
  async function drawImage(job: JobRecord, ctx: RunContext, run: ImageRun) {
    const params = job.params;
    const { signal } = ctx;
    const { engine, enhanced, references, createdMs, mark } = run;
    const seed = (params.seed + run.index) % (MAX_SEED + 1);
    let t = performance.now();
    const drawn = await engine.generate(
      {
        requestId: job.requestId,
        model: params.model,
        prompt: enhanced.prompt,
        negativePrompt: params.negativePrompt,
        width: params.width,
        height: params.height,
        seed,
        referenceImages: references,
        // enhance_prompt false promises the prompt is drawn as given; true lets the chosen engine adapt it.
        mayAdaptPrompt: params.enhancePrompt,
        ...(params.quality && params.quality !== 'auto' ? { quality: params.quality } : {}),
      },
      signal,
      progressOfImage(ctx.onProgress, run.index, run.count),
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
      const generationId = generationIdOf([params.model, drawnPrompt, params.negativePrompt, seed, params.width, params.height], references);
      markPayload = { issuerId: deps.watermarkIssuerId, generationId };
      image = deps.watermarker.embed(image, markPayload);
    }
    mark('watermark_ms', t);

    t = performance.now();
    const file = await encodeOutput(
      image,
      {
        software: deps.software,
        model: params.model,
        prompt: drawnPrompt,
        ...(params.prompt !== drawnPrompt ? { originalPrompt: params.prompt } : {}),
        negativePrompt: params.negativePrompt,
        seed,
        width: params.width,
        height: params.height,
        engine: engine.id,
        watermarked: params.watermark,
      },
      { format: params.outputFormat ?? 'png', compression: params.outputCompression },
    );
    mark('encode_ms', t);
    signal.throwIfAborted();

    if (deps.contentCredentials) {
      t = performance.now();
      const facts = { model: params.model, engine: String(drawn.info?.backend ?? engine.id), engineKind: drawn.info?.backendKind, prompt: params.prompt, drawnPrompt, createdAtMs: createdMs, watermark: markPayload };
      file.data = await deps.contentCredentials.sign(file.data, file.contentType as SignableMimeType, facts);
      mark('sign_ms', t);
    }

    t = performance.now();
    const outputKeys: string[] = [];
    let item: GenerationResponseBody['data'][number];
    if (params.responseFormat === 'url') {
      const key = `generations/${createdMs}-${crypto.randomUUID()}.${file.extension}`;
      await deps.blobs.put(key, file.data, file.contentType);
      outputKeys.push(key);
      item = { url: await deps.blobs.urlFor(key, deps.publicUrl()), seed, revised_prompt: drawnPrompt };
    } else {
      item = { b64_json: file.data.toString('base64'), seed, revised_prompt: drawnPrompt };
    }
    mark('store_ms', t);
    return { item, outputKeys, markPayload, engineInfo: drawn.info ?? {} };
  }
}

export type RunGeneration = ReturnType<typeof createRunGeneration>;
