/**
 * Validation of POST /v1/images/generations bodies against the one JSON Schema file
 * (generation-request.schema.json), with messages that name the field and the rule.
 * Ajv runs without type coercion: "maybe" is not a boolean and 1.5 is not a seed.
 */
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { createRequire } from 'node:module';
import { ApiError } from '../domain/errors.ts';
import { DEFAULT_IMAGE_SIZE, IMAGE_SIZE_PRESETS, type ImageSizePreset } from './sizes.ts';
import type { JobWebhook, WebhookEvent } from '../domain/jobs.ts';

const require = createRequire(import.meta.url);
export const generationRequestSchema = require('./generation-request.schema.json') as Record<string, unknown>;
export const generationResponseSchema = require('./generation-response.schema.json') as Record<string, unknown>;

// ajv-formats is CommonJS; its default export arrives wrapped under tsx/NodeNext.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

export type OutputFormat = 'png' | 'jpeg' | 'webp';
/** OpenAI's quality, with DALL-E's standard/hd folded into medium/high. */
export type Quality = 'auto' | 'low' | 'medium' | 'high';

export interface GenerationParams {
  model: string;
  prompt: string;
  imageUrls: string[];
  /** Reference images uploaded as files (POST /v1/images/edits), in order; [] on the JSON endpoint. */
  imageFiles: Buffer[];
  width: number;
  height: number;
  /** The preset name when one was given, else null. */
  sizePreset: ImageSizePreset | null;
  enhancePrompt: boolean;
  negativePrompt: string;
  /** null: the server picks a random seed. */
  seed: number | null;
  watermark: boolean;
  responseFormat: 'url' | 'b64_json';
  /** Images to draw, 1..maxImagesPerRequest; image i uses seed + i. */
  n: number;
  outputFormat: OutputFormat;
  /** 0..100 (jpeg/webp quality, OpenAI's scale); null: the default (100). */
  outputCompression: number | null;
  quality: Quality;
  /** stream: true answers Server-Sent Events with this many partial images first (0..3). */
  stream: boolean;
  partialImages: number;
  user: string | null;
  /** Extension: where to announce the job's end; null: the key's default, if any. */
  webhook: JobWebhook | null;
}

export interface ValidateOptions {
  /** Which endpoint the body came to: edits default to b64_json and take their images as files. */
  endpoint?: 'generations' | 'edits';
}

export type ValidateFn = (body: unknown, options?: ValidateOptions) => GenerationParams;

export interface ValidatorOptions {
  /** Largest n (MAX_IMAGES_PER_REQUEST). */
  maxImagesPerRequest?: number;
}

/** The limits of image_size, which `size` shares. */
const SIDE_MIN_PX = 512;
const SIDE_MAX_PX = 1440;
const SIDE_STEP_PX = 32;
const SIZE_RULE = `"auto" or "WxH" with W and H from ${SIDE_MIN_PX} to ${SIDE_MAX_PX} in multiples of ${SIDE_STEP_PX} (e.g. "1024x1024", "1024x768", "768x1344")`;

/** OpenAI's `size`: "WxH" or "auto" (the default preset); null when it breaks the rule. */
export function parseSize(size: string): { width: number; height: number } | null {
  if (size === 'auto') return IMAGE_SIZE_PRESETS[DEFAULT_IMAGE_SIZE];
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  if (!m) return null;
  const [width, height] = [Number(m[1]), Number(m[2])];
  const ok = (v: number) => v >= SIDE_MIN_PX && v <= SIDE_MAX_PX && v % SIDE_STEP_PX === 0;
  return ok(width) && ok(height) ? { width, height } : null;
}

const QUALITY_ALIASES: Record<string, Quality> = { auto: 'auto', low: 'low', medium: 'medium', high: 'high', standard: 'medium', hd: 'high' };

const PRESET_NAMES = Object.keys(IMAGE_SIZE_PRESETS).join(', ');

