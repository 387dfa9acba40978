/**
 * The caller's recent generations, from GET /v1/jobs (newest first, cursor pages): a click restores a job's
 * settings into the form; two ticked results are shown side by side with the settings that differ marked.
 */
import type { Api } from './api.ts';
import type { Settings } from './form.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The form's settings from a job's input (the seed it was drawn with is locked, so the restore reproduces it). */
export function settingsOfJob(job: any): Partial<Settings> {
  const input = job.input;
  return {
    model: job.model,
    prompt: input.prompt,
    negativePrompt: input.negative_prompt ?? '',
    size: { width: input.image_size.width, height: input.image_size.height },
    seedLocked: true,
    seed: input.seed,
    enhancePrompt: input.enhance_prompt,
    watermark: input.watermark,
    n: input.n ?? 1,
    outputFormat: input.output_format ?? 'png',
  };
}

function facts(job: any): Array<[string, string]> {
  const i = job.input;
  return [
    ['prompt', i.prompt],
    ['negative prompt', i.negative_prompt || '—'],
    ['size', `${i.image_size.width}×${i.image_size.height}`],
    ['seed', String(i.seed)],
    ['enhance_prompt', String(i.enhance_prompt)],
    ['watermark', String(i.watermark)],
    ['references', String(i.reference_images)],
    ['model', job.model],
  ];
}

export interface History {
  refresh(): Promise<void>;
}

export function createHistory(deps: { api: Api; restore: (s: Partial<Settings>, job: any) => void }): History {
  const list = $('history-list');
  const statusLine = $('history-status');
  const more = $<HTMLButtonElement>('history-more');
  const compareButton = $<HTMLButtonElement>('compare-button');
  const jobs = new Map<string, any>();
  const selected: string[] = [];
  let cursor: string | null = null;

  const updateCompare = () => {
    compareButton.disabled = selected.length !== 2;
    statusLine.textContent = selected.length === 0 ? '' : `${selected.length} of 2 selected for comparison`;
  };

  const item = (job: any) => {
    const li = document.createElement('li');
    li.dataset.jobId = job.id;
    const first = job.result?.data?.[0];
    let img: HTMLElement;
    if (first?.url) {
      img = document.createElement('img');
      (img as HTMLImageElement).src = first.url;
      (img as HTMLImageElement).alt = `Result of job ${job.id}`;
    } else {
      img = document.createElement('div');
      img.className = 'no-image';
      img.textContent = job.status === 'succeeded' ? 'inline image' : `no image (${job.status})`;
    }
    const text = document.createElement('div');
    const prompt = document.createElement('p');
    prompt.className = 'prompt';
    prompt.textContent = job.input.prompt;
    const meta = document.createElement('p');
    meta.className = 'hint';
    const state = document.createElement('span');
    state.className = `status-${job.status}`;
    state.textContent = job.status;
    meta.append(state, ` · seed ${job.input.seed} · ${job.input.image_size.width}×${job.input.image_size.height} · ${new Date(job.created_at).toLocaleString()}`);
    const row = document.createElement('div');
    row.className = 'row';
    const restore = document.createElement('button');
    restore.type = 'button';
    restore.className = 'restore';
    restore.textContent = 'Restore settings';
    restore.setAttribute('aria-label', `Restore the settings of job ${job.id}: ${job.input.prompt.slice(0, 60)}`);
    restore.addEventListener('click', () => deps.restore(settingsOfJob(job), job));
    row.append(restore);
    if (first?.url) {
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.id = `cmp-${job.id}`;
      box.className = 'compare-pick';
      const label = document.createElement('label');
      label.htmlFor = box.id;
      label.textContent = 'Compare';
      box.addEventListener('change', () => {
        const at = selected.indexOf(job.id);
        if (box.checked && at < 0) selected.push(job.id);
        if (!box.checked && at >= 0) selected.splice(at, 1);
        // At most two: ticking a third unticks the oldest pick.
        while (selected.length > 2) {
          const dropped = selected.shift()!;
          const other = document.getElementById(`cmp-${dropped}`) as HTMLInputElement | null;
          if (other) other.checked = false;
        }
        updateCompare();
      });
      row.append(box, label);
    }
    text.append(prompt, meta, row);
    li.append(img, text);
    return li;
  };

  const load = async (append: boolean) => {
    statusLine.textContent = 'Loading…';
    const page = await deps.api.get(`/v1/jobs?limit=20${append && cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`);
    if (!append) {
      list.replaceChildren();
      jobs.clear();
      selected.splice(0);
    }
    for (const job of page.data) {
      jobs.set(job.id, job);
      list.append(item(job));
    }
    cursor = page.next_cursor;
    more.hidden = !page.has_more;
    statusLine.textContent = list.children.length === 0 ? 'No generations with this key yet.' : `${list.children.length} shown`;
    updateCompare();
  };

  compareButton.addEventListener('click', () => {
    const [a, b] = selected.map((id) => jobs.get(id));
    if (!a || !b) return;
    const grid = $('compare-grid');
    grid.replaceChildren();
    const fa = facts(a);
    const fb = facts(b);
    for (const [job, own, other] of [[a, fa, fb], [b, fb, fa]] as const) {
      const figure = document.createElement('figure');
      figure.className = 'compare-item';
      const img = document.createElement('img');
      img.src = job.result.data[0].url;
      img.alt = `Job ${job.id}: ${job.input.prompt}`;
      const dl = document.createElement('dl');
      dl.className = 'facts';
      own.forEach(([k, v], i) => {
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        // What differs between the two is in bold.
        if (other[i]![1] !== v) {
          const strong = document.createElement('strong');
          strong.textContent = v;
          dd.append(strong);
        } else dd.textContent = v;
        dl.append(dt, dd);
      });
      figure.append(img, dl);
      grid.append(figure);
    }
    $('compare').hidden = false;
    $('compare').scrollIntoView({ block: 'nearest' });
  });
  $('history-refresh').addEventListener('click', () => void load(false).catch((err: Error) => (statusLine.textContent = err.message)));
  more.addEventListener('click', () => void load(true).catch((err: Error) => (statusLine.textContent = err.message)));

  return { refresh: () => load(false) };
}
