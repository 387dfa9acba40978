/**
 * /v1/webhooks over a real SQLite key store, through Fastify's inject (auth and the error handler
 * included), and the key store's webhook settings underneath.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { openDatabase, type SqliteDatabase } from '../../store/sqlite/database.ts';
import { createSqliteKeyStore } from '../../store/sqlite/key-store.ts';
import { registerErrorHandling } from '../plugins/errors.ts';
import { createAuthenticate } from '../plugins/auth.ts';
import { registerWebhookRoutes } from './webhooks.ts';

let dir: string;
let fileSeq = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webhook-routes-test-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function freshDb(): SqliteDatabase {
  return openDatabase(path.join(dir, `db-${++fileSeq}.sqlite`));
}

describe('per-key webhook settings', () => {
  test('key store: default webhook and signing secret', async () => {
    const db = freshDb();
    const keys = createSqliteKeyStore(db, { hashKey: Buffer.from('webhooks-test-hash-key') });
    try {
      const { record } = await keys.create('test', 'cli');
      assert.deepEqual(await keys.webhookSettings(record.id), { url: null, events: [], hasSecret: false });
      assert.equal(await keys.webhookSecret(record.id), null);

      const ensured = await keys.ensureWebhookSecret(record.id);
      assert.match(ensured, /^whsec_/);
      assert.equal(await keys.ensureWebhookSecret(record.id), ensured);
      assert.equal(await keys.webhookSecret(record.id), ensured);
      const rotated = await keys.rotateWebhookSecret(record.id);
      assert.notEqual(rotated, ensured);
      assert.equal(await keys.webhookSecret(record.id), rotated);

      await keys.setDefaultWebhook(record.id, { url: 'https://example.com/h', events: ['succeeded', 'running'] });
      assert.deepEqual(await keys.webhookSettings(record.id), { url: 'https://example.com/h', events: ['succeeded', 'running'], hasSecret: true });
      await keys.setDefaultWebhook(record.id, null);
      assert.deepEqual(await keys.webhookSettings(record.id), { url: null, events: [], hasSecret: true });
      await assert.rejects(keys.rotateWebhookSecret('key_missing'), /unknown API key/);
    } finally {
      db.close();
    }
  });

  test('routes: GET, PUT, DELETE /v1/webhooks and POST /v1/webhooks/secret', async () => {
    const db = freshDb();
    const keys = createSqliteKeyStore(db, { hashKey: Buffer.from('webhooks-test-hash-key') });
    const { record, secret: apiKey } = await keys.create('routes', 'cli');
    const app = Fastify({ logger: false });
    app.decorateRequest('apiKey', null);
    registerErrorHandling(app, 1024 * 1024);
    registerWebhookRoutes(app, { authenticate: createAuthenticate(keys), keys, allowPrivate: false });
    const call = (method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, payload?: unknown) =>
      app.inject({ method, url, headers: { authorization: `Bearer ${apiKey}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/v1/webhooks' })).statusCode, 401);

      let res = await call('GET', '/v1/webhooks');
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { url: null, events: [], has_secret: false });

      res = await call('PUT', '/v1/webhooks', { url: 'https://hooks.example.com/x' });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { url: 'https://hooks.example.com/x', events: ['completed'], has_secret: false });

      res = await call('PUT', '/v1/webhooks', { url: 'https://hooks.example.com/y', events: ['failed', 'running'] });
      assert.deepEqual(res.json(), { url: 'https://hooks.example.com/y', events: ['failed', 'running'], has_secret: false });
      assert.deepEqual((await call('GET', '/v1/webhooks')).json(), res.json());

      const refusals: Array<[unknown, string, string]> = [
        [{ url: 'https://x.example/', extra: 1 }, 'unknown_field', 'extra'],
        [{ events: ['completed'] }, 'missing_field', 'url'],
        [{ url: 42 }, 'invalid_value', 'url'],
        [{ url: 'http://10.0.0.1/' }, 'invalid_value', 'url'],
        [{ url: 'http://localhost/' }, 'invalid_value', 'url'],
        [{ url: 'https://x.example/', events: [] }, 'invalid_value', 'events'],
        [{ url: 'https://x.example/', events: 'completed' }, 'invalid_value', 'events'],
        [{ url: 'https://x.example/', events: ['completed', 'bogus'] }, 'invalid_value', 'events[1]'],
        [{ url: 'https://x.example/', events: ['failed', 'failed'] }, 'invalid_value', 'events[1]'],
        [[1, 2], 'invalid_value', ''],
      ];
      for (const [payload, code, param] of refusals) {
        res = await call('PUT', '/v1/webhooks', payload);
        assert.equal(res.statusCode, 400, JSON.stringify(payload));
        const error = res.json().error;
        assert.equal(error.code, code, JSON.stringify(payload));
        assert.equal(error.param ?? '', param, JSON.stringify(payload));
      }
      // Refused requests changed nothing.
      assert.equal((await call('GET', '/v1/webhooks')).json().url, 'https://hooks.example.com/y');

      res = await call('POST', '/v1/webhooks/secret');
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['cache-control'], 'no-store');
      const shown = res.json().secret as string;
      assert.match(shown, /^whsec_/);
      assert.equal(await keys.webhookSecret(record.id), shown);
      assert.equal((await call('GET', '/v1/webhooks')).json().has_secret, true);

      res = await call('DELETE', '/v1/webhooks');
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { url: null, events: [], has_secret: true });
    } finally {
      await app.close();
      db.close();
    }
  });
});