function fieldName(instancePath: string): string {
  // "/image_urls/1" → "image_urls[1]", "/image_size/width" → "image_size.width"
  return instancePath
    .split('/')
    .slice(1)
    .map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function messageFor(err: ErrorObject, data: unknown): { param: string; message: string; code: 'invalid_value' | 'missing_field' | 'unknown_field' } {
  const base = fieldName(err.instancePath);
  const at = (p: string) => p || 'body';
  const value = err.instancePath
    .split('/')
    .slice(1)
    .reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), data);
  switch (err.keyword) {
    case 'required': {
      const missing = (err.params as { missingProperty: string }).missingProperty;
      const param = base ? `${base}.${missing}` : missing;
      return { param, code: 'missing_field', message: `${param} is required` };
    }
    case 'additionalProperties': {
      const extra = (err.params as { additionalProperty: string }).additionalProperty;
      const param = base ? `${base}.${extra}` : extra;
      return { param, code: 'unknown_field', message: `${param} is not a recognised field${base ? ` of ${base}` : ''}` };
    }
    case 'type': {
      const want = (err.params as { type: string }).type;
      const article = /^[aeiou]/.test(want) ? 'an' : 'a';
      return { param: at(base), code: 'invalid_value', message: `${at(base)} must be ${article} ${want}, got ${describe(value)}` };
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
      return { param: base, code: 'invalid_value', message: `${base} must be one of ${allowed}, got ${describe(value)}` };
    }
    case 'maxLength':
    case 'minLength': {
      const limit = (err.params as { limit: number }).limit;
      // Code points, as Ajv counts them (its ucs2length): value.length would count an emoji twice.
      const len = typeof value === 'string' ? [...value].length : 0;
      const rule = err.keyword === 'maxLength' ? `at most ${limit}` : `at least ${limit}`;
      return { param: base, code: 'invalid_value', message: `${base} must be ${rule} characters long, got ${len}` };
    }
    case 'minItems':
    case 'maxItems': {
      const limit = (err.params as { limit: number }).limit;
      const len = Array.isArray(value) ? value.length : 0;
      const rule = err.keyword === 'maxItems' ? `at most ${limit}` : `at least ${limit}`;
      return { param: base, code: 'invalid_value', message: `${base} must have ${rule} item${limit === 1 ? '' : 's'}, got ${len}` };
    }
    case 'minimum':
    case 'maximum': {
      const limit = (err.params as { limit: number }).limit;
      const rule = err.keyword === 'maximum' ? `at most ${limit}` : `at least ${limit}`;
      return { param: base, code: 'invalid_value', message: `${base} must be ${rule}, got ${describe(value)}` };
    }
    case 'multipleOf': {
      const m = (err.params as { multipleOf: number }).multipleOf;
      return { param: base, code: 'invalid_value', message: `${base} must be a multiple of ${m}, got ${describe(value)}` };
    }
    case 'uniqueItems':
      return { param: base, code: 'invalid_value', message: `${base} must not list an item twice` };
    case 'format':
      return { param: base, code: 'invalid_value', message: `${base} must be an http(s) URL or a data: URI, got ${describe(value)}` };
    default:
      return { param: at(base), code: 'invalid_value', message: `${at(base)} ${err.message ?? 'is invalid'}` };
  }
}

/** Picks the error to report: for `image_size` (anyOf), the branch that matches the value's type. */
function pickError(errors: ErrorObject[], data: unknown): ErrorObject {
  const sizeValue = data !== null && typeof data === 'object' ? (data as Record<string, unknown>).image_size : undefined;
  const anyOf = errors.find((e) => e.keyword === 'anyOf' && e.instancePath === '/image_size');
  if (anyOf) {
    const branch = typeof sizeValue === 'string' ? '/anyOf/1' : sizeValue !== null && typeof sizeValue === 'object' && !Array.isArray(sizeValue) ? '/anyOf/0' : null;
    if (branch === null) {
      return { ...anyOf, keyword: 'imageSize', message: `must be one of ${PRESET_NAMES} or an object {width, height}, got ${describe(sizeValue)}` };
    }
    const inBranch = errors.find((e) => e.schemaPath.includes(`/image_size${branch}`) && !(e.keyword === 'type' && e.instancePath === '/image_size'));
    if (inBranch) return inBranch;
  }
  return errors.find((e) => e.keyword !== 'anyOf') ?? errors[0]!;
}

/**
 * An http(s) URL or a data: URI. Checked by hand, not with ajv-formats' `uri`: its regular expression
 * overflows V8's stack on a data: URI of a few MiB (the documented limits allow 20 MB images), and
 * the fetcher checks the rest (scheme, host, the payload's base64) with a precise message.
 */
