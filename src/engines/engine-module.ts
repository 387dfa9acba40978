/**
 * What an engine folder gives the registry: its routing-file `type`, the schema fragment for the
 * fields it adds to a backend entry, its defaults, and how a validated entry becomes an Engine.
 * The fragment, defaults and options live in engines/<type>/config.ts; the registry pairs them
 * with the engine's constructor (engineModule) in one line per engine.
 */
import type { Engine } from '../domain/types.ts';
import type { EngineLogger } from './remote/logger.ts';
import type { BackendCommonConfig } from './router/config.ts';

export interface BuiltinEngineContext {
  /** The backend id from the config (e.g. "builtin"). */
  backendId: string;
  /** The public model this instance serves. */
  model: string;
}

/** What the registry hands every engine when it builds one backend of one public model. */
export interface EngineContext {
  model: string;
  logger: EngineLogger;
  /** Where `apiKeyEnv` names are looked up; main.ts passes process.env. */
  env: Readonly<Record<string, string | undefined>>;
  createBuiltin: (context: BuiltinEngineContext) => Engine;
}

/**
 * The JSON Schema (Ajv, strict) of the fields a `type` adds to the common ones
 * (router/config.ts); unknown fields are rejected for every type.
 */
export interface BackendSchemaFragment {
  required?: readonly string[];
  properties: Readonly<Record<string, unknown>>;
}

export interface EngineDefaults {
  /** Requests in flight on one backend of this type when `concurrency` is not given. */
  concurrency: number;
  /** Deadline of one generation when `timeoutMs` is not given; 0: none. */
  timeoutMs: number;
}

/** An engine's config.ts: everything about its routing-file entry, without the engine itself. */
export interface EngineConfig<C extends BackendCommonConfig, O> {
  type: C['type'];
  schema: BackendSchemaFragment;
  defaults: EngineDefaults;
  /** Makes file paths in the entry absolute, relative to the routing file's folder. */
  resolvePaths?: (entry: C, baseDir: string) => C;
  /** A validated entry -> the engine's constructor options. */
  toOptions: (entry: C, context: EngineContext) => O;
}

export interface EngineModule<C extends BackendCommonConfig = BackendCommonConfig, O = unknown> extends EngineConfig<C, O> {
  create: (options: O, context: EngineContext) => Engine;
}

/** One registry line: an engine's config paired with what builds it. */
export function engineModule<C extends BackendCommonConfig, O>(
  config: EngineConfig<C, O>,
  create: (options: O, context: EngineContext) => Engine,
): EngineModule<C, O> {
  return { ...config, create };
}

/** The routing-file entry type of a registered module. */
export type EntryOf<M> = M extends EngineModule<infer C, any> ? C : never;

/** A missing key is a start-up error naming the variable, never a 401 at the first request. */
export function requireEnv(name: string, backendId: string, env: Readonly<Record<string, string | undefined>>): string {
  const value = env[name];
  if (!value || value.trim() === '') {
    throw new Error(`backend ${backendId}: environment variable ${name} (apiKeyEnv) is not set`);
  }
  return value.trim();
}
