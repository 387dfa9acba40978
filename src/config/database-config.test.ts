/** DATABASE_URL: unset keeps SQLite; a postgres URL is taken as is; anything else stops the start with the rule. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, readConfig } from './config.ts';

test('DATABASE_URL: unset or empty → SQLite; postgres:// and postgresql:// → Postgres; other schemes and junk are refused', () => {
  assert.equal(readConfig({}).database.url, undefined);
  assert.equal(readConfig({ DATABASE_URL: '' }).database.url, undefined);
  assert.equal(readConfig({ DATABASE_URL: 'postgres://u:p@db:5432/qis' }).database.url, 'postgres://u:p@db:5432/qis');
  assert.equal(readConfig({ DATABASE_URL: 'postgresql://db/qis?sslmode=require' }).database.url, 'postgresql://db/qis?sslmode=require');
  assert.throws(() => readConfig({ DATABASE_URL: 'mysql://db/qis' }), (err: Error) => err instanceof ConfigError && /DATABASE_URL must start with postgres:\/\/ or postgresql:\/\/ \(got mysql:\/\/\)/.test(err.message));
  assert.throws(() => readConfig({ DATABASE_URL: 'sqlite:///data/server.sqlite' }), /DATABASE_URL must start with postgres/);
  assert.throws(() => readConfig({ DATABASE_URL: 'db.internal:5432' }), ConfigError);
  assert.throws(() => readConfig({ DATABASE_URL: 'not a url' }), /DATABASE_URL must be a URL like postgres:\/\//);
});
