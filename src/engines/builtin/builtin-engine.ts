/**
 * The builtin engine: the bundled Qwen-Image-style model (model/CONTRACT.md) run with ONNX Runtime on
 * the CPU under the TypeScript sampler. Text encoder → Euler steps of the MMDiT denoiser with guidance
 * (prompt, empty text and any negative prompt in one batch) → unpatchify → (manifest.upsampler.flatten) an
 * edge-preserving smoothing of the drawing → the learned edge-field upsampler drawn at the
 * exact requested size, its edges then put on smooth curves (manifest.upsampler.smooth, edge-field.ts); a model without one: learned super-resolution, then a resize (final-resize.ts).
 */
import * as ort from 'onnxruntime-node';
import path from 'node:path';
import sharp from 'sharp';
import { ANY_SIZE, type EngineCapabilities } from '../../domain/engine-capabilities.ts';
import type { Engine, EngineHealth, EngineProgress, EngineRequest, EngineResult, RawImage } from '../../domain/types.ts';
import { readManifest, type ModelManifest } from './manifest.ts';
import { createTokenizer } from './tokenizer.ts';
import { computeSigmas, eulerStep, guide, predictCleanSample } from './sampler.ts';
import { fillStandardNormal } from './prng.ts';
import { chooseGrid, patchifyRgb, planarToRgb, tokenPositions, unpatchifyToPlanar } from './patches.ts';
import { DEFAULT_FINAL_RESIZE, resizeFinal, type FinalResizeMethod } from './final-resize.ts';
import { FIELD_CHANNELS, flattenDrawing, renderEdgeField, SMOOTH_RADII, SMOOTH_TAPS, smoothInputImage, smoothInputs, smoothOutputImage, smoothPixels } from './edge-field.ts';
import { accumulatePull, editRegion, keepSource, measureSteps, pasteSource, regionTokens, resizeMask } from './edit-region.ts';

/** How the drawing becomes the requested size: the edge-field upsampler, or sr.onnx then a final resize. */
export type DecodeMethod = 'edge-field' | FinalResizeMethod;

export interface BuiltinEngineOptions {
  modelDir: string;
  /** ONNX Runtime intra-op threads. */
  threads: number;
  /** Overrides the manifest's step count (tests use fewer). */
  steps?: number;
  id?: string;
  /**
   * Rewords a prompt into words this model knows (main.ts: the bundled vocabulary's adapter from src/prompt).
   * Applied in `generate` only when the request allows it (EngineRequest.mayAdaptPrompt), so a remote engine
   * chosen instead gets the prompt unchanged. Absent: prompts are drawn as given.
   */
  adaptPrompt?: (prompt: string) => string;
  /**
   * The decode (DecodeMethod). Absent: 'edge-field' when the manifest ships an upsampler, else sr.onnx then
   * DEFAULT_FINAL_RESIZE.
   */
  decode?: DecodeMethod;
}

/**
 * Latent tokens → the low-res image sr.onnx takes: unpatchify, then clamp to [−1,1]
 * (model/CONTRACT.md, "Decode"). Shared by the final decode and the per-step previews so a
 * preview is exactly what super-resolution would be given.
 */
export function tokensToLowres(tokens: Float32Array, rows: number, cols: number, patch: number): Float32Array {
  const planar = unpatchifyToPlanar(tokens, rows, cols, patch);
  for (let i = 0; i < planar.length; i++) planar[i] = Math.max(-1, Math.min(1, planar[i]!));
  return planar;
}

/** OpenAI's quality as a share of the full step count (EngineRequest.quality); at least one step. */
const QUALITY_SHARE = { low: 0.4, medium: 0.7, high: 1 } as const;

export function stepsForQuality(fullSteps: number, quality: EngineRequest['quality']): number {
  return Math.max(1, Math.round(fullSteps * QUALITY_SHARE[quality ?? 'high']));
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return Object.assign(new Error('generation aborted'), { name: 'AbortError', cause: reason });
}

