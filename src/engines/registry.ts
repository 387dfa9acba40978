/**
 * The engine registry: the list of engine modules (one line per routing-file `type`) and the
 * generic wiring that turns the backends configuration into one RouterEngine per public model.
 * A new backend type is a new folder under src/engines/ (engine, config.ts, tests) plus one line
 * in ENGINE_MODULES; config/backends.ts assembles the routing file's validator from this list.
 * Called by main.ts (the composition root) with the validated config, the builtin engine factory,
 * the logger and the environment (for API keys named by `apiKeyEnv`).
 */
import type { BackendsConfig } from '../config/backends.ts';
import type { Engine } from '../domain/types.ts';
import { builtinConfig } from './builtin/config.ts';
import { comfyuiConfig } from './comfyui/config.ts';
import { ComfyuiEngine } from './comfyui/comfyui-engine.ts';
import { dashscopeConfig } from './dashscope/config.ts';
import { DashscopeEngine } from './dashscope/dashscope-engine.ts';
import { engineModule, type BuiltinEngineContext, type EngineContext, type EngineModule, type EntryOf } from './engine-module.ts';
import { openaiConfig } from './openai/config.ts';
import { OpenaiEngine } from './openai/openai-engine.ts';
import { silentLogger, type EngineLogger } from './remote/logger.ts';
import type { BackendSlots } from './router/backend-slots.ts';
import type { CircuitShare } from './router/circuit-share.ts';
import { ROUTING_DEFAULTS } from './router/config.ts';
import { RouterEngine, type RouterBackendSpec } from './router/router-engine.ts';

export type { BuiltinEngineContext } from './engine-module.ts';

/** Every backend type the routing file accepts, in the order its error messages list them. */
export const ENGINE_MODULES = [
  engineModule(builtinConfig, (options, context) => context.createBuiltin(options)),
  engineModule(comfyuiConfig, (options) => new ComfyuiEngine(options)),
  engineModule(openaiConfig, (options) => new OpenaiEngine(options)),
  engineModule(dashscopeConfig, (options) => new DashscopeEngine(options)),
] as const;

/** One backend entry of the routing file, whichever its type. */
export type RegisteredBackendConfig = EntryOf<(typeof ENGINE_MODULES)[number]>;

/** The module of a routing-file `type`; the validator has already rejected unknown types. */
export function engineModuleFor(type: string): EngineModule {
  const found = ENGINE_MODULES.find((m) => m.type === type);
  if (!found) throw new Error(`no engine module for backend type "${type}"`);
  return found as unknown as EngineModule;
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
  /** Circuit breaker changes shared with the other worker processes (Redis); absent: each router's own. */
  circuitShare?: CircuitShare;
}

export function buildModelEngines(options: BuildModelEnginesOptions): Map<string, Engine> {
  const logger = options.logger ?? silentLogger;
  const env = options.env ?? {};
  const { config } = options;
  const engines = new Map<string, Engine>();
  for (const [model, entry] of Object.entries(config.models)) {
    const context: EngineContext = { model, logger, env, createBuiltin: options.createBuiltin };
    const backends: RouterBackendSpec[] = entry.backends.map((backend) => {
      const module = engineModuleFor(backend.type);
      return {
        id: backend.id,
        engine: module.create(module.toOptions(backend, context), context),
        priority: backend.priority ?? ROUTING_DEFAULTS.priority,
        weight: backend.weight ?? ROUTING_DEFAULTS.weight,
        concurrency: backend.concurrency ?? module.defaults.concurrency,
        maxReferenceImages: backend.maxReferenceImages ?? ROUTING_DEFAULTS.maxReferenceImages,
        maxSidePx: backend.maxSidePx,
        maxPixels: backend.maxPixels,
        timeoutMs: backend.timeoutMs ?? module.defaults.timeoutMs,
      };
    });
    engines.set(
      model,
      new RouterEngine({
        model,
        backends,
        healthCheck: { ...ROUTING_DEFAULTS.healthCheck, ...config.healthCheck },
        circuitBreaker: { ...ROUTING_DEFAULTS.circuitBreaker, ...config.circuitBreaker },
        overloadRetry: { ...ROUTING_DEFAULTS.overloadRetry, ...config.overloadRetry },
        logger,
        random: options.random,
        slots: options.slots,
        circuitShare: options.circuitShare,
      }),
    );
  }
  return engines;
}
