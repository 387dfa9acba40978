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
import { ENGINE_MODULES, engineModuleFor, type RegisteredBackendConfig } from '../engines/registry.ts';
import {
  COMMON_BACKEND_PROPERTIES,
  ROUTING_DEFAULTS,
  ROUTING_SECTIONS_PROPERTIES,
  type RoutingSections,
} from '../engines/router/config.ts';

// Each engine folder owns its entry's fields, schema and defaults (engines/<type>/config.ts);
// these re-exports keep the routing file's types importable from one place.
export type { BackendCommonConfig } from '../engines/router/config.ts';
export type { BuiltinBackendConfig } from '../engines/builtin/config.ts';
export type {
  ComfyuiBackendConfig,
  ComfyuiNodeBinding,
  ComfyuiWorkflowConfig,
  ComfyuiWorkflowPreset,
} from '../engines/comfyui/config.ts';
export type { DashscopeBackendConfig } from '../engines/dashscope/config.ts';
export type { OpenaiBackendConfig } from '../engines/openai/config.ts';
export type { OpenaiFlavor } from '../engines/openai/openai-dialect.ts';

export type BackendConfig = RegisteredBackendConfig;
export type BackendType = BackendConfig['type'];
export const BACKEND_TYPES: readonly BackendType[] = ENGINE_MODULES.map((m) => m.type);

export interface ModelBackendsConfig {
  backends: BackendConfig[];
}

export interface BackendsConfig extends RoutingSections {
  /** Public model id (e.g. alibaba/qwen-image-2-0) -> its backends. */
  models: Record<string, ModelBackendsConfig>;
}

const perType = <K extends 'concurrency' | 'timeoutMs'>(key: K): Readonly<Record<BackendType, number>> =>
  Object.fromEntries(ENGINE_MODULES.map((m) => [m.type, m.defaults[key]])) as Record<BackendType, number>;

/** Every default of the routing file, gathered from the router's and the engines' config.ts. */
export const BACKEND_DEFAULTS = {
  priority: ROUTING_DEFAULTS.priority,
  weight: ROUTING_DEFAULTS.weight,
  concurrency: perType('concurrency'),
  timeoutMs: perType('timeoutMs'),
  maxReferenceImages: ROUTING_DEFAULTS.maxReferenceImages,
  healthCheck: ROUTING_DEFAULTS.healthCheck,
  circuitBreaker: ROUTING_DEFAULTS.circuitBreaker,
  overloadRetry: ROUTING_DEFAULTS.overloadRetry,
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
      // Every remote engine's `url` field; the schema has already checked it is a string.
      if ('url' in backend && backend.url !== undefined) {
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
  const models: Record<string, ModelBackendsConfig> = {};
  for (const [model, entry] of Object.entries(config.models)) {
    models[model] = {
      backends: entry.backends.map((b) => {
        const { resolvePaths } = engineModuleFor(b.type);
        return resolvePaths ? (resolvePaths(b, baseDir) as BackendConfig) : b;
      }),
    };
  }
  return { ...config, models };
}

// ------------------------------------------------------------------------------------------ schema

// The common fields first, in the order `id`, `type`, the rest (Ajv reports in schema order).
const { id: idProperty, ...otherCommonProperties } = COMMON_BACKEND_PROPERTIES;
const common = { id: idProperty, type: { enum: [...BACKEND_TYPES] }, ...otherCommonProperties };

/** One `if type is T then (common + T's fields, nothing else)` branch per registered engine. */
const backendSchema = {
  type: 'object',
  required: ['id', 'type'],
  properties: common,
  allOf: ENGINE_MODULES.map((m) => ({
    if: { type: 'object', required: ['type'], properties: { type: { const: m.type } } },
    then: {
      type: 'object',
      required: [...(m.schema.required ?? [])],
      properties: { ...common, ...m.schema.properties },
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
    ...ROUTING_SECTIONS_PROPERTIES,
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
