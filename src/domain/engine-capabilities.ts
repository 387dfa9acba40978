/**
 * What an engine can draw, declared by the engine itself (Engine.capabilities()), never probed.
 * The router filters its backends by the hard limits (reference images, sizes) and notes the soft
 * ones (negative prompt, seed) on the result; GET /v1/models reports all of them per backend.
 * Imports nothing: plain data, safe to serialise.
 */

export interface SizeLimits {
  /** Smallest width or height in pixels the engine draws. */
  minSidePx: number;
  /** Largest width or height in pixels. */
  maxSidePx: number;
  /** Width and height must be multiples of this (1: any size). */
  stepPx: number;
  /** Largest width × height; 0: only the side limits apply. */
  maxPixels: number;
}

export interface EngineCapabilities {
  /** Reference images one request may carry; 0: text-to-image only. */
  maxReferenceImages: number;
  sizes: SizeLimits;
  /** The negative prompt changes the image (false: it is accepted and ignored, e.g. a CFG-1 workflow). */
  negativePrompt: boolean;
  /** The request's seed reaches the sampler, so the same seed gives the same image. */
  seed: boolean;
  /** Reports steps through onProgress while drawing. */
  progress: boolean;
  /** Progress events carry intermediate pictures (EngineProgress.preview). */
  previews: boolean;
  /** Takes an inpainting mask. No request carries one yet (the API refuses `mask`), so this is informational. */
  masks: boolean;
  /** Rewords the prompt for its own model when the request allows it (EngineRequest.mayAdaptPrompt). */
  promptAdaptation: boolean;
}

/**
 * Any size the API accepts (contracts: 512..1440 in multiples of 32) fits these. Engines that draw
 * any size (the builtin engine resizes its output with lanczos) declare them.
 */
export const ANY_SIZE: SizeLimits = { minSidePx: 1, maxSidePx: 16_384, stepPx: 1, maxPixels: 0 };

/** Why `size` does not fit `limits`, or undefined when it does. Units: pixels. */
export function sizeProblem(limits: SizeLimits, width: number, height: number): string | undefined {
  for (const [name, side] of [['width', width], ['height', height]] as const) {
    if (side < limits.minSidePx) return `${name} ${side} is below its minimum ${limits.minSidePx}`;
    if (side > limits.maxSidePx) return `${name} ${side} is above its maximum ${limits.maxSidePx}`;
    if (side % limits.stepPx !== 0) return `${name} ${side} is not a multiple of ${limits.stepPx}`;
  }
  if (limits.maxPixels > 0 && width * height > limits.maxPixels) {
    return `${width}×${height} is more than its ${limits.maxPixels} pixels`;
  }
  return undefined;
}

/** Operator caps from the routing file, applied over what the engine declares (they only lower). */
export interface CapabilityCaps {
  maxReferenceImages?: number;
  maxSidePx?: number;
  maxPixels?: number;
}

export function capCapabilities(declared: EngineCapabilities, caps: CapabilityCaps): EngineCapabilities {
  const lower = (own: number, cap: number | undefined): number => (cap === undefined ? own : Math.min(own, cap));
  const lowerPixels = (own: number, cap: number | undefined): number =>
    cap === undefined ? own : own === 0 ? cap : Math.min(own, cap);
  return {
    ...declared,
    maxReferenceImages: lower(declared.maxReferenceImages, caps.maxReferenceImages),
    sizes: {
      ...declared.sizes,
      maxSidePx: lower(declared.sizes.maxSidePx, caps.maxSidePx),
      maxPixels: lowerPixels(declared.sizes.maxPixels, caps.maxPixels),
    },
  };
}
