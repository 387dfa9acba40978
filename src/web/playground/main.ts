/**
 * The playground page's entry: loads the form's limits from /playground/config.json (the server's own
 * request schema), asks for the API key once (sessionStorage), and wires the tabs.
 */
import { ApiFailure, createApi, readStoredKey, storeKey } from './api.ts';
import { clearErrors, createGenerationForm, showFieldError, type PlaygroundConfig } from './form.ts';
import { createReferenceList } from './references.ts';
import { createGenerator } from './generate.ts';
import { createHistory } from './history.ts';
import { setUpWatermarkCheck } from './watermark.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** WAI-ARIA tabs: arrow keys move between tabs, Home/End to the ends; only the selected tab is in the Tab order. */
function setUpTabs(onSelect: (panelId: string) => void): (tabId: string) => void {
  const tabs = [...document.querySelectorAll<HTMLButtonElement>('.tabs:not(.small) [role=tab]')];
  const select = (tab: HTMLButtonElement) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')!).hidden = !on;
    }
    onSelect(tab.getAttribute('aria-controls')!);
  };
  for (const [i, tab] of tabs.entries()) {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (e) => {
      const to = e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : e.key === 'Home' ? 0 : e.key === 'End' ? tabs.length - 1 : null;
      if (to === null) return;
      e.preventDefault();
      const next = tabs[(to + tabs.length) % tabs.length]!;
      next.focus();
      select(next);
    });
  }
  return (tabId) => select($<HTMLButtonElement>(tabId));
}

async function start(): Promise<void> {
  const config = (await (await fetch('/playground/config.json')).json()) as PlaygroundConfig;
  let key = readStoredKey();
  const api = createApi(() => key);

  const refs = createReferenceList(config.request_schema.properties.image_urls.maxItems, (message) => showFieldError('image_urls', message));
  const form = createGenerationForm(config, refs);
  const history = createHistory({
    api,
    restore: (settings, job) => {
      clearErrors();
      refs.clear();
      form.apply(settings);
      selectTab('tab-generate');
      $('status').textContent = job.input.reference_images > 0
        ? `Settings of job ${job.id} restored. It had ${job.input.reference_images} reference image(s), which jobs do not keep: add them again for the same edit.`
        : `Settings of job ${job.id} restored.`;
      $('prompt').focus();
    },
  });
  const selectTab = setUpTabs((panel) => {
    if (panel === 'panel-history' && key) void history.refresh().catch((err: Error) => ($('history-status').textContent = err.message));
  });
  createGenerator({ api, hasKey: () => key !== null, form, refs, config, onFinished: () => undefined });
  setUpWatermarkCheck(api);

  const keyInput = $<HTMLInputElement>('api-key');
  const keyStatus = $('key-status');
  const forget = $<HTMLButtonElement>('key-forget');
  // A key is checked by listing the models (GET /v1/models needs one), which also brings their health.
  const useKey = async () => {
    $('err-authorization').textContent = '';
    keyInput.removeAttribute('aria-invalid');
    try {
      const models = await api.get('/v1/models');
      form.setModels(
        (models.data as any[]).map((m) => ({ id: m.id, healthy: m.healthy, detail: m.engine?.health?.detail ?? m.engine?.description ?? '' })),
      );
      keyStatus.textContent = 'Key accepted; it is kept in this tab only.';
      forget.hidden = false;
      document.body.dataset.key = 'ok';
    } catch (err) {
      const message = err instanceof ApiFailure ? err.message : `could not reach the server: ${(err as Error).message}`;
      keyStatus.textContent = '';
      showFieldError('authorization', message);
      document.body.dataset.key = 'refused';
    }
  };
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    key = keyInput.value.trim() || null;
    storeKey(key);
    if (key) void useKey();
  });
  forget.addEventListener('click', () => {
    key = null;
    storeKey(null);
    keyInput.value = '';
    forget.hidden = true;
    keyStatus.textContent = 'Key forgotten.';
    document.body.dataset.key = '';
  });
  if (key) {
    keyInput.value = key;
    void useKey();
  }
  document.body.dataset.ready = 'true';
}

void start().catch((err: Error) => {
  $('err-form').textContent = `The playground could not start: ${err.message}`;
});
