/** The flags of `keys create` and `keys update`, parsed with the same rules as the admin HTTP routes. */
import { ApiError } from '../domain/errors.ts';
import type { KeyUpdate } from '../domain/ports.ts';
import { KEY_ROLES, parseLimitText, type KeyLimitSettings, type KeyRole, type LimitField } from '../domain/key-limits.ts';

const LIMIT_FLAGS: Record<string, LimitField> = {
  '--rpm': 'requests_per_minute',
  '--max-concurrent': 'max_concurrent_jobs',
  '--daily-credits': 'daily_credits',
  '--monthly-credits': 'monthly_credits',
};

export const KEY_FLAGS_HELP =
  '[--name NAME] [--role admin|user | --admin] [--rpm N] [--max-concurrent N] [--daily-credits N] [--monthly-credits N]\n' +
  '      each limit: a number, "none" (no limit) or "default" (the server\'s KEY_DEFAULT_* setting)';

/** Throws ApiError (its message names the flag) on an unknown flag, a missing value or a bad one. */
export function parseKeyFlags(args: string[]): KeyUpdate {
  const out: KeyUpdate = {};
  const limits: Partial<KeyLimitSettings> = {};
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    if (flag === '--admin') {
      out.role = 'admin';
      continue;
    }
    const value = args[i + 1];
    const takesValue = flag === '--name' || flag === '--role' || flag in LIMIT_FLAGS;
    if (!takesValue) throw new ApiError('unknown_field', `unknown option ${flag}`, { param: flag });
    if (value === undefined || value.startsWith('--')) throw new ApiError('missing_field', `${flag} needs a value`, { param: flag });
    i++;
    if (flag === '--name') {
      if (value.trim() === '' || /\p{Cc}/u.test(value) || [...value].length > 100) throw new ApiError('invalid_value', '--name must be 1 to 100 characters without control characters', { param: flag });
      out.name = value;
    } else if (flag === '--role') {
      if (!(KEY_ROLES as readonly string[]).includes(value)) throw new ApiError('invalid_value', `--role must be one of ${KEY_ROLES.join(', ')}, got "${value}"`, { param: flag });
      out.role = value as KeyRole;
    } else {
      limits[LIMIT_FLAGS[flag]!] = parseLimitText(LIMIT_FLAGS[flag]!, value, flag);
    }
  }
  if (Object.keys(limits).length > 0) out.limits = limits;
  return out;
}
