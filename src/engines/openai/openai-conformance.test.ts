import { openaiObserver, startFakeOpenaiImages } from '../../../test/fakes/fake-openai-images.ts';
import { runEngineConformance } from '../testing/conformance.ts';
import { OpenaiEngine } from './openai-engine.ts';

runEngineConformance('OpenAI-compatible (vllm-omni flavor, fake server)', async () => {
  const fake = await startFakeOpenaiImages();
  return {
    engine: new OpenaiEngine({ id: 'vllm-test', url: `${fake.url}/v1`, flavor: 'vllm-omni', model: 'Qwen/Qwen-Image' }),
    observer: openaiObserver(fake),
    capabilities: { progress: false },
    teardown: () => fake.close(),
  };
});
