/**
 * The OpenAI Images API as spoken by each Qwen-Image server. They agree on
 * POST /v1/images/generations (JSON) and /v1/images/edits (multipart) with `prompt`, `size`
 * ("WxH"), `n` and `data[].b64_json`; they differ on the rest:
 *
 * - vLLM-Omni (`vllm serve Qwen/Qwen-Image --omni`): JSON/form fields negative_prompt, seed,
 *   num_inference_steps, guidance_scale, true_cfg_scale; edits take `image` or `image[]`; only
 *   response_format b64_json; GET /health.
 * - SGLang diffusion (`sglang serve --model-path Qwen/Qwen-Image`): negative_prompt, seed; edits take
 *   `image` (repeated); response_format=url returns a relative /v1/images/<id>/content; GET /models.
 * - LocalAI: the negative prompt follows a `|` in the prompt; `seed` is read from the request; it has no
 *   /v1/images/edits: reference images go to /v1/images/generations as `ref_images`, a JSON array of
 *   base64 strings or URLs (core/http/endpoints/openai/image.go, processImageFile: plain standard
 *   base64, no data: prefix; docs/content/features/image-generation.md, "Flux kontext"); GET /readyz.
 * - stable-diffusion.cpp sd-server: extra parameters travel inside the prompt as
 *   <sd_cpp_extra_args>{json}</sd_cpp_extra_args>; edits take `image[]` (or `image`); GET /v1/models.
 */
/** The values each dialect field may take; the routing file's schema enums are these lists. */
export const OPENAI_EXTRA_FIELDS = ['negative_prompt', 'seed'] as const;
export const OPENAI_IMAGE_FIELDS = ['image', 'image[]'] as const;
export const OPENAI_PROMPT_EXTRAS = ['none', 'localai-pipe', 'sd-cpp-extra-args'] as const;
export const OPENAI_EDIT_TRANSPORTS = ['multipart', 'ref-images-json'] as const;
export const OPENAI_RESPONSE_FORMATS = ['b64_json', 'url', 'none'] as const;

export interface OpenaiDialect {
  extraFields: ReadonlyArray<(typeof OPENAI_EXTRA_FIELDS)[number]>;
  extraParams: Readonly<Record<string, string | number | boolean>>;
  imageField: (typeof OPENAI_IMAGE_FIELDS)[number];
  promptExtras: (typeof OPENAI_PROMPT_EXTRAS)[number];
  edits: boolean;
  /** How reference images travel: multipart to editsPath (OpenAI), or `ref_images` in the generations JSON (LocalAI). */
  editTransport: (typeof OPENAI_EDIT_TRANSPORTS)[number];
  responseFormat: (typeof OPENAI_RESPONSE_FORMATS)[number];
  generationsPath: string;
  editsPath: string;
  healthPath: string;
}

const BASE: OpenaiDialect = {
  extraFields: [],
  extraParams: {},
  imageField: 'image[]',
  promptExtras: 'none',
  edits: true,
  editTransport: 'multipart',
  responseFormat: 'b64_json',
  generationsPath: '/v1/images/generations',
  editsPath: '/v1/images/edits',
  healthPath: '/v1/models',
};

/**
 * The one list of dialects: the routing file's `flavor` values are its keys, in this order
 * (the validator's "must be one of" message lists them so).
 */
export const OPENAI_DIALECTS = {
  generic: BASE,
  'vllm-omni': { ...BASE, extraFields: ['negative_prompt', 'seed'], healthPath: '/health' },
  sglang: { ...BASE, extraFields: ['negative_prompt', 'seed'], imageField: 'image', healthPath: '/models' },
  localai: { ...BASE, extraFields: ['seed'], promptExtras: 'localai-pipe', editTransport: 'ref-images-json', healthPath: '/readyz' },
  'sd-server': { ...BASE, promptExtras: 'sd-cpp-extra-args' },
} satisfies Readonly<Record<string, OpenaiDialect>>;

export type OpenaiFlavor = keyof typeof OPENAI_DIALECTS;
export const OPENAI_FLAVORS = Object.keys(OPENAI_DIALECTS) as OpenaiFlavor[];

/** What a server of this dialect does with the request's negative prompt and seed (capabilities). */
export function dialectHonours(dialect: OpenaiDialect): { negativePrompt: boolean; seed: boolean } {
  return {
    negativePrompt: dialect.extraFields.includes('negative_prompt') || dialect.promptExtras !== 'none',
    seed: dialect.extraFields.includes('seed') || dialect.promptExtras === 'sd-cpp-extra-args',
  };
}

export interface PromptParts {
  prompt: string;
  negativePrompt: string;
  seed: number;
}

/** The `prompt` field, carrying negative prompt and seed for servers without fields for them. */
export function composePrompt(dialect: OpenaiDialect, parts: PromptParts): string {
  switch (dialect.promptExtras) {
    case 'localai-pipe':
      // LocalAI splits "positive|negative"; a literal '|' in the prompt would be misread, so drop it.
      return parts.negativePrompt ? `${parts.prompt.replace(/\|/g, ' ')}|${parts.negativePrompt.replace(/\|/g, ' ')}` : parts.prompt.replace(/\|/g, ' ');
    case 'sd-cpp-extra-args': {
      const extra: Record<string, unknown> = { seed: parts.seed };
      if (parts.negativePrompt) extra.negative_prompt = parts.negativePrompt;
      // sd-server removes the first <sd_cpp_extra_args>…</sd_cpp_extra_args> and parses it as JSON.
      const safe = parts.prompt.replace(/<\/?sd_cpp_extra_args>/g, '');
      return `${safe} <sd_cpp_extra_args>${JSON.stringify(extra)}</sd_cpp_extra_args>`;
    }
    default:
      return parts.prompt;
  }
}

/** Extra fields filled from the request, then the fixed ones from the config. */
export function extraFieldValues(dialect: OpenaiDialect, parts: PromptParts): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  if (dialect.extraFields.includes('negative_prompt') && parts.negativePrompt) out.negative_prompt = parts.negativePrompt;
  if (dialect.extraFields.includes('seed')) out.seed = parts.seed;
  return { ...out, ...dialect.extraParams };
}
