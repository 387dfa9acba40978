/** enhance_prompt through the HTTP API with an LLM configured (a fake OpenAI-compatible chat server). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, MODEL, type TestServer } from '../helpers/server.ts';
import { startFakeChatServer, type FakeChatServer } from '../fakes/fake-chat-server.ts';
import { readPngText } from '../../src/images/png.ts';

let chat: FakeChatServer;
let server: TestServer;
const REWRITE = 'A red house with a sign reading "OPEN" on a green meadow at sunset, realistic photography, wide shot.';
/** This server's only engine is the builtin one: it draws the rewrite with "meadow" mapped onto its vocabulary. */
const DRAWN = 'A red house with a sign reading "OPEN" on a green grass at sunset, realistic photography, wide shot.';

before(async () => {
  chat = await startFakeChatServer({ behaviour: { kind: 'reply', content: REWRITE } });
  server = await startTestServer({ PROMPT_ENHANCER_URL: chat.url, PROMPT_ENHANCER_MODEL: 'qwen-plus', PROMPT_ENHANCER_TIMEOUT_MS: '1500' });
});
after(async () => {
  await server.close();
  await chat.close();
});

const generate = (prompt: string, seed: number, extra: object = {}) =>
  server.post('/v1/images/generations', { model: MODEL, prompt, seed, response_format: 'b64_json', image_size: 'square', ...extra });

test('the LLM rewrite, as the builtin engine adapted it, is drawn, returned as revised_prompt and stored in the PNG; a repeat is served from the cache', async () => {
  const a = await generate('a red house with a sign "OPEN"', 77);
  assert.equal(a.status, 200);
  assert.equal(a.json.data[0].revised_prompt, DRAWN);
  const text = readPngText(Buffer.from(a.json.data[0].b64_json, 'base64'));
  assert.equal(text.Prompt, DRAWN);
  assert.equal(text['Original prompt'], 'a red house with a sign "OPEN"');
  assert.equal(chat.requests.length, 1);
  assert.equal(chat.requests[0]!.temperature, 0);
  assert.equal(chat.requests[0]!.seed, 77);
  assert.equal(chat.requests[0]!.messages.at(-1)!.content, 'a red house with a sign "OPEN"', 'the LLM is given the caller\'s words');
  const b = await generate('a red house with a sign "OPEN"', 77);
  assert.equal(b.json.data[0].b64_json, a.json.data[0].b64_json, 'same seed + prompt → same rewrite → same image');
  assert.equal(chat.requests.length, 1, 'second request hit the persistent cache');
});

test('enhance_prompt false never calls the LLM', async () => {
  const before = chat.requests.length;
  const res = await generate('a blue circle', 1, { enhance_prompt: false });
  assert.equal(res.json.data[0].revised_prompt, 'a blue circle');
  assert.equal(chat.requests.length, before);
});

test('an LLM failure (500) or a slow LLM never fails the request: the offline rewriter is used', async () => {
  chat.setBehaviour({ kind: 'error', status: 500, message: 'boom' });
  const failed = await generate('a green tree', 2);
  assert.equal(failed.status, 200);
  assert.match(failed.json.data[0].revised_prompt, /^a green tree, Ultra HD, 4K, cinematic composition\.$/);
  chat.setBehaviour({ kind: 'reply', content: REWRITE, delayMs: 3000 });
  const slow = await generate('a green tree at night', 3);
  assert.equal(slow.status, 200);
  // The LLM would have answered (after 3 s) with REWRITE; the offline rewrite proves the 1.5 s budget ended the wait.
  assert.equal(slow.json.data[0].revised_prompt, 'a green tree at night, Ultra HD, 4K, cinematic composition.');
  chat.setBehaviour({ kind: 'reply', content: REWRITE });
});