function isImageUrl(value: string): boolean {
  if (/^data:/i.test(value)) return /^data:[^,]{0,200},/i.test(value.slice(0, 210));
  if (!/^https?:\/\//i.test(value) || value.length > 8192) return false;
  try {
    return new URL(value).hostname !== '';
  } catch {
    return false;
  }
}

function invalid(param: string, message: string): ApiError {
  return new ApiError('invalid_value', message, { param });
}

export function createGenerationValidator(validatorOptions: ValidatorOptions = {}): ValidateFn {
  const maxN = validatorOptions.maxImagesPerRequest ?? 4;
  const ajv = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: false, strict: true, strictTypes: false });
  addFormats(ajv);
  ajv.addFormat('image-url', { type: 'string', validate: isImageUrl });
  const check = ajv.compile(generationRequestSchema);

  return (body: unknown, options: ValidateOptions = {}): GenerationParams => {
    const endpoint = options.endpoint ?? 'generations';
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError('invalid_value', `request body must be a JSON object, got ${describe(body)}`, { param: null });
    }
    if (endpoint === 'edits' && (body as Record<string, unknown>).image_urls !== undefined) {
      throw invalid('image_urls', 'image_urls is not taken by /v1/images/edits: send the images as files in image (one) or image[] (up to 3)');
    }
    if (!check(body)) {
      const err = pickError(check.errors ?? [], body);
      const { param, message, code } = messageFor(err, body);
      throw new ApiError(code, message, { param });
    }
    const b = body as Record<string, unknown>;
    const imageUrls = (b.image_urls as string[] | undefined) ?? [];
    imageUrls.forEach((url, i) => {
      if (!/^https?:\/\//i.test(url) && !/^data:/i.test(url)) {
        throw new ApiError('invalid_value', `image_urls[${i}] must be an http(s) URL or a data: URI, got a ${url.split(':')[0]}: URL`, { param: `image_urls[${i}]` });
      }
    });
    if (b.size !== undefined && b.image_size !== undefined) {
      throw invalid('size', 'size and image_size give the same thing: send one of them, not both');
    }
    let dims: { width: number; height: number };
    let preset: ImageSizePreset | null = null;
    if (b.size !== undefined) {
      const parsed = parseSize(b.size as string);
      if (!parsed) throw invalid('size', `size must be ${SIZE_RULE}, got ${describe(b.size)}`);
      dims = parsed;
      if (b.size === 'auto') preset = DEFAULT_IMAGE_SIZE;
    } else {
      const size = b.image_size ?? DEFAULT_IMAGE_SIZE;
      preset = typeof size === 'string' ? (size as ImageSizePreset) : null;
      dims = preset ? IMAGE_SIZE_PRESETS[preset] : (size as { width: number; height: number });
    }
    const n = (b.n as number | undefined) ?? 1;
    if (n > maxN) throw invalid('n', `n must be at most ${maxN} on this server (MAX_IMAGES_PER_REQUEST), got ${n}`);
    const outputFormat = (b.output_format as OutputFormat | undefined) ?? 'png';
    if (b.output_compression !== undefined && outputFormat === 'png') {
      throw invalid('output_compression', 'output_compression applies to output_format jpeg or webp; png is lossless');
    }
    if (b.background === 'transparent') {
      throw invalid('background', 'background "transparent" is not supported: the engines here draw opaque images; use "auto" or "opaque"');
    }
    const stream = (b.stream as boolean | undefined) ?? false;
    if (b.partial_images !== undefined && !stream) {
      throw invalid('partial_images', 'partial_images needs stream: true (partial images are sent as Server-Sent Events)');
    }
    if (stream && b.response_format === 'url') {
      throw invalid('response_format', 'a stream sends its images inline (b64_json); response_format "url" cannot be streamed');
    }
    const responseFormat = stream ? 'b64_json' : ((b.response_format as 'url' | 'b64_json' | undefined) ?? (endpoint === 'edits' ? 'b64_json' : 'url'));
    return {
      model: b.model as string,
      prompt: b.prompt as string,
      imageUrls,
      imageFiles: [],
      width: dims.width,
      height: dims.height,
      sizePreset: preset,
      enhancePrompt: (b.enhance_prompt as boolean | undefined) ?? true,
      negativePrompt: (b.negative_prompt as string | undefined) ?? '',
      seed: (b.seed as number | undefined) ?? null,
      watermark: (b.watermark as boolean | undefined) ?? false,
      responseFormat,
      n,
      outputFormat,
      outputCompression: (b.output_compression as number | undefined) ?? null,
      quality: QUALITY_ALIASES[(b.quality as string | undefined) ?? 'auto']!,
      stream,
      partialImages: (b.partial_images as number | undefined) ?? 0,
      user: (b.user as string | undefined) ?? null,
      webhook: b.webhook
        ? { url: (b.webhook as { url: string }).url, events: (b.webhook as { events?: WebhookEvent[] }).events ?? ['completed'] }
        : null,
    };
  };
}