export class BuiltinEngine implements Engine {
  readonly id: string;
  readonly kind = 'builtin';
  readonly description: string;
  private manifest: ModelManifest | null = null;
  private textEncoder: ort.InferenceSession | null = null;
  private denoiser: ort.InferenceSession | null = null;
  private sr: ort.InferenceSession | null = null;
  private upsampler: ort.InferenceSession | null = null;
  /** smooth.onnx (manifest.upsampler.smooth), run on the drawn field. */
  private smoother: ort.InferenceSession | null = null;
  private sessionOptions: ort.InferenceSession.SessionOptions | null = null;
  private srLoading: Promise<ort.InferenceSession> | null = null;
  private tokenize: ReturnType<typeof createTokenizer> | null = null;

  constructor(private readonly options: BuiltinEngineOptions) {
    this.id = options.id ?? 'builtin';
    this.description =
      'Bundled qwen-image-mini (ONNX Runtime on CPU): a small Qwen-Image-style MMDiT trained by this project on procedural scenes. ' +
      'It draws only its vocabulary (see model/README.md); real Qwen-Image quality needs a GPU backend.';
  }

  async load(): Promise<void> {
    const dir = this.options.modelDir;
    this.manifest = readManifest(dir);
    const opts: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: this.options.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    };
    const up = this.manifest.upsampler;
    // sr.onnx is loaded only when the decode needs it (a model without an upsampler, or decode set to a resize);
    // otherwise on first use by decodeLowres(…, method), which bench/sharpness.ts calls for its comparison rows
    const needSr = !up || (this.options.decode !== undefined && this.options.decode !== 'edge-field');
    this.sessionOptions = opts;
    [this.textEncoder, this.denoiser, this.sr, this.upsampler, this.smoother] = await Promise.all([
      ort.InferenceSession.create(path.join(dir, 'text_encoder.onnx'), opts),
      ort.InferenceSession.create(path.join(dir, 'denoiser.onnx'), opts),
      needSr ? ort.InferenceSession.create(path.join(dir, 'sr.onnx'), opts) : null,
      up ? ort.InferenceSession.create(path.join(dir, up.file), opts) : null,
      up?.smooth ? ort.InferenceSession.create(path.join(dir, up.smooth.file), opts) : null,
    ]);
    if (this.options.decode === 'edge-field' && !this.upsampler) throw new Error(`the model in ${dir} ships no edge-field upsampler (manifest.upsampler)`);
    this.tokenize = createTokenizer(this.manifest.text.vocab, this.manifest.text.max_tokens);
  }

  /**
   * References are resized onto the latent grid and the output is resized to the exact request, so any
   * size; the negative prompt is its own guidance row; previews are the per-step clean estimate.
   */
  capabilities(): EngineCapabilities {
    return {
      maxReferenceImages: 3,
      sizes: { ...ANY_SIZE },
      negativePrompt: true,
      seed: true,
      progress: true,
      previews: true,
      masks: false,
      promptAdaptation: this.options.adaptPrompt !== undefined,
    };
  }

  async health(): Promise<EngineHealth> {
    return this.denoiser ? { ok: true } : { ok: false, detail: 'model not loaded' };
  }

  get modelInfo(): { name: string; version: string } | null {
    return this.manifest ? { name: this.manifest.name, version: this.manifest.version } : null;
  }

  /** text_states for the guidance rows (e.g. [prompt, empty, negative]) as one batch. */
  async encodeText(texts: string[]): Promise<{ states: ort.Tensor; mask: ort.Tensor }> {
    const m = this.manifest!;
    const T = m.text.max_tokens;
    const B = texts.length;
    const ids = new BigInt64Array(B * T);
    const mask = new Float32Array(B * T);
    texts.forEach((t, b) => {
      const tok = this.tokenize!(t);
      ids.set(tok.ids, b * T);
      mask.set(tok.mask, b * T);
    });
    const out = await this.textEncoder!.run({ input_ids: new ort.Tensor('int64', ids, [B, T]) });
    return { states: out.text_states!, mask: new ort.Tensor('float32', mask, [B, T]) };
  }

  private async referenceTokens(refs: RawImage[], rows: number, cols: number): Promise<Float32Array[]> {
    const P = this.manifest!.image.patch;
    return Promise.all(
      refs.map(async (ref) => {
        const { data, info } = await sharp(ref.data, { raw: { width: ref.width, height: ref.height, channels: 3 } })
          .resize(cols * P, rows * P, { fit: 'fill', kernel: 'lanczos3' })
          .raw()
          .toBuffer({ resolveWithObject: true });
        return patchifyRgb({ width: info.width, height: info.height, data }, rows, cols, P);
      }),
    );
  }

  /**
   * Runs the sampler and returns the final latent tokens [rows·cols, C] (before unpatchify), the
   * grid, and the step count. Exposed for the parity test against the Python sampler. With
   * `onProgress`, every step also carries a preview: the step's prediction of the clean image at
   * the denoiser's resolution (rows·P × cols·P), without super-resolution so it stays cheap.
   */
  async sampleTokens(
    request: Pick<EngineRequest, 'prompt' | 'negativePrompt' | 'width' | 'height' | 'seed' | 'referenceImages' | 'quality'>,
    signal: AbortSignal,
    onProgress?: (p: EngineProgress) => void,
    stepsOverride?: number,
  ): Promise<{ tokens: Float32Array; rows: number; cols: number; steps: number; region: Float32Array | null }> {
    if (!this.manifest || !this.denoiser) throw new Error('builtin engine used before load()');
    if (signal.aborted) throw abortError(signal);
    const m = this.manifest;
    const C = m.image.token_dim;
    const [rows, cols] = chooseGrid(request.width, request.height, m.image.grids);
    const N = rows * cols;
    const steps = stepsOverride ?? stepsForQuality(this.options.steps ?? m.sampler.steps, request.quality);
    const refs = request.referenceImages.slice(0, m.max_refs);

    // Guidance rows: the prompt, the empty text, and the negative prompt when there is one (model/CONTRACT.md).
    const texts = [request.prompt, ''];
    if (request.negativePrompt) texts.push(request.negativePrompt);
    const B = texts.length;
    const text = await this.encodeText(texts);

    // Reference tokens, repeated for every guidance row; one masked dummy token when there are none.
    const refTokens = await this.referenceTokens(refs, rows, cols);
    const M = refs.length > 0 ? refs.length * N : 1;
    const ref = new Float32Array(B * M * C);
    const refMask = new Float32Array(B * M);
    if (refs.length > 0) {
      for (let b = 0; b < B; b++) refTokens.forEach((tokens, k) => ref.set(tokens, b * M * C + k * N * C));
      refMask.fill(1);
    }
    const pos = tokenPositions(rows, cols, refs.length);

    const x = fillStandardNormal(new Float32Array(N * C), request.seed >>> 0);
    const sigmas = computeSigmas(steps, N, m.sampler);
    const batchImg = new Float32Array(B * N * C);
    const guided = new Float32Array(N * C);
    // Allocated only when someone listens: the sampler itself never needs x0.
    const cleanEstimate = onProgress ? new Float32Array(N * C) : null;
    const P = m.image.patch;
    const scale = m.sampler.true_cfg_scale;
    const negScale = m.sampler.negative_cfg_scale ?? scale;
    // Edits keep the rest (edit-region.ts): a single reference image, guidance on (as model/sampler.py decides it),
    // and the manifest asks for it.
    const guidanceOn = scale > 1 || Boolean(request.negativePrompt);
    const keep = refs.length === 1 && guidanceOn ? m.sampler.edit_keep : undefined;
    const measure = measureSteps(keep, steps);
    const pull = measure > 0 ? new Float32Array(rows * P * cols * P) : null;
    const eps = measure > 0 ? x.slice() : null;
    let region: Float32Array | null = null;
    let keepMask: Float32Array | null = null;
    const feeds: Record<string, ort.Tensor> = {
      text: text.states,
      text_mask: text.mask,
      ref: new ort.Tensor('float32', ref, [B, M, C]),
      ref_mask: new ort.Tensor('float32', refMask, [B, M]),
      pos: new ort.Tensor('float32', pos, [N + M, 3]),
    };

    for (let i = 0; i < steps; i++) {
      if (signal.aborted) throw abortError(signal);
      for (let b = 0; b < B; b++) batchImg.set(x, b * N * C);
      const sigma = sigmas[i]!;
      const out = await this.denoiser.run({
        ...feeds,
        img: new ort.Tensor('float32', batchImg, [B, N, C]),
        sigma: new ort.Tensor('float32', new Float32Array(B).fill(sigma), [B]),
      });
      const v = out.velocity!.data as Float32Array;
      const neg = B === 3 ? v.subarray(2 * N * C, 3 * N * C) : null;
      guide(v.subarray(0, N * C), v.subarray(N * C, 2 * N * C), neg, scale, negScale, C, guided);
      if (pull && i < measure) accumulatePull(pull, v.subarray(0, N * C), v.subarray(N * C, 2 * N * C), sigma, rows, cols, P);
      // x0 must be read from x before the Euler step overwrites it in place.
      if (cleanEstimate) predictCleanSample(x, guided, sigma, cleanEstimate);
      eulerStep(x, guided, sigma, sigmas[i + 1]!);
      if (pull && keep && i === measure - 1) {
        for (let k = 0; k < pull.length; k++) pull[k] = Math.fround(pull[k]! / measure);
        region = editRegion(pull, cols * P, rows * P, keep);
        if (region) keepMask = regionTokens(region, rows, cols, P);
      }
      if (keepMask && eps) keepSource(x, keepMask, refTokens[0]!, eps, sigmas[i + 1]!);
      if (onProgress && cleanEstimate) {
        const preview = planarToRgb(tokensToLowres(cleanEstimate, rows, cols, P), cols * P, rows * P);
        onProgress({ step: i + 1, totalSteps: steps, preview });
      }
    }
    return { tokens: x, rows, cols, steps, region };
  }

  async generate(request: EngineRequest, signal: AbortSignal, onProgress?: (p: EngineProgress) => void): Promise<EngineResult> {
    const adapt = request.mayAdaptPrompt ? this.options.adaptPrompt : undefined;
    const prompt = adapt ? adapt(request.prompt) : request.prompt;
    const { tokens: x, rows, cols, steps, region } = await this.sampleTokens({ ...request, prompt }, signal, onProgress);
    if (signal.aborted) throw abortError(signal);
    const m = this.manifest!;
    const P = m.image.patch;
    const h = rows * P;
    const w = cols * P;
    const planar = tokensToLowres(x, rows, cols, P);
    let image = await this.decodeLowres(planar, w, h, request.width, request.height);
    if (region && m.sampler.edit_keep?.paste !== false) {
      // outside the edit region the output is the source image itself, at the output size
      const ref = request.referenceImages[0]!;
      const { data } = await sharp(ref.data, { raw: { width: ref.width, height: ref.height, channels: 3 } })
        .resize(request.width, request.height, { fit: 'fill', kernel: 'lanczos3' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      const source: RawImage = { width: request.width, height: request.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
      image = pasteSource(image, source, resizeMask(region, w, h, request.width, request.height));
    }
    return {
      image,
      info: { steps, grid: `${rows}x${cols}`, model: `${m.name}@${m.version}` },
      ...(prompt !== request.prompt ? { drawnPrompt: prompt } : {}),
    };
  }

  /** The decode this engine uses (BuiltinEngineOptions.decode, else what the model ships). */
  get decodeMethod(): DecodeMethod {
    return this.options.decode ?? (this.upsampler ? 'edge-field' : DEFAULT_FINAL_RESIZE);
  }

  /**
   * Low-res planar [3,h,w] in [−1,1] → the requested size (model/CONTRACT.md, "Decode"): the edge-field upsampler
   * drawn at width × height, or SR ×S then a resize. Exposed for bench/sharpness.ts, which feeds it the renderer's
   * own scenes; `method` overrides the engine's decode.
   */
  async decodeLowres(planar: Float32Array, w: number, h: number, width: number, height: number, method?: DecodeMethod): Promise<RawImage> {
    if (!this.manifest || !this.denoiser) throw new Error('builtin engine used before load()');
    const how = method ?? this.decodeMethod;
    const lowres = new ort.Tensor('float32', planar, [1, 3, h, w]);
    if (how === 'edge-field') {
      const up = this.manifest.upsampler;
      if (!this.upsampler || !up) throw new Error('this model ships no edge-field upsampler');
      const drawing = up.flatten ? new ort.Tensor('float32', flattenDrawing(planar, w, h, up.flatten), [1, 3, h, w]) : lowres;
      const out = await this.upsampler.run({ lowres: drawing });
      const field = out.field!;
      const [, ch, gh, gw] = field.dims as number[];
      if (ch !== FIELD_CHANNELS || gh !== h * up.sub || gw !== w * up.sub) throw new Error(`upsampler returned a field of shape ${field.dims.join('×')}`);
      const drawn = renderEdgeField(field.data as Float32Array, gw, gh, width, height, up.ramp ?? 1, up.blend ?? 1);
      if (!up.smooth || !this.smoother) return drawn;
      // the staircase of cell-sized steps onto smooth curves (smooth.onnx, model/CONTRACT.md "Edge-field upsampler")
      const px = smoothPixels(up.smooth, gw, gh, width, height);
      const small = smoothInputs(up.smooth, px.sigma, px.radius);
      const x = smoothInputImage(drawn);
      const smoothed = await this.smoother.run({
        x: new ort.Tensor('float32', x.x, [1, 3, x.height, x.width]),
        taps: new ort.Tensor('float32', small.taps, [SMOOTH_TAPS]),
        rsel: new ort.Tensor('float32', small.rsel, [SMOOTH_RADII]),
        params: new ort.Tensor('float32', small.params, [3]),
      });
      return smoothOutputImage(smoothed.levels!.data as Float32Array, x.width, x.height, width, height);
    }
    const S = this.manifest.sr.scale;
    const sr = await (await this.srSession()).run({ lowres });
    const hi = planarToRgb(sr.highres!.data as Float32Array, w * S, h * S);
    return resizeFinal(hi, width, height, how);
  }

  /** sr.onnx, loaded on first use when load() did not need it. */
  private srSession(): Promise<ort.InferenceSession> {
    if (this.sr) return Promise.resolve(this.sr);
    this.srLoading ??= ort.InferenceSession.create(path.join(this.options.modelDir, 'sr.onnx'), this.sessionOptions ?? {}).then((session) => {
      this.sr = session;
      this.srLoading = null;
      return session;
    });
    return this.srLoading;
  }

  /** Whether sr.onnx is loaded (it is not, with an upsampler and the default decode, until a resize decode is asked for). */
  get srLoaded(): boolean {
    return this.sr !== null;
  }

  async close(): Promise<void> {
    const loading = this.srLoading;
    this.srLoading = null;
    await Promise.all([this.textEncoder?.release(), this.denoiser?.release(), this.sr?.release(), this.upsampler?.release(), this.smoother?.release(), loading?.then((s) => s.release())]);
    this.textEncoder = this.denoiser = this.sr = this.upsampler = this.smoother = null;
  }
}

export function createBuiltinEngine(options: BuiltinEngineOptions): BuiltinEngine {
  return new BuiltinEngine(options);
}
