import { dashscopeObserver, startFakeDashscope } from '../../../test/fakes/fake-dashscope.ts';
import { runEngineConformance } from '../testing/conformance.ts';
import { DashscopeEngine } from './dashscope-engine.ts';

runEngineConformance('DashScope (fake server)', async () => {
  const fake = await startFakeDashscope();
  return {
    engine: new DashscopeEngine({ id: 'dashscope-test', url: fake.url, apiKey: fake.apiKey, apiKeyEnv: 'DASHSCOPE_API_KEY' }),
    observer: dashscopeObserver(fake),
    capabilities: { progress: false },
    teardown: () => fake.close(),
  };
});
