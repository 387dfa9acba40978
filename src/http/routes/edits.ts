/**
 * POST /v1/images/edits — OpenAI's edit endpoint: multipart/form-data with the reference images as
 * files (`image` for one, repeated `image[]` for several, 1 to 3, in order: the first is reference
 * image 1) and every other field of /v1/images/generations as form fields. The images go through the
 * same decoding and limits as image_urls; the job, the answer (sync, async, stream) and the charge
 * are the JSON endpoint's.
 *
 * Form fields are strings: a field the schema types as boolean reads "true"/"false", an integer
 * reads as digits, and an object arrives flattened (`image_size[width]`, `webhook[events][]`), as
 * openai-node writes it. Anything else stays a string, so the schema's message names the field
 * (`enhance_prompt must be a boolean, got "yes"`). Without response_format an edit answers b64_json.
 */
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { ApiError } from '../../domain/errors.ts';
import { generationRequestSchema } from '../../contracts/validate-generation.ts';
import { answerGeneration, type GenerationRouteDeps } from './generations.ts';

export interface EditRouteDeps extends GenerationRouteDeps {
  /** Largest reference image (MAX_IMAGE_BYTES). */
  maxImageBytes: number;
}

const MAX_IMAGES = 3;
/** Form fields accepted at most (every schema field, flattened objects included, with room). */
const MAX_FIELDS = 64;
/** Longest form field value: the longest prompt (2000 code points, up to 4 UTF-8 bytes each) with room. */
const MAX_FIELD_BYTES = 16 * 1024;

type Schema = { type?: string; properties?: Record<string, Schema>; anyOf?: Schema[]; items?: Schema };

/** The JSON type the schema gives the value at `path` (for image_size, the object branch's). */
function typeAt(path: string[]): string | undefined {
  let schema: Schema | undefined = generationRequestSchema as Schema;
  for (const part of path) {
    if (!schema) return undefined;
    if (part === '') schema = schema.items;
    else {
      const next: Schema | undefined = schema.properties?.[part];
      schema = next?.anyOf ? next.anyOf.find((s) => s.type === 'object') ?? next : next;
    }
  }
  return schema?.type ?? (schema?.anyOf ? 'string' : undefined);
}

/** A form value in the type the schema wants, when it is written exactly that way; otherwise the string. */
function coerce(path: string[], value: string): unknown {
  const type = typeAt(path);
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  if (type === 'integer' && /^-?\d{1,16}$/.test(value)) return Number(value);
  return value;
}

/** `image_size[width]` → ['image_size', 'width']; `webhook[events][]` → ['webhook', 'events', '']. */
function splitName(name: string): string[] | null {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)((?:\[[A-Za-z0-9_]*\])*)$/.exec(name);
  if (!m) return null;
  return [m[1]!, ...[...m[2]!.matchAll(/\[([A-Za-z0-9_]*)\]/g)].map((x) => x[1]!)];
}

function setField(body: Record<string, unknown>, name: string, value: string): void {
  const path = splitName(name);
  if (!path) throw new ApiError('unknown_field', `${name} is not a recognised field`, { param: name });
  let node: Record<string, unknown> | unknown[] = body;
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    const last = i === path.length - 1;
    const container = node as Record<string, unknown> & unknown[];
    if (key === '') {
      if (!Array.isArray(node)) throw new ApiError('invalid_value', `${name} mixes a list with a single value`, { param: path[0]! });
      if (last) node.push(coerce(path.slice(0, i + 1), value));
      else throw new ApiError('invalid_value', `${name}: lists of objects are not taken as form fields`, { param: path[0]! });
      continue;
    }
    if (Array.isArray(node)) throw new ApiError('invalid_value', `${name} mixes a list with named keys`, { param: path[0]! });
    if (last) {
      if (container[key] !== undefined) throw new ApiError('invalid_value', `${name} is given twice`, { param: path.join('.') });
      container[key] = coerce(path, value);
    } else {
      const wantsList = path[i + 1] === '';
      const existing = container[key];
      if (existing === undefined) container[key] = wantsList ? [] : {};
      else if (typeof existing !== 'object' || existing === null || Array.isArray(existing) !== wantsList) {
        throw new ApiError('invalid_value', `${path.slice(0, i + 1).join('.')} is given both as a value and with [${path[i + 1]}]`, { param: path.slice(0, i + 1).join('.') });
      }
      node = container[key] as Record<string, unknown> | unknown[];
    }
  }
}

