import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startFakeChatServer } from '../../../test/fakes/fake-chat-server.ts';
import { createPromptEnhancer, promptCacheKey } from '../../prompt/index.ts';
import { createSqlitePromptCache } from './prompt-cache.ts';

describe('SQLite prompt cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prompt-cache-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stores, keeps the first value, and creates its table', async () => {
    const db = new Database(':memory:');
    const cache = createSqlitePromptCache(db, { now: () => 1234 });
    assert.equal(await cache.get('k'), undefined);
    await cache.set('k', 'first');
    await cache.set('k', 'second');
    assert.equal(await cache.get('k'), 'first');
    assert.deepEqual(db.prepare('SELECT key, value, created_at_ms FROM prompt_cache').all(), [{ key: 'k', value: 'first', created_at_ms: 1234 }]);
    createSqlitePromptCache(db); // a second instance on the same database finds the table in place
    db.close();
  });

  it('survives reopening the file', async () => {
    const file = join(dir, 'reopen.sqlite');
    const key = promptCacheKey({ prompt: 'a cat', seed: 1, isEdit: false, enhancerModel: 'm', rulesVersion: 'v' });
    const first = new Database(file);
    await createSqlitePromptCache(first).set(key, 'a fluffy cat');
    first.close();
    const second = new Database(file);
    assert.equal(await createSqlitePromptCache(second).get(key), 'a fluffy cat');
    second.close();
  });

  it('makes an enhancer reproducible across restarts', async () => {
    const fake = await startFakeChatServer({ behaviour: { kind: 'reply', content: 'A fluffy ginger cat on a windowsill, realistic photography.' } });
    const file = join(dir, 'enhancer.sqlite');
    const enhanceOnce = async () => {
      const db = new Database(file);
      try {
        const enhancer = createPromptEnhancer({ llm: { url: fake.url, model: 'm' }, cache: createSqlitePromptCache(db) });
        return await enhancer.enhance({ requestId: 'r', model: 'alibaba/qwen-image-2-0', prompt: 'a cat', seed: 5, isEdit: false });
      } finally {
        db.close();
      }
    };
    try {
      const first = await enhanceOnce();
      const second = await enhanceOnce();
      assert.equal(first.source, 'llm');
      assert.deepEqual(second, { prompt: first.prompt, source: 'cache' });
      assert.equal(fake.requests.length, 1);
    } finally {
      await fake.close();
    }
  });
});
