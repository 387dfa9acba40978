/** The cache key, and the in-memory PromptCache (tests, and servers run without a data directory). */
import { createHash } from 'node:crypto';
import type { PromptCache } from './types.ts';

export interface PromptCacheKeyParts {
  prompt: string;
  seed: number;
  isEdit: boolean;
  /** The enhancer LLM's model name: another model rewrites differently. */
  enhancerModel: string;
  rulesVersion: string;
}

/**
 * SHA-256 (hex) of the parts as a JSON array: fixed length whatever the prompt, and no separator a prompt could
 * forge. The prompt is used exactly as received (not trimmed): the offline rewriter's tidying is not a cache concern.
 */
export function promptCacheKey(parts: PromptCacheKeyParts): string {
  const material = JSON.stringify([parts.rulesVersion, parts.enhancerModel, parts.isEdit, parts.seed, parts.prompt]);
  return createHash('sha256').update(material, 'utf8').digest('hex');
}

/** 10 000 rewrites of at most 2000 characters: at most ~40 MB of UTF-16, usually a tenth of that. */
export const DEFAULT_MEMORY_CACHE_ENTRIES = 10_000;

/**
 * A bounded map: the first value set for a key stays (see PromptCache); when full, the oldest entry goes.
 * A hit does not refresh an entry's age: reproducibility across restarts needs the SQLite cache anyway.
 */
export function createMemoryPromptCache(maxEntries: number = DEFAULT_MEMORY_CACHE_ENTRIES): PromptCache {
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
  const entries = new Map<string, string>();
  return {
    get: async (key) => entries.get(key),
    async set(key, value) {
      if (entries.has(key)) return;
      if (entries.size >= maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      entries.set(key, value);
    },
  };
}
