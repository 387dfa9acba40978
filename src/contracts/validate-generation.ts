/**
 * Validation of POST /v1/images/generations bodies against the one JSON Schema file
 * (generation-request.schema.json), with messages that name the field and the rule.
 * Ajv runs without type coercion: "maybe" is not a boolean and 1.5 is not a seed.
 */
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { createRequire } from 'node:module';
import { ApiError } from '../domain/errors.ts';
import { IMAGE_SIZE_PRESETS, type ImageSizePreset } from './sizes.ts';
import type { JobWebhook, WebhookEvent } from '../domain/jobs.ts';

const require = createRequire(import.meta.url);
export const generationRequestSchema = require('./generation-request.schema.json') as Record<string, unknown>;
export const generationResponseSchema = require('./generation-response.schema.json') as Record<string, unknown>;

// ajv-formats is CommonJS; its default export arrives wrapped under tsx/NodeNext.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

export interface GenerationParams {
  model: string;
  prompt: string;
  imageUrls: string[];
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
  user: string | null;
  /** Extension: where to announce the job's end; null: the key's default, if any. */
  webhook: JobWebhook | null;
}

export type ValidateFn = (body: unknown) => GenerationParams;

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

export function createGenerationValidator(): ValidateFn {
  const ajv = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: false, strict: true, strictTypes: false });
  addFormats(ajv);
  ajv.addFormat('image-url', { type: 'string', validate: isImageUrl });
  const check = ajv.compile(generationRequestSchema);

  return (body: unknown): GenerationParams => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError('invalid_value', `request body must be a JSON object, got ${describe(body)}`, { param: null });
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
    const size = b.image_size ?? 'landscape_4_3';
    const preset = typeof size === 'string' ? (size as ImageSizePreset) : null;
    const dims = preset ? IMAGE_SIZE_PRESETS[preset] : (size as { width: number; height: number });
    return {
      model: b.model as string,
      prompt: b.prompt as string,
      imageUrls,
      width: dims.width,
      height: dims.height,
      sizePreset: preset,
      enhancePrompt: (b.enhance_prompt as boolean | undefined) ?? true,
      negativePrompt: (b.negative_prompt as string | undefined) ?? '',
      seed: (b.seed as number | undefined) ?? null,
      watermark: (b.watermark as boolean | undefined) ?? false,
      responseFormat: (b.response_format as 'url' | 'b64_json' | undefined) ?? 'url',
      user: (b.user as string | undefined) ?? null,
      webhook: b.webhook
        ? { url: (b.webhook as { url: string }).url, events: (b.webhook as { events?: WebhookEvent[] }).events ?? ['completed'] }
        : null,
    };
  };
}
