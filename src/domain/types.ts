/** Plain types shared by every room. Imports nothing outside src/domain/. */
import type { EngineCapabilities } from './engine-capabilities.ts';

export type { EngineCapabilities, SizeLimits } from './engine-capabilities.ts';

/** An 8-bit RGB image, row-major, 3 bytes per pixel, no padding. */
export interface RawImage {
  width: number;
  height: number;
  /** length = width * height * 3 */
  data: Uint8Array;
}

export interface ImageSize {
  width: number;
  height: number;
}

/** What the pipeline asks an engine to draw. Every field is already validated and normalised. */
export interface EngineRequest {
  requestId: string;
  /** Public model id, e.g. `alibaba/qwen-image-2-0`. */
  model: string;
  /** The prompt actually used (after enhancement, if any). */
  prompt: string;
  /** Empty string when the caller gave none. */
  negativePrompt: string;
  width: number;
  height: number;
  /** 0 .. 2147483647 */
  seed: number;
  /** 0 to 3 decoded reference images, in the caller's order (image_urls[0] is reference 1). */
  referenceImages: RawImage[];
  /**
   * The caller lets the engine reword `prompt` for its own model (enhance_prompt true): the builtin engine maps
   * words onto its small vocabulary. Absent or false: the prompt is drawn exactly as given. An engine that reworded
   * reports what it drew in EngineResult.drawnPrompt.
   */
  mayAdaptPrompt?: boolean;
  /**
   * OpenAI's quality as a share of the engine's own step count: low 40 %, medium 70 %, high (and
   * absent) 100 %. Engines without a step setting ignore it.
   */
  quality?: 'low' | 'medium' | 'high';
}

export interface EngineProgress {
  step: number;
  totalSteps: number;
  /**
   * What the image looks like at this step: a small intermediate picture for a live preview (for
   * example the denoiser's current estimate of the clean image, before super-resolution). Any
   * size and aspect close to the request's; the consumer scales it down before sending it on.
   * Absent when the engine has none for this step. An engine may report a step twice, the second
   * time only to add its preview.
   */
  preview?: RawImage;
}

export interface EngineResult {
  /** Exactly request.width × request.height. */
  image: RawImage;
  /** Free-form facts the engine wants in logs and metadata (steps, backend id, ...). */
  info?: Record<string, string | number | boolean>;
  /**
   * The prompt the engine drew with, when it differs from request.prompt (only with request.mayAdaptPrompt).
   * Absent: request.prompt was drawn as given. Becomes data[].revised_prompt and the PNG's Prompt.
   */
  drawnPrompt?: string;
}

export interface EngineHealth {
  ok: boolean;
  detail?: string;
}

/**
 * Every backend that can draw an image implements this: the builtin ONNX engine and the remote
 * GPU backends alike. `generate` must honour `signal` (stop work and reject with an AbortError-like
 * error when it fires) and must return an image of exactly the requested size.
 */
export interface Engine {
  /** Stable id used in configuration, logs and `GET /v1/models` (e.g. `builtin`, `comfyui-a`). */
  readonly id: string;
  /** Kind of backend: `builtin`, `comfyui`, `openai`, `dashscope`, `router`. */
  readonly kind: string;
  /** One line for humans: what this engine is and what it can draw. */
  readonly description: string;
  load(): Promise<void>;
  /**
   * What this engine can draw (engine-capabilities.ts), valid once load() resolved: the router
   * filters backends by it and GET /v1/models reports it. Callers read only what is declared here,
   * never other properties of an engine.
   */
  capabilities(): EngineCapabilities;
  health(): Promise<EngineHealth>;
  /**
   * Generations this engine can run at once right now (the router: the summed `concurrency` of the
   * backends it would use). The job runner starts at most this many; an engine without it gets the
   * ENGINE_CONCURRENCY setting. 0 means nothing is available: the runner then lets jobs through so
   * that they fail fast with the engine's own "unavailable" error instead of waiting unseen.
   */
  capacity?(): number;
  /**
   * With backends shared by several worker processes (Redis slots): how many more jobs this process may
   * start now without one waiting for a slot another process holds — the free shared slots of the
   * backends `capacity()` counts, less this process's `runningHere` jobs of the model that hold none yet.
   * Absent: capacity() alone decides.
   */
  sharedFreeSlots?(runningHere: number): Promise<number>;
  generate(
    request: EngineRequest,
    signal: AbortSignal,
    onProgress?: (progress: EngineProgress) => void,
  ): Promise<EngineResult>;
  close(): Promise<void>;
}