function multipartError(err: Error & { code?: string }, maxImageBytes: number): ApiError | null {
  switch (err.code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return new ApiError('image_too_large', `image is larger than the limit of ${maxImageBytes} bytes`, { param: 'image' });
    case 'FST_FILES_LIMIT':
      return new ApiError('invalid_value', `image must have at most ${MAX_IMAGES} files`, { param: 'image' });
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new ApiError('invalid_value', `the form has more than ${MAX_FIELDS} fields`, { param: null });
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new ApiError('unsupported_media_type', 'POST /v1/images/edits takes multipart/form-data', { param: null });
    default:
      return null;
  }
}

interface ParsedForm {
  fields: Record<string, unknown>;
  images: Buffer[];
}

async function readForm(request: FastifyRequest, maxImageBytes: number): Promise<ParsedForm> {
  const fields: Record<string, unknown> = {};
  const images: Buffer[] = [];
  try {
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        if (part.valueTruncated) throw new ApiError('invalid_value', `${part.fieldname} is longer than ${MAX_FIELD_BYTES} bytes`, { param: part.fieldname });
        setField(fields, part.fieldname, String(part.value));
        continue;
      }
      if (part.fieldname === 'mask') {
        await part.toBuffer();
        throw new ApiError('invalid_value', 'mask is not supported: no engine on this server does masked inpainting; describe the change in prompt instead', { param: 'mask' });
      }
      if (part.fieldname !== 'image' && part.fieldname !== 'image[]') {
        await part.toBuffer();
        throw new ApiError('unknown_field', `${part.fieldname} is not a recognised file field (the images go in image or image[])`, { param: part.fieldname });
      }
      images.push(await part.toBuffer());
    }
  } catch (err) {
    throw multipartError(err as Error & { code?: string }, maxImageBytes) ?? err;
  }
  return { fields, images };
}

export async function registerEditRoutes(app: FastifyInstance, deps: EditRouteDeps): Promise<void> {
  await app.register(async (scope) => {
    // One more file than allowed, so that a fourth image is reported as such rather than cut off.
    await scope.register(multipart, { limits: { files: MAX_IMAGES + 2, fileSize: deps.maxImageBytes, fields: MAX_FIELDS, fieldSize: MAX_FIELD_BYTES } });
    scope.post('/v1/images/edits', { preHandler: deps.authenticate }, async (request, reply) => {
      if (!request.isMultipart()) {
        throw new ApiError('unsupported_media_type', 'POST /v1/images/edits takes multipart/form-data: the images as files in image or image[], the other fields as form fields', { param: null });
      }
      const { fields, images } = await readForm(request, deps.maxImageBytes);
      if (images.length === 0) throw new ApiError('missing_field', 'image is required: send 1 to 3 image files in image (one) or image[] (several)', { param: 'image' });
      if (images.length > MAX_IMAGES) throw new ApiError('invalid_value', `image must have at most ${MAX_IMAGES} files, got ${images.length}`, { param: 'image' });
      const params = { ...deps.validateGeneration(fields, { endpoint: 'edits' }), imageFiles: images };
      // What an Idempotency-Key is compared against: the fields and the images' digests.
      const body = { ...fields, image: images.map((b) => crypto.createHash('sha256').update(b).digest('hex')) };
      return answerGeneration(deps, request, reply, params, body, 'image_edit');
    });
  });
}
