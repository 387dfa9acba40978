/**
 * Where each public model's images are drawn: the backends file (`BACKENDS_CONFIG`, JSON or YAML).
 * main.ts reads the path from the environment and calls `loadBackendsConfig`; everything here is
 * a pure function of the file's text, validated once at start so a typo fails loudly before the
 * server listens. The format is documented in docs/backends/routing.md.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';

export const BACKEND_TYPES = ['builtin', 'comfyui', 'openai', 'dashscope'] as const;
export type BackendType = (typeof BACKEND_TYPES)[number];

/** Fields every backend accepts. Defaults: see BACKEND_DEFAULTS. */
export interface BackendCommonConfig {
  /** Unique across the whole file; used in logs, metrics and GET /v1/models. */
  id: string;
  type: BackendType;
  /** Lower is tried first; a higher tier is used only when every lower one is down or has failed. */
  priority?: number;
  /** Share of traffic among backends of equal priority. */
  weight?: number;
  /** Requests in flight on this backend at once; more wait for a slot. */
  concurrency?: number;
  /** Deadline for one generation on this backend; 0 disables it. */
  timeoutMs?: number;
  /**
   * Caps over what the engine declares (Engine.capabilities(); they can only lower it): reference
   * images this backend accepts (0: text-to-image only; default 3, the API's maximum), the largest
   * side and the largest width × height it is sent (e.g. a small GPU). The router skips a backend
   * whose capabilities a request does not fit.
   */
  maxReferenceImages?: number;
  maxSidePx?: number;
  maxPixels?: number;
}

export interface BuiltinBackendConfig extends BackendCommonConfig {
  type: 'builtin';
}

/** Where to write one value in an API-format ComfyUI workflow. */
export interface ComfyuiNodeBinding {
  node: string;
  input: string;
}

export interface ComfyuiWorkflowConfig {
  /** API-format workflow JSON ("Export (API)" in ComfyUI). Relative paths: from the config file. */
  file?: string;
  /** For workflows without {{placeholders}}: which node input receives which value. */
  nodes?: {
    prompt?: ComfyuiNodeBinding;
    negativePrompt?: ComfyuiNodeBinding;
    seed?: ComfyuiNodeBinding;
    width?: ComfyuiNodeBinding;
    height?: ComfyuiNodeBinding;
    /** LoadImage inputs for reference 1, 2, 3. */
    images?: ComfyuiNodeBinding[];
    /** Node id whose image output is the result (default: the first node that outputs images). */
    output?: string;
  };
}

/** The bundled workflow pairs (src/engines/comfyui/comfyui-engine.ts WORKFLOW_PRESETS). */
export const COMFYUI_WORKFLOW_PRESETS = ['qwen-image-2.1', 'qwen-image-2.1-turbo', 'qwen-image'] as const;
export type ComfyuiWorkflowPreset = (typeof COMFYUI_WORKFLOW_PRESETS)[number];

export interface ComfyuiBackendConfig extends BackendCommonConfig {
  type: 'comfyui';
  url: string;
  workflows?: {
    /** Bundled workflows used where no `file` is given. Default `qwen-image-2.1`. */
    preset?: ComfyuiWorkflowPreset;
    textToImage?: ComfyuiWorkflowConfig;
    /** `false`: this ComfyUI only does text-to-image. */
    edit?: ComfyuiWorkflowConfig | false;
  };
  /** Remove our finished prompts from ComfyUI's history (it keeps everything in memory). Default true. */
  deleteHistory?: boolean;
}

export const OPENAI_FLAVORS = ['generic', 'vllm-omni', 'sglang', 'localai', 'sd-server'] as const;
export type OpenaiFlavor = (typeof OPENAI_FLAVORS)[number];

