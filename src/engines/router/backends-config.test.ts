import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BackendsConfigError,
  defaultBackendsConfig,
  loadBackendsConfig,
  parseBackendsConfig,
  validateBackendsConfig,
} from '../../config/backends.ts';

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof BackendsConfigError, `expected BackendsConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('expected the config to be rejected');
}

const FULL_YAML = `
models:
  alibaba/qwen-image-2-0:
    backends:
      - id: comfy-a
        type: comfyui
        url: http://10.0.0.5:8188
        priority: 0
        weight: 2
        concurrency: 2
        timeoutMs: 300000
        workflows:
          textToImage: { file: workflows/my-t2i.json }
          edit: false
      - id: vllm
        type: openai
        url: http://10.0.0.7:8000/v1
        model: Qwen/Qwen-Image
        flavor: vllm-omni
        extraFields: [negative_prompt, seed]
        extraParams: { num_inference_steps: 30, true_cfg_scale: 4.0 }
      - id: cloud
        type: dashscope
        apiKeyEnv: DASHSCOPE_API_KEY
        priority: 5
      - id: local
        type: builtin
        priority: 9
healthCheck: { intervalMs: 15000, timeoutMs: 3000 }
circuitBreaker: { failureThreshold: 3, resetMs: 30000 }
`;

describe('backends config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'backends-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts the documented example and resolves workflow paths against the file', async () => {
    const file = path.join(dir, 'backends.yaml');
    await writeFile(file, FULL_YAML);
    const config = await loadBackendsConfig(file);
    const backends = config.models['alibaba/qwen-image-2-0']!.backends;
    assert.deepEqual(backends.map((b) => b.type), ['comfyui', 'openai', 'dashscope', 'builtin']);
    const comfy = backends[0]!;
    assert.ok(comfy.type === 'comfyui');
    assert.equal(comfy.workflows?.textToImage?.file, path.join(dir, 'workflows/my-t2i.json'));
    assert.equal(comfy.workflows?.edit, false);
  });

  it('reads JSON by extension and accepts the default config', async () => {
    const file = path.join(dir, 'backends.json');
    await writeFile(file, JSON.stringify(defaultBackendsConfig()));
    assert.deepEqual(await loadBackendsConfig(file), defaultBackendsConfig());
    assert.doesNotThrow(() => validateBackendsConfig(defaultBackendsConfig()));
  });

  it('bad YAML names the line and column', () => {
    const issues = issuesOf(() => parseBackendsConfig('models:\n  a:\n    backends: [\n      {id: x, type: builtin\n', 'yaml', 'b.yaml'));
    assert.match(issues[0]!, /^invalid YAML at line \d+, column \d+/);
    assert.throws(() => parseBackendsConfig('{"models": ', 'json', 'b.json'), /b\.json: invalid backends configuration:\n {2}- invalid JSON/);
  });

  it('an unknown type lists the known ones, with the path in the file', () => {
    const issues = issuesOf(() => parseBackendsConfig('models:\n  m:\n    backends:\n      - {id: a, type: comfy, url: "http://x"}\n', 'yaml'));
    assert.deepEqual(issues, ['models["m"].backends[0].type: must be one of "builtin", "comfyui", "openai", "dashscope"']);
  });

  it('a missing url names the backend entry and the property', () => {
    const issues = issuesOf(() => parseBackendsConfig('models:\n  alibaba/qwen-image-2-0:\n    backends:\n      - {id: a, type: comfyui}\n', 'yaml'));
    assert.deepEqual(issues, ['models["alibaba/qwen-image-2-0"].backends[0]: missing required property "url"']);
  });

  it('catches typos, bad values, duplicate ids, bad URLs and a missing apiKeyEnv', () => {
    const issues = issuesOf(() =>
      validateBackendsConfig({
        models: {
          m: {
            backends: [
              { id: 'a', type: 'openai', url: 'http://x', extraFeilds: ['seed'] },
              { id: 'a', type: 'builtin', concurrency: 0 },
              { id: 'c', type: 'comfyui', url: 'not a url' },
              { id: 'd', type: 'dashscope' },
            ],
          },
        },
        healthCheck: { intervalMs: 5 },
      }),
    );
    assert.ok(issues.includes('models["m"].backends[0]: unknown property "extraFeilds"'), issues.join('\n'));
    assert.ok(issues.includes('models["m"].backends[1].concurrency: must be >= 1'), issues.join('\n'));
    assert.ok(issues.includes('models["m"].backends[3]: missing required property "apiKeyEnv"'), issues.join('\n'));
    assert.ok(issues.includes('healthCheck.intervalMs: must be >= 100'), issues.join('\n'));
    const cross = issuesOf(() =>
      validateBackendsConfig({ models: { m: { backends: [{ id: 'a', type: 'builtin' }, { id: 'a', type: 'comfyui', url: 'ftp://x' }] } } }),
    );
    assert.deepEqual(cross, ['models["m"].backends[1].id: "a" is already used by models["m"].backends[0]', 'models["m"].backends[1].url: must be an http:// or https:// URL']);
  });

  it('rejects empty models, an unknown extension, and an unreadable file', async () => {
    assert.deepEqual(issuesOf(() => validateBackendsConfig({ models: {} })), ['models: must NOT have fewer than 1 properties']);
    await assert.rejects(loadBackendsConfig(path.join(dir, 'backends.toml')), /unsupported file extension "\.toml"/);
    await assert.rejects(loadBackendsConfig(path.join(dir, 'missing.yaml')), /cannot read the file/);
  });
});
