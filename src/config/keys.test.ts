import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readConfig, ConfigError } from './config.ts';

test('key settings: no limits by default; KEY_DEFAULT_* take a number or none; ADMIN_API_KEYS is a list', () => {
  const plain = readConfig({}).keys;
  assert.deepEqual(plain, {
    adminApiKeys: [],
    hashSecret: undefined,
    defaultLimits: { requests_per_minute: null, max_concurrent_jobs: null, daily_credits: null, monthly_credits: null },
  });
  const set = readConfig({
    ADMIN_API_KEYS: ' a-admin-key , ,b-admin-key',
    KEY_HASH_SECRET: 'sixteen-chars-or-more',
    KEY_DEFAULT_RPM: '60',
    KEY_DEFAULT_MAX_CONCURRENT: 'none',
    KEY_DEFAULT_DAILY_CREDITS: '0',
    KEY_DEFAULT_MONTHLY_CREDITS: '20000000',
  }).keys;
  assert.deepEqual(set.adminApiKeys, ['a-admin-key', 'b-admin-key']);
  assert.equal(set.hashSecret, 'sixteen-chars-or-more');
  assert.deepEqual(set.defaultLimits, { requests_per_minute: 60, max_concurrent_jobs: null, daily_credits: 0, monthly_credits: 20_000_000 });
});

test('bad key settings are refused at start, naming the variable and the rule', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ KEY_DEFAULT_RPM: '0' }, /^KEY_DEFAULT_RPM must be an integer from 1 to 1000000 or "none" \(no limit\); got "0"$/],
    [{ KEY_DEFAULT_RPM: 'fast' }, /KEY_DEFAULT_RPM must be/],
    [{ KEY_DEFAULT_MAX_CONCURRENT: '1.5' }, /KEY_DEFAULT_MAX_CONCURRENT must be/],
    [{ KEY_DEFAULT_DAILY_CREDITS: '-1' }, /KEY_DEFAULT_DAILY_CREDITS must be an integer from 0/],
    [{ KEY_DEFAULT_MONTHLY_CREDITS: 'default' }, /KEY_DEFAULT_MONTHLY_CREDITS must be a number or "none"/],
    [{ KEY_HASH_SECRET: 'short' }, /KEY_HASH_SECRET must be at least 16 characters/],
  ];
  for (const [env, message] of cases) assert.throws(() => readConfig(env), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env));
});
