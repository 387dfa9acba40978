/** Types shared by the prompt rewriting room (enhance_prompt). See docs/enhance-prompt.md. */
import type { PromptEnhancer } from '../domain/ports.ts';

/**
 * Where finished LLM rewrites are kept so that the same (prompt, seed, edit flag, enhancer model, rules version)
 * always draws with the same prompt. `set` keeps the first value stored for a key: a rewrite, once served, stays
 * the answer (a changed rule set gets a new rules version, hence new keys). Asynchronous, so the cache can live
 * in a shared database (Postgres) as well as in the server's SQLite file or in memory.
 */
export interface PromptCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

/** The pino subset we use; every method is optional-free so a pino logger fits as is. */
export interface PromptLogger {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

/**
 * Word → word mapping applied to words outside quotes by the builtin engine's prompt adapter (vocabulary.ts), so that
 * a small model with a closed vocabulary (the bundled one, see model/CONTRACT.md "Tokenizer") sees words it knows. Keys are matched
 * case-insensitively as whole words (a key may hold spaces: "navy blue"); the replacement keeps the casing style
 * of the matched word.
 */
export interface Vocabulary {
  /**
   * A replacement, or replacements in order of preference: `fitVocabulary` keeps the first one whose words the
   * model knows ("cottages" → ["houses", "house"]: the plural where the model has plurals, else the singular).
   */
  synonyms: Record<string, string | readonly string[]>;
}

/** An OpenAI-compatible chat server: `POST {url}/chat/completions`. */
export interface LlmOptions {
  /** Base URL, e.g. `http://127.0.0.1:11434/v1` (a URL already ending in `/chat/completions` is used as is). */
  url: string;
  model: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
  /** Whole budget for one rewrite, retries included, in ms. Default 10000. */
  timeoutMs?: number;
}

export interface PromptEnhancerOptions {
  /** No LLM: every request uses the offline rewriter (no fallback is counted). */
  llm?: LlmOptions;
  cache: PromptCache;
  logger?: PromptLogger;
  /** Part of every cache key; defaults to PROMPT_RULES_VERSION. Change it to invalidate all cached rewrites. */
  rulesVersion?: string;
}

export interface EnhancerStats {
  /** HTTP requests sent to the chat server (a retry counts again). */
  llmCalls: number;
  cacheHits: number;
  /** Requests answered by the offline rewriter although an LLM is configured. */
  fallbacks: number;
  /** Stable reason codes (`timeout`, `http_500`, `refused_quote_dropped`, …) → count. */
  fallbackReasons: Record<string, number>;
}

export type StatefulPromptEnhancer = PromptEnhancer & { stats(): EnhancerStats };

/** What the rewrite checks decided; `reason` is a stable code used in stats and logs. */
export type Verdict = { ok: true } | { ok: false; reason: string; detail: string };
