/**
 * One generation from the page: submitted as an async job (Prefer: respond-async), followed over its event
 * stream (queue position, steps, preview frames), cancelable, then shown with its image, seed, timing, cost
 * and the request as code. The server's errors go next to the field they name.
 */
import { ApiFailure, type Api } from './api.ts';
import { checkSettings, clearErrors, showFieldError, toRequestBody, type GenerationForm, type PlaygroundConfig, type Settings } from './form.ts';
import type { ReferenceList } from './references.ts';
import { renderSnippet, type SnippetLanguage } from './snippets.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export function formatUsd(usd: number): string {
  return `$${usd.toFixed(usd < 0.01 ? 6 : 4).replace(/0+$/, '').replace(/\.$/, '.00')}`;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** The price before sending: the model's price per image (PRICES_USD) × n. */
export function costBefore(config: PlaygroundConfig, s: Settings): string {
  const price = config.prices_usd[s.model];
  if (price === undefined) return `No price is configured for ${s.model}: the server will refuse it.`;
  const usd = Math.round(price * s.n * 1e9) / 1e9;
  const credits = Math.round(usd * config.credits_per_usd);
  return `Cost: ${s.n} × ${formatUsd(price)} = ${formatUsd(usd)} (${credits.toLocaleString('en')} credits)`;
}

export interface Generator {
  /** The job the page is following, if any. */
  currentJobId(): string | null;
}

