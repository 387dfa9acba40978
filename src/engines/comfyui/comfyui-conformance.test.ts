import { comfyuiObserver, startFakeComfyui } from '../../../test/fakes/fake-comfyui.ts';
import { runEngineConformance } from '../testing/conformance.ts';
import { ComfyuiEngine } from './comfyui-engine.ts';

runEngineConformance('ComfyUI (bundled Qwen-Image workflows, fake server)', async () => {
  const fake = await startFakeComfyui();
  return {
    engine: new ComfyuiEngine({ id: 'comfy-test', url: fake.url }),
    observer: comfyuiObserver(fake),
    capabilities: { progress: true, maxReferenceImages: 3 },
    teardown: () => fake.close(),
  };
});
