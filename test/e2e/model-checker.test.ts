/**
 * The scene checker behind model/eval.py's new-vocabulary row (model/checker.py detect2): on scenes of the wider
 * vocabulary (scenes.py v2: new things, sizes, counts, plain backgrounds) drawn directly by the renderer at
 * 1024×768, it must read back every attribute. The checker paints its candidates on a cropped grid of its own, so
 * this compares two separate drawing paths; a checker that cannot read the renderer's scenes would make the
 * evaluation's numbers meaningless.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/server.ts';

test('model/checker.py --selftest: every attribute of 6 v2 scenes is read back', async () => {
  const { stdout } = await promisify(execFile)('/usr/bin/python3', [path.join(REPO_ROOT, 'model/checker.py'), '--selftest', '6'], {
    timeout: 240_000,
  });
  const res = JSON.parse(stdout.trim().split('\n').at(-1)!) as { correct: number; checked: number; failures: string[] };
  assert.ok(res.checked >= 30, `attributes checked: ${res.checked}`);
  assert.deepEqual(res.failures, []);
  assert.equal(res.correct, res.checked);
});

test('the prompt adapter\'s v2 word list is exactly the words scenes.py appends for data v2', async () => {
  const { BUNDLED_MODEL_WORDS, BUNDLED_MODEL_WORDS_V2 } = await import('../../src/prompt/vocabulary.ts');
  const { stdout } = await promisify(execFile)(
    '/usr/bin/python3',
    ['-c', 'import json, sys; sys.path.insert(0, "model"); import scenes as S; print(json.dumps(S.VOCAB2[len(S.VOCAB):]))'],
    { cwd: REPO_ROOT, timeout: 60_000 },
  );
  const appended = JSON.parse(stdout) as string[];
  const added = BUNDLED_MODEL_WORDS_V2.filter((w) => !BUNDLED_MODEL_WORDS.includes(w));
  assert.deepEqual([...added].sort(), [...appended].sort());
});