export interface OpenaiBackendConfig extends BackendCommonConfig {
  type: 'openai';
  /** Server root, e.g. http://10.0.0.7:8000 (a trailing /v1 is accepted). */
  url: string;
  /** Sent as `model`; servers that host one model ignore it. */
  model?: string;
  /** Presets for the server's dialect; each field below overrides the preset. */
  flavor?: OpenaiFlavor;
  /** Request fields beyond OpenAI's that this server understands, filled from the request. */
  extraFields?: Array<'negative_prompt' | 'seed'>;
  /** Fixed extra fields sent verbatim (num_inference_steps, true_cfg_scale, guidance_scale, ...). */
  extraParams?: Record<string, string | number | boolean>;
  /** Multipart field name for reference images in /v1/images/edits. */
  imageField?: 'image' | 'image[]';
  /** How negative prompt and seed travel when the server has no JSON field for them. */
  promptExtras?: 'none' | 'localai-pipe' | 'sd-cpp-extra-args';
  /** `false`: the server takes no reference images. */
  edits?: boolean;
  /** `multipart`: POST editsPath (OpenAI's /v1/images/edits); `ref-images-json`: `ref_images` in the generations JSON (LocalAI). */
  editTransport?: 'multipart' | 'ref-images-json';
  /** `none`: do not send response_format (servers that reject it). */
  responseFormat?: 'b64_json' | 'url' | 'none';
  generationsPath?: string;
  editsPath?: string;
  /** GET here must answer 2xx when the server is ready. */
  healthPath?: string;
  /** Name of the environment variable holding a bearer token, for hosted servers. */
  apiKeyEnv?: string;
}

export interface DashscopeBackendConfig extends BackendCommonConfig {
  type: 'dashscope';
  /** Default https://dashscope-intl.aliyuncs.com (Singapore); Beijing: https://dashscope.aliyuncs.com. */
  url?: string;
  /** Default qwen-image-2.0. */
  model?: string;
  /** Name of the environment variable holding the API key; the key itself never goes in this file. */
  apiKeyEnv: string;
}

export type BackendConfig = BuiltinBackendConfig | ComfyuiBackendConfig | OpenaiBackendConfig | DashscopeBackendConfig;

export interface ModelBackendsConfig {
  backends: BackendConfig[];
}

export interface BackendsConfig {
  /** Public model id (e.g. alibaba/qwen-image-2-0) -> its backends. */
  models: Record<string, ModelBackendsConfig>;
  healthCheck?: { intervalMs?: number; timeoutMs?: number };
  circuitBreaker?: { failureThreshold?: number; resetMs?: number };
  /** Same-backend retries of a 429/503 answer before failing over; waits honour Retry-After. */
  overloadRetry?: { retries?: number; maxDelayMs?: number; baseDelayMs?: number };
}

/** Defaults written once. Concurrency 1: a GPU server runs one diffusion job at a time anyway. */
export const BACKEND_DEFAULTS = {
  priority: 0,
  weight: 1,
  concurrency: { builtin: 1, comfyui: 1, openai: 1, dashscope: 2 } satisfies Record<BackendType, number>,
  /** Five minutes covers a 50-step 1440×1440 Qwen-Image run on a consumer GPU with room to spare. */
  timeoutMs: { builtin: 0, comfyui: 300_000, openai: 300_000, dashscope: 180_000 } satisfies Record<BackendType, number>,
  maxReferenceImages: 3,
  healthCheck: { intervalMs: 15_000, timeoutMs: 3_000 },
  circuitBreaker: { failureThreshold: 3, resetMs: 30_000 },
  /** Retry-After capped at 10 s: a backend asking for longer is better failed over. */
  overloadRetry: { retries: 2, maxDelayMs: 10_000, baseDelayMs: 250 },
} as const;

export const DEFAULT_MODEL_ID = 'alibaba/qwen-image-2-0';

/** What the server runs with when BACKENDS_CONFIG is unset: the bundled model only. */
export function defaultBackendsConfig(): BackendsConfig {
  return { models: { [DEFAULT_MODEL_ID]: { backends: [{ id: 'builtin', type: 'builtin' }] } } };
}

export class BackendsConfigError extends Error {
  readonly issues: string[];

  constructor(source: string, issues: string[]) {
    super(`${source}: invalid backends configuration:\n  - ${issues.join('\n  - ')}`);
    this.name = 'BackendsConfigError';
    this.issues = issues;
  }
}

/** Reads, parses (by extension) and validates the file; relative workflow paths become absolute. */
export async function loadBackendsConfig(filePath: string): Promise<BackendsConfig> {
  const ext = path.extname(filePath).toLowerCase();
  const format = ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
  if (!format) {
    throw new BackendsConfigError(filePath, [`unsupported file extension "${ext}" (use .json, .yaml or .yml)`]);
  }
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (err) {
    throw new BackendsConfigError(filePath, [`cannot read the file (${(err as Error).message})`]);
  }
  const config = parseBackendsConfig(text, format, filePath);
  return resolveRelativePaths(config, path.dirname(path.resolve(filePath)));
}