export function createGenerator(deps: {
  api: Api;
  hasKey: () => boolean;
  form: GenerationForm;
  refs: ReferenceList;
  config: PlaygroundConfig;
  onFinished: () => void;
}): Generator {
  const { api, form, refs, config } = deps;
  const status = $('status');
  const progress = $<HTMLProgressElement>('progress');
  const preview = $<HTMLImageElement>('preview');
  const generateButton = $<HTMLButtonElement>('generate');
  const cancelButton = $<HTMLButtonElement>('cancel');
  let jobId: string | null = null;
  let lastBody: Record<string, unknown> | null = null;
  let language: SnippetLanguage = 'curl';

  const updateCost = () => ($('cost-before').textContent = costBefore(config, form.read()));
  form.onChange(updateCost);
  updateCost();

  const setBusy = (busy: boolean) => {
    generateButton.disabled = busy;
    cancelButton.disabled = !busy;
    document.body.dataset.state = busy ? 'busy' : 'idle';
  };

  const showSnippet = () => {
    if (!lastBody) return;
    $('snippets').hidden = false;
    $('snippet').textContent = renderSnippet(language, location.origin, lastBody);
  };
  const snippetTabs: Array<[SnippetLanguage, HTMLElement]> = [
    ['curl', $('snip-curl')],
    ['python', $('snip-python')],
    ['js', $('snip-js')],
  ];
  for (const [lang, tab] of snippetTabs) {
    tab.addEventListener('click', () => {
      language = lang;
      for (const [l, t] of snippetTabs) {
        t.setAttribute('aria-selected', String(l === lang));
        t.tabIndex = l === lang ? 0 : -1;
      }
      showSnippet();
    });
  }
  $('copy-snippet').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('snippet').textContent ?? '');
      $('copy-status').textContent = 'Copied.';
    } catch {
      // Clipboard access needs a secure context or a permission: select the text so Ctrl+C works.
      const range = document.createRange();
      range.selectNodeContents($('snippet'));
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      $('copy-status').textContent = 'Selected: press Ctrl+C to copy.';
    }
  });

  const showResult = (job: any) => {
    const result = job.result;
    const images = $('result-images');
    images.replaceChildren();
    const ext = job.input?.output_format === 'jpeg' ? 'jpg' : (job.input?.output_format ?? 'png');
    for (const [i, item] of (result.data as any[]).entries()) {
      const figure = document.createElement('figure');
      const img = document.createElement('img');
      img.src = item.url ?? `data:image/${ext};base64,${item.b64_json}`;
      img.alt = `Generated image ${i + 1} (seed ${item.seed}) for: ${job.input?.prompt ?? ''}`;
      img.className = 'result-image';
      const caption = document.createElement('figcaption');
      caption.className = 'row';
      const download = document.createElement('a');
      download.href = img.src;
      download.download = `qwen-image-${item.seed}.${ext}`;
      download.textContent = `Download image ${i + 1} (${ext.toUpperCase()})`;
      download.className = 'button download';
      const open = document.createElement('a');
      open.href = img.src;
      open.target = '_blank';
      open.rel = 'noopener';
      open.textContent = 'Open at full size';
      caption.append(download, open);
      figure.append(img, caption);
      images.append(figure);
    }
    const seeds = (result.data as any[]).map((d) => d.seed);
    $('result-seed').textContent = seeds.join(', ');
    if (seeds.length > 0) form.setLastSeed(seeds[0]);
    const total = job.completed_at && job.created_at ? job.completed_at - job.created_at : null;
    const engine = job.timings?.engine_ms;
    $('result-timing').textContent = [total !== null ? `${formatMs(total)} from submit to done` : null, engine !== undefined ? `engine ${formatMs(engine)}` : null].filter(Boolean).join(', ');
    const usage = result.meta?.usage;
    $('cost-after').textContent = usage ? `${Number(usage.credits_used).toLocaleString('en')} credits (${formatUsd(usage.usd_spent)})` : 'not reported';
    const revised = (result.data as any[])[0]?.revised_prompt;
    const changed = typeof revised === 'string' && revised !== job.input?.prompt;
    $('revised-label').hidden = $('revised-prompt').hidden = !changed;
    $('revised-prompt').textContent = changed ? revised : '';
    $('result').hidden = false;
  };

  const finish = (job: any) => {
    jobId = null;
    setBusy(false);
    progress.hidden = true;
    // A canceled or failed job's last frame is not a result: it goes too.
    preview.hidden = true;
    if (job.status === 'succeeded') {
      status.textContent = `Done: job ${job.id}.`;
      showResult(job);
    } else if (job.status === 'canceled') {
      status.textContent = `Canceled: job ${job.id} was stopped before it finished; it is not charged.`;
    } else {
      const err = job.error ?? { message: 'the job failed', param: null };
      status.textContent = `Failed: ${err.message}`;
      showFieldError(err.param, err.message);
    }
    document.body.dataset.lastStatus = job.status;
    deps.onFinished();
  };

  const follow = async (id: string, signal: AbortSignal) => {
    let terminal: any = null;
    // The stream ends after the terminal event; a dropped connection is followed again from the current state.
    for (let attempt = 0; attempt < 5 && !terminal; attempt++) {
      try {
        await api.followJob(id, (e) => {
          switch (e.event) {
            case 'queued':
              status.textContent = e.data.queue_position === 0 ? 'Queued: next in line.' : `Queued: ${e.data.queue_position} ahead.`;
              break;
            case 'running':
              status.textContent = 'Running…';
              break;
            case 'progress':
              progress.hidden = false;
              if (e.data.steps) progress.max = e.data.steps;
              progress.value = e.data.step;
              status.textContent = e.data.steps ? `Step ${e.data.step} of ${e.data.steps}` : `Step ${e.data.step}`;
              if (e.data.preview) {
                preview.src = e.data.preview;
                preview.hidden = false;
              }
              break;
            case 'succeeded':
            case 'failed':
            case 'canceled':
              terminal = e.data;
              break;
          }
        }, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiFailure) throw err;
      }
      if (!terminal) {
        const job = await api.get(`/v1/jobs/${id}`);
        if (['succeeded', 'failed', 'canceled'].includes(job.status)) terminal = job;
      }
    }
    if (terminal) finish(terminal);
    else {
      setBusy(false);
      status.textContent = `Lost the event stream of job ${id}; see the History tab for its outcome.`;
    }
  };

  $('gen-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    if (!deps.hasKey()) {
      showFieldError('authorization', 'Enter an API key first.');
      return;
    }
    const settings = form.read();
    const problem = checkSettings(settings, form.limits);
    if (problem) {
      showFieldError(problem.param, problem.message);
      return;
    }
    const body = toRequestBody(settings, refs.items().map((r) => r.src), { size: config.default_size });
    setBusy(true);
    $('result').hidden = true;
    preview.hidden = true;
    progress.hidden = true;
    progress.value = 0;
    status.textContent = 'Submitting…';
    document.body.dataset.lastStatus = 'submitting';
    try {
      const job = await api.post('/v1/images/generations', body, { prefer: 'respond-async' });
      jobId = job.id;
      document.body.dataset.jobId = job.id;
      lastBody = body;
      showSnippet();
      status.textContent = job.queue_position === 0 ? 'Queued: next in line.' : job.queue_position ? `Queued: ${job.queue_position} ahead.` : 'Submitted.';
      await follow(job.id, new AbortController().signal);
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiFailure) {
        status.textContent = `Refused: ${err.message}`;
        showFieldError(err.body.param, err.message);
      } else {
        status.textContent = `Could not reach the server: ${(err as Error).message}`;
      }
      document.body.dataset.lastStatus = 'refused';
    }
  });

  cancelButton.addEventListener('click', async () => {
    if (!jobId) return;
    cancelButton.disabled = true;
    status.textContent = 'Canceling…';
    try {
      await api.post(`/v1/jobs/${jobId}/cancel`, undefined);
    } catch (err) {
      // A job that finished meanwhile answers 409: its terminal event is on its way.
      if (err instanceof ApiFailure && err.body.code !== 'job_finished') status.textContent = `Cancel refused: ${err.message}`;
    }
  });

  return { currentJobId: () => jobId };
}
