/**
 * Per-key roles and limits: plain types and the one parser of a limit value, shared by the CLI, the
 * admin HTTP routes and the settings. Imports only the error catalogue.
 */
import { ApiError } from './errors.ts';

export type KeyRole = 'admin' | 'user';
export const KEY_ROLES: readonly KeyRole[] = ['admin', 'user'];

/** The four limits a key can have. */
export const LIMIT_FIELDS = ['requests_per_minute', 'max_concurrent_jobs', 'daily_credits', 'monthly_credits'] as const;
export type LimitField = (typeof LIMIT_FIELDS)[number];

/**
 * A key's own setting of one limit: a number, `null` (no limit for this key, whatever the default),
 * or `'default'` (follow the server's KEY_DEFAULT_* setting).
 */
export type LimitSetting = number | null | 'default';
export type KeyLimitSettings = Record<LimitField, LimitSetting>;

/** The limits in force: a number, or null for none. */
export type KeyLimits = Record<LimitField, number | null>;

export const DEFAULT_LIMIT_SETTINGS: KeyLimitSettings = {
  requests_per_minute: 'default',
  max_concurrent_jobs: 'default',
  daily_credits: 'default',
  monthly_credits: 'default',
};

export const UNLIMITED: KeyLimits = { requests_per_minute: null, max_concurrent_jobs: null, daily_credits: null, monthly_credits: null };

/** Smallest and largest value of each limit. Zero credits is a real budget (the key cannot generate). */
export const LIMIT_RANGES: Record<LimitField, { min: number; max: number }> = {
  requests_per_minute: { min: 1, max: 1_000_000 },
  max_concurrent_jobs: { min: 1, max: 100_000 },
  daily_credits: { min: 0, max: Number.MAX_SAFE_INTEGER },
  monthly_credits: { min: 0, max: Number.MAX_SAFE_INTEGER },
};

/** The environment variable that holds each limit's server default. */
export const LIMIT_DEFAULT_ENV: Record<LimitField, string> = {
  requests_per_minute: 'KEY_DEFAULT_RPM',
  max_concurrent_jobs: 'KEY_DEFAULT_MAX_CONCURRENT',
  daily_credits: 'KEY_DEFAULT_DAILY_CREDITS',
  monthly_credits: 'KEY_DEFAULT_MONTHLY_CREDITS',
};

export function effectiveLimits(settings: KeyLimitSettings, defaults: KeyLimits): KeyLimits {
  const out = { ...UNLIMITED };
  for (const field of LIMIT_FIELDS) {
    const own = settings[field];
    out[field] = own === 'default' ? defaults[field] : own;
  }
  return out;
}

function ruleOf(field: LimitField): string {
  const { min, max } = LIMIT_RANGES[field];
  return `an integer from ${min} to ${max}`;
}

/**
 * A limit as JSON gives it (admin HTTP): an integer, null (no limit) or "default". Throws a 400
 * naming `param` and the rule.
 */
export function parseLimitSetting(field: LimitField, value: unknown, param: string = field): LimitSetting {
  if (value === null || value === 'default') return value;
  const { min, max } = LIMIT_RANGES[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ApiError('invalid_value', `${param} must be ${ruleOf(field)}, null (no limit) or "default" (the server's ${LIMIT_DEFAULT_ENV[field]}); got ${JSON.stringify(value)}`, { param });
  }
  return value;
}

/** A limit as a command line or an environment variable gives it: digits, `none` (no limit) or `default`. */
export function parseLimitText(field: LimitField, raw: string, param: string): LimitSetting {
  const text = raw.trim().toLowerCase();
  if (text === 'none' || text === 'unlimited') return null;
  if (text === 'default') return 'default';
  const { min, max } = LIMIT_RANGES[field];
  if (!/^\d{1,16}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new ApiError('invalid_value', `${param} must be ${ruleOf(field)}, "none" (no limit) or "default"; got "${raw}"`, { param });
  }
  return Number(text);
}
