/**
 * A `type: openai` entry of the routing file (OpenAI-compatible image servers): its fields, their
 * JSON Schema, its defaults and the OpenaiEngine options it becomes. The allowed values come from
 * openai-dialect.ts, the one list of dialects. Documented in docs/backends/routing.md.
 */
import { requireEnv, type EngineConfig } from '../engine-module.ts';
import type { BackendCommonConfig } from '../router/config.ts';
import { ENV_NAME_PROPERTY, URL_PROPERTY } from '../router/config.ts';
import type { OpenaiEngineOptions } from './openai-engine.ts';
import {
  OPENAI_EDIT_TRANSPORTS,
  OPENAI_EXTRA_FIELDS,
  OPENAI_FLAVORS,
  OPENAI_IMAGE_FIELDS,
  OPENAI_PROMPT_EXTRAS,
  OPENAI_RESPONSE_FORMATS,
  type OpenaiDialect,
  type OpenaiFlavor,
} from './openai-dialect.ts';

export interface OpenaiBackendConfig extends BackendCommonConfig {
  type: 'openai';
  /** Server root, e.g. http://10.0.0.7:8000 (a trailing /v1 is accepted). */
  url: string;
  /** Sent as `model`; servers that host one model ignore it. */
  model?: string;
  /** Presets for the server's dialect; each field below overrides the preset. */
  flavor?: OpenaiFlavor;
  /** Request fields beyond OpenAI's that this server understands, filled from the request. */
  extraFields?: Array<OpenaiDialect['extraFields'][number]>;
  /** Fixed extra fields sent verbatim (num_inference_steps, true_cfg_scale, guidance_scale, ...). */
  extraParams?: Record<string, string | number | boolean>;
  /** Multipart field name for reference images in /v1/images/edits. */
  imageField?: OpenaiDialect['imageField'];
  /** How negative prompt and seed travel when the server has no JSON field for them. */
  promptExtras?: OpenaiDialect['promptExtras'];
  /** `false`: the server takes no reference images. */
  edits?: boolean;
  /** `multipart`: POST editsPath (OpenAI's /v1/images/edits); `ref-images-json`: `ref_images` in the generations JSON (LocalAI). */
  editTransport?: OpenaiDialect['editTransport'];
  /** `none`: do not send response_format (servers that reject it). */
  responseFormat?: OpenaiDialect['responseFormat'];
  generationsPath?: string;
  editsPath?: string;
  /** GET here must answer 2xx when the server is ready. */
  healthPath?: string;
  /** Name of the environment variable holding a bearer token, for hosted servers. */
  apiKeyEnv?: string;
}

export const openaiConfig: EngineConfig<OpenaiBackendConfig, OpenaiEngineOptions> = {
  type: 'openai',
  schema: {
    required: ['url'],
    properties: {
      url: URL_PROPERTY,
      model: { type: 'string', minLength: 1 },
      flavor: { enum: [...OPENAI_FLAVORS] },
      extraFields: { type: 'array', uniqueItems: true, items: { enum: [...OPENAI_EXTRA_FIELDS] } },
      extraParams: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
      imageField: { enum: [...OPENAI_IMAGE_FIELDS] },
      promptExtras: { enum: [...OPENAI_PROMPT_EXTRAS] },
      edits: { type: 'boolean' },
      editTransport: { enum: [...OPENAI_EDIT_TRANSPORTS] },
      responseFormat: { enum: [...OPENAI_RESPONSE_FORMATS] },
      generationsPath: { type: 'string', pattern: '^/' },
      editsPath: { type: 'string', pattern: '^/' },
      healthPath: { type: 'string', pattern: '^/' },
      apiKeyEnv: ENV_NAME_PROPERTY,
    },
  },
  /** One at a time, as on any single-GPU server; five minutes as for ComfyUI. */
  defaults: { concurrency: 1, timeoutMs: 300_000 },
  toOptions: (entry, context) => ({
    ...entry,
    apiKey: entry.apiKeyEnv ? requireEnv(entry.apiKeyEnv, entry.id, context.env) : undefined,
    logger: context.logger,
  }),
};