export function parseBackendsConfig(text: string, format: 'json' | 'yaml', source = 'backends config'): BackendsConfig {
  let value: unknown;
  if (format === 'json') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new BackendsConfigError(source, [`invalid JSON: ${(err as Error).message}`]);
    }
  } else {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
    if (doc.errors.length > 0) {
      throw new BackendsConfigError(
        source,
        doc.errors.map((e) => {
          const at = e.linePos?.[0] ?? (e.pos ? lineCounter.linePos(e.pos[0]) : undefined);
          const where = at ? `line ${at.line}, column ${at.col}` : 'unknown position';
          return `invalid YAML at ${where}: ${e.message.split('\n')[0]}`;
        }),
      );
    }
    value = doc.toJS();
  }
  return validateBackendsConfig(value, source);
}

export function validateBackendsConfig(value: unknown, source = 'backends config'): BackendsConfig {
  const validate = compileValidator();
  if (!validate(value)) {
    throw new BackendsConfigError(source, formatAjvErrors(validate.errors ?? []));
  }
  const config = value as BackendsConfig;
  const issues = crossFieldIssues(config);
  if (issues.length > 0) throw new BackendsConfigError(source, issues);
  return config;
}

function crossFieldIssues(config: BackendsConfig): string[] {
  const issues: string[] = [];
  const seen = new Map<string, string>();
  for (const [model, entry] of Object.entries(config.models)) {
    entry.backends.forEach((backend, index) => {
      const where = `models${pointerKey(model)}.backends[${index}]`;
      const previous = seen.get(backend.id);
      if (previous) issues.push(`${where}.id: "${backend.id}" is already used by ${previous}`);
      else seen.set(backend.id, where);
      if ((backend.type === 'comfyui' || backend.type === 'openai' || backend.type === 'dashscope') && backend.url !== undefined) {
        try {
          const url = new URL(backend.url);
          if (url.protocol !== 'http:' && url.protocol !== 'https:') issues.push(`${where}.url: must be an http:// or https:// URL`);
        } catch {
          issues.push(`${where}.url: "${backend.url}" is not a valid URL`);
        }
      }
    });
  }
  return issues;
}

function resolveRelativePaths(config: BackendsConfig, baseDir: string): BackendsConfig {
  const resolveWorkflow = (w: ComfyuiWorkflowConfig | false | undefined): ComfyuiWorkflowConfig | false | undefined =>
    w && w.file ? { ...w, file: path.resolve(baseDir, w.file) } : w;
  const models: Record<string, ModelBackendsConfig> = {};
  for (const [model, entry] of Object.entries(config.models)) {
    models[model] = {
      backends: entry.backends.map((b) => {
        if (b.type !== 'comfyui' || !b.workflows) return b;
        const workflows = {
          ...b.workflows,
          textToImage: resolveWorkflow(b.workflows.textToImage) as ComfyuiWorkflowConfig | undefined,
          edit: resolveWorkflow(b.workflows.edit),
        };
        return { ...b, workflows };
      }),
    };
  }
  return { ...config, models };
}

// ------------------------------------------------------------------------------------------ schema

const binding = {
  type: 'object',
  required: ['node', 'input'],
  additionalProperties: false,
  properties: { node: { type: 'string', minLength: 1 }, input: { type: 'string', minLength: 1 } },
};

const workflow = {
  type: 'object',
  additionalProperties: false,
  properties: {
    file: { type: 'string', minLength: 1 },
    nodes: {
      type: 'object',
      additionalProperties: false,
      properties: {
        prompt: binding,
        negativePrompt: binding,
        seed: binding,
        width: binding,
        height: binding,
        images: { type: 'array', items: binding, minItems: 1, maxItems: 3 },
        output: { type: 'string', minLength: 1 },
      },
    },
  },
};

const common = {
  id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
  type: { enum: [...BACKEND_TYPES] },
  priority: { type: 'integer', minimum: 0, maximum: 1000 },
  weight: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
  concurrency: { type: 'integer', minimum: 1, maximum: 1024 },
  timeoutMs: { type: 'integer', minimum: 0 },
  maxReferenceImages: { type: 'integer', minimum: 0, maximum: 3 },
  maxSidePx: { type: 'integer', minimum: 64, maximum: 16_384 },
  maxPixels: { type: 'integer', minimum: 4096 },
};

const url = { type: 'string', minLength: 1 };
const envName = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' };

