/**
 * The engine registry: turns the backends configuration into one RouterEngine per public model.
 * A new backend type is a new folder under src/engines/ plus one entry in BACKEND_FACTORIES.
 * Called by main.ts (the composition root) with the validated config, the builtin engine factory,
 * the logger and the environment (for API keys named by `apiKeyEnv`).
 */
import {
  BACKEND_DEFAULTS,
  type BackendConfig,
  type BackendsConfig,
  type BackendType,
} from '../config/backends.ts';
import type { Engine } from '../domain/types.ts';
import { ComfyuiEngine } from './comfyui/comfyui-engine.ts';
import { DashscopeEngine } from './dashscope/dashscope-engine.ts';
import { OpenaiEngine } from './openai/openai-engine.ts';
import { silentLogger, type EngineLogger } from './router/kit/logger.ts';
import type { BackendSlots } from './router/backend-slots.ts';
import { RouterEngine, type RouterBackendSpec } from './router/router-engine.ts';

export interface BuiltinEngineContext {
  /** The backend id from the config (e.g. "builtin"). */
  backendId: string;
  /** The public model this instance serves. */
  model: string;
}

export interface BuildModelEnginesOptions {
  config: BackendsConfig;
  /** Called once per `type: builtin` backend; a `() => Engine` works too. */
  createBuiltin: (context: BuiltinEngineContext) => Engine;
  logger?: EngineLogger;
  /** Where `apiKeyEnv` names are looked up; main.ts passes process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** [0, 1) source for weighted choice among equal-priority backends. */
  random?: () => number;
  /** Backend concurrency slots shared by every router (and, in Redis, every worker process); absent: each router counts its own. */
  slots?: BackendSlots;
}

interface FactoryContext {
  model: string;
  logger: EngineLogger;
  env: Readonly<Record<string, string | undefined>>;
  createBuiltin: (context: BuiltinEngineContext) => Engine;
}

type FactoryFor<T extends BackendType> = (config: Extract<BackendConfig, { type: T }>, context: FactoryContext) => Engine;

// Short-call budgets (upload, health, cancel, download) are not set here: every remote engine
// defaults to REMOTE_REQUEST_TIMEOUT_MS / REMOTE_CONTROL_TIMEOUT_MS (router/kit/http.ts), written once.

const BACKEND_FACTORIES: { readonly [T in BackendType]: FactoryFor<T> } = {
  builtin: (config, context) => context.createBuiltin({ backendId: config.id, model: context.model }),
  comfyui: (config, context) =>
    new ComfyuiEngine({
      id: config.id,
      url: config.url,
      preset: config.workflows?.preset,
      textToImage: config.workflows?.textToImage,
      edit: config.workflows?.edit,
      deleteHistory: config.deleteHistory,
      logger: context.logger,
    }),
  openai: (config, context) =>
    new OpenaiEngine({
      ...config,
      apiKey: config.apiKeyEnv ? requireEnv(config.apiKeyEnv, config.id, context.env) : undefined,
      logger: context.logger,
    }),
  dashscope: (config, context) =>
    new DashscopeEngine({
      id: config.id,
      url: config.url,
      model: config.model,
      apiKey: requireEnv(config.apiKeyEnv, config.id, context.env),
      apiKeyEnv: config.apiKeyEnv,
      logger: context.logger,
    }),
};

export function buildModelEngines(options: BuildModelEnginesOptions): Map<string, Engine> {
  const logger = options.logger ?? silentLogger;
  const env = options.env ?? {};
  const { config } = options;
  const engines = new Map<string, Engine>();
  for (const [model, entry] of Object.entries(config.models)) {
    const context: FactoryContext = { model, logger, env, createBuiltin: options.createBuiltin };
    const backends: RouterBackendSpec[] = entry.backends.map((backend) => ({
      id: backend.id,
      engine: createBackendEngine(backend, context),
      priority: backend.priority ?? BACKEND_DEFAULTS.priority,
      weight: backend.weight ?? BACKEND_DEFAULTS.weight,
      concurrency: backend.concurrency ?? BACKEND_DEFAULTS.concurrency[backend.type],
      maxReferenceImages: backend.maxReferenceImages ?? BACKEND_DEFAULTS.maxReferenceImages,
      maxSidePx: backend.maxSidePx,
      maxPixels: backend.maxPixels,
      timeoutMs: backend.timeoutMs ?? BACKEND_DEFAULTS.timeoutMs[backend.type],
    }));
    engines.set(
      model,
      new RouterEngine({
        model,
        backends,
        healthCheck: { ...BACKEND_DEFAULTS.healthCheck, ...config.healthCheck },
        circuitBreaker: { ...BACKEND_DEFAULTS.circuitBreaker, ...config.circuitBreaker },
        overloadRetry: { ...BACKEND_DEFAULTS.overloadRetry, ...config.overloadRetry },
        logger,
        random: options.random,
        slots: options.slots,
      }),
    );
  }
  return engines;
}

function createBackendEngine(backend: BackendConfig, context: FactoryContext): Engine {
  const factory = BACKEND_FACTORIES[backend.type] as (config: BackendConfig, context: FactoryContext) => Engine;
  return factory(backend, context);
}

/** A missing key is a start-up error naming the variable, never a 401 at the first request. */
function requireEnv(name: string, backendId: string, env: Readonly<Record<string, string | undefined>>): string {
  const value = env[name];
  if (!value || value.trim() === '') {
    throw new Error(`backend ${backendId}: environment variable ${name} (apiKeyEnv) is not set`);
  }
  return value.trim();
}
