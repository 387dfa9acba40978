/**
 * Project issue 11, item 2: a GPU backend gets the caller's words, not the bundled model's vocabulary. The routing
 * file puts a ComfyUI server (a fake following its protocol) first and the builtin engine last, with no LLM, so
 * enhance_prompt (default true) is the offline rewriter. ComfyUI must receive the words plus the rewrite written for
 * a real Qwen-Image (the quality suffix), and revised_prompt must be what it drew with. Once ComfyUI is gone the
 * router falls back to the builtin engine, which maps the prompt onto its vocabulary after being chosen, and
 * revised_prompt reports that mapped prompt. enhance_prompt false draws exactly the words on either engine.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, MODEL, type TestServer } from '../helpers/server.ts';
import { startFakeComfyui, type FakeComfyui } from '../fakes/fake-comfyui.ts';
import { readPngText } from '../../src/images/png.ts';
import { QUALITY_SUFFIX_EN } from '../../src/prompt/index.ts';
import { writeRoutingFile } from '../helpers/routing.ts';

const WORDS = 'a scarlet cabin beside the ocean at twilight';
/** The offline rewrite for a real Qwen-Image: the words as written, then the model card's quality suffix. */
const REWRITE = `${WORDS}${QUALITY_SUFFIX_EN}`;
/** What the builtin engine draws REWRITE as, with the bundled vocabulary (src/prompt/vocabulary.ts). */
const BUILTIN_REWRITE = `a red house beside the sea at sunset${QUALITY_SUFFIX_EN}`;
/** Words of the bundled vocabulary that only a mapping would bring into this prompt. */
const MAPPED_WORDS = /\b(red|house|sea|sunset)\b/i;


/** The text of the workflow's CLIPTextEncode-like nodes, straight from the JSON ComfyUI was sent. */
function workflowTexts(workflow: Record<string, { class_type: string; inputs: Record<string, unknown> }>): string[] {
  return Object.values(workflow).flatMap((node) =>
    Object.entries(node.inputs)
      .filter(([name, value]) => typeof value === 'string' && /^(text|prompt)$/.test(name))
      .map(([, value]) => value as string),
  );
}

describe('ComfyUI first, builtin last, no LLM', () => {
  let comfy: FakeComfyui;
  let comfyClosed = false;
  let server: TestServer;

  before(async () => {
    comfy = await startFakeComfyui({ steps: 2 });
    server = await startTestServer({
      BACKENDS_CONFIG: writeRoutingFile([
        `{ id: comfy, type: comfyui, url: "${comfy.url}", priority: 0 }`,
        '{ id: builtin, type: builtin, priority: 1 }',
      ]),
    });
  });
  after(async () => {
    await server.close();
    if (!comfyClosed) await comfy.close();
  });

  const generate = (extra: object = {}) =>
    server.post('/v1/images/generations', { model: MODEL, prompt: WORDS, seed: 21, image_size: 'square', response_format: 'b64_json', ...extra });

  const pngText = (res: { json: any }) => readPngText(Buffer.from(res.json.data[0].b64_json, 'base64'));

  test('enhance_prompt true: ComfyUI receives the words plus the real-model rewrite, and revised_prompt is that', async () => {
    const before = comfy.prompts.length;
    const res = await generate();
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(comfy.prompts.length, before + 1, 'ComfyUI drew it');
    const received = comfy.prompts.at(-1)!;
    assert.equal(received.prompt, REWRITE);
    assert.doesNotMatch(received.prompt!, MAPPED_WORDS, 'no word mapped onto the bundled model\'s vocabulary');
    assert.ok(workflowTexts(received.workflow).includes(REWRITE), 'the submitted workflow itself holds the words');
    assert.equal(res.json.data[0].revised_prompt, REWRITE);
    assert.equal(pngText(res).Prompt, REWRITE);
    assert.equal(pngText(res)['Original prompt'], WORDS);
  });

  test('enhance_prompt false: ComfyUI receives exactly the words', async () => {
    const res = await generate({ enhance_prompt: false });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(comfy.prompts.at(-1)!.prompt, WORDS);
    assert.equal(res.json.data[0].revised_prompt, WORDS);
    assert.equal(pngText(res).Prompt, WORDS);
    assert.equal(pngText(res)['Original prompt'], undefined);
  });

  test('ComfyUI gone: the builtin engine draws, with the prompt mapped onto its vocabulary only when enhancing', async () => {
    await comfy.close();
    comfyClosed = true;
    const sent = comfy.prompts.length;

    const enhanced = await generate();
    assert.equal(enhanced.status, 200, JSON.stringify(enhanced.json));
    assert.equal(enhanced.json.data[0].revised_prompt, BUILTIN_REWRITE, 'revised_prompt is what the builtin engine drew with');
    assert.equal(pngText(enhanced).Prompt, BUILTIN_REWRITE);
    assert.equal(pngText(enhanced)['Original prompt'], WORDS);

    const asGiven = await generate({ enhance_prompt: false });
    assert.equal(asGiven.status, 200, JSON.stringify(asGiven.json));
    assert.equal(asGiven.json.data[0].revised_prompt, WORDS, 'enhance_prompt false draws the prompt as given, on the builtin engine too');
    assert.equal(pngText(asGiven).Prompt, WORDS);

    assert.equal(comfy.prompts.length, sent, 'nothing reached ComfyUI');
  });
});