const typeSpecific: Record<BackendType, { required?: string[]; properties: Record<string, unknown> }> = {
  builtin: { properties: {} },
  comfyui: {
    required: ['url'],
    properties: {
      url,
      workflows: {
        type: 'object',
        additionalProperties: false,
        properties: {
          preset: { enum: [...COMFYUI_WORKFLOW_PRESETS] },
          textToImage: workflow,
          edit: { anyOf: [workflow, { const: false }] },
        },
      },
      deleteHistory: { type: 'boolean' },
    },
  },
  openai: {
    required: ['url'],
    properties: {
      url,
      model: { type: 'string', minLength: 1 },
      flavor: { enum: [...OPENAI_FLAVORS] },
      extraFields: { type: 'array', uniqueItems: true, items: { enum: ['negative_prompt', 'seed'] } },
      extraParams: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
      imageField: { enum: ['image', 'image[]'] },
      promptExtras: { enum: ['none', 'localai-pipe', 'sd-cpp-extra-args'] },
      edits: { type: 'boolean' },
      editTransport: { enum: ['multipart', 'ref-images-json'] },
      responseFormat: { enum: ['b64_json', 'url', 'none'] },
      generationsPath: { type: 'string', pattern: '^/' },
      editsPath: { type: 'string', pattern: '^/' },
      healthPath: { type: 'string', pattern: '^/' },
      apiKeyEnv: envName,
    },
  },
  dashscope: {
    required: ['apiKeyEnv'],
    properties: { url, model: { type: 'string', minLength: 1 }, apiKeyEnv: envName },
  },
};

const backendSchema = {
  type: 'object',
  required: ['id', 'type'],
  properties: common,
  allOf: BACKEND_TYPES.map((t) => ({
    if: { type: 'object', required: ['type'], properties: { type: { const: t } } },
    then: {
      type: 'object',
      required: typeSpecific[t].required ?? [],
      properties: { ...common, ...typeSpecific[t].properties },
      additionalProperties: false,
    },
  })),
};

const configSchema = {
  type: 'object',
  required: ['models'],
  additionalProperties: false,
  properties: {
    models: {
      type: 'object',
      minProperties: 1,
      additionalProperties: {
        type: 'object',
        required: ['backends'],
        additionalProperties: false,
        properties: { backends: { type: 'array', minItems: 1, items: backendSchema } },
      },
    },
    healthCheck: {
      type: 'object',
      additionalProperties: false,
      properties: { intervalMs: { type: 'integer', minimum: 100 }, timeoutMs: { type: 'integer', minimum: 10 } },
    },
    circuitBreaker: {
      type: 'object',
      additionalProperties: false,
      properties: { failureThreshold: { type: 'integer', minimum: 1 }, resetMs: { type: 'integer', minimum: 10 } },
    },
    overloadRetry: {
      type: 'object',
      additionalProperties: false,
      properties: {
        retries: { type: 'integer', minimum: 0, maximum: 10 },
        maxDelayMs: { type: 'integer', minimum: 0, maximum: 120_000 },
        baseDelayMs: { type: 'integer', minimum: 0, maximum: 60_000 },
      },
    },
  },
};

function compileValidator(): ReturnType<Ajv['compile']> {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  return ajv.compile(configSchema);
}

/** `/models/alibaba~1qwen-image-2-0/backends/0/url` -> `models["alibaba/qwen-image-2-0"].backends[0].url` */
function readablePath(instancePath: string): string {
  if (!instancePath) return '(top level)';
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = '';
  parts.forEach((part, i) => {
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else if (i > 0 && parts[i - 1] === 'models') out += pointerKey(part);
    else out += out ? `.${part}` : part;
  });
  return out;
}

function pointerKey(key: string): string {
  return `["${key}"]`;
}

function formatAjvErrors(errors: ErrorObject[]): string[] {
  const messages = new Set<string>();
  for (const e of errors) {
    const where = readablePath(e.instancePath);
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'if':
      case 'anyOf':
        continue; // the branch errors below say what is wrong
      case 'required':
        messages.add(`${where}: missing required property "${String(params.missingProperty)}"`);
        break;
      case 'additionalProperties':
        messages.add(`${where}: unknown property "${String(params.additionalProperty)}"`);
        break;
      case 'enum':
        messages.add(`${where}: must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`);
        break;
      case 'const':
        if (params.allowedValue === false) continue; // the `edit: false` alternative
        messages.add(`${where}: ${e.message ?? 'invalid'}`);
        break;
      default:
        messages.add(`${where}: ${e.message ?? 'invalid'}`);
    }
  }
  return [...messages];
}
