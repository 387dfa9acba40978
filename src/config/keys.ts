/** Settings of API keys: admin keys from the environment, the hash secret, and the limits of keys that set none. */
import { ConfigError } from './config.ts';
import { LIMIT_DEFAULT_ENV, LIMIT_FIELDS, UNLIMITED, parseLimitText, type KeyLimits } from '../domain/key-limits.ts';
import { isApiError } from '../domain/errors.ts';

export interface KeysConfig {
  /** Secrets from ADMIN_API_KEYS: env keys with the admin role. */
  adminApiKeys: string[];
  /** KEY_HASH_SECRET; undefined → the generated file in DATA_DIR. */
  hashSecret: string | undefined;
  /** Limits of a key whose own setting is 'default' (KEY_DEFAULT_*; none unless set). */
  defaultLimits: KeyLimits;
}

type Env = Record<string, string | undefined>;

export function readKeysConfig(env: Env): KeysConfig {
  const defaultLimits = { ...UNLIMITED };
  for (const field of LIMIT_FIELDS) {
    const name = LIMIT_DEFAULT_ENV[field];
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    let value;
    try {
      value = parseLimitText(field, raw, name);
    } catch (err) {
      throw isApiError(err) ? new ConfigError(err.message.replace(', "none" (no limit) or "default"', ' or "none" (no limit)')) : err;
    }
    if (value === 'default') throw new ConfigError(`${name} must be a number or "none": it is itself the default`);
    defaultLimits[field] = value;
  }
  const hashSecret = env.KEY_HASH_SECRET === undefined || env.KEY_HASH_SECRET === '' ? undefined : env.KEY_HASH_SECRET;
  if (hashSecret !== undefined && hashSecret.length < 16) throw new ConfigError('KEY_HASH_SECRET must be at least 16 characters');
  return {
    adminApiKeys: (env.ADMIN_API_KEYS ?? '').split(',').map((k) => k.trim()).filter((k) => k.length > 0),
    hashSecret,
    defaultLimits,
  };
}
