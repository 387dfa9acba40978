/**
 * The generation form. Its limits come from the JSON Schema the server validates requests with
 * (GET /playground/config.json carries the very object), so the form cannot drift from the API: the prompt's
 * maxLength, the size bounds and step, the seed range, the number of reference images, the enums.
 */
import type { ReferenceList } from './references.ts';

export interface PlaygroundConfig {
  request_schema: any;
  size_presets: Record<string, { width: number; height: number }>;
  default_size: string;
  prices_usd: Record<string, number>;
  credits_per_usd: number;
  max_images_per_request: number;
}

export type SizeChoice = { preset: string } | { width: number; height: number };

/** What the form holds; `toRequestBody` turns it into the exact JSON body sent. */
export interface Settings {
  model: string;
  prompt: string;
  negativePrompt: string;
  size: SizeChoice;
  seedLocked: boolean;
  seed: number | null;
  enhancePrompt: boolean;
  watermark: boolean;
  n: number;
  outputFormat: string;
}

export interface Limits {
  promptMax: number;
  negativeMax: number;
  side: { min: number; max: number; step: number };
  seed: { min: number; max: number };
  refsMax: number;
  nMax: number;
  models: string[];
  outputFormats: string[];
}

export function limitsOf(config: PlaygroundConfig): Limits {
  const p = config.request_schema.properties;
  const objectBranch = (p.image_size.anyOf as any[]).find((b) => b.type === 'object');
  const w = objectBranch.properties.width;
  return {
    promptMax: p.prompt.maxLength,
    negativeMax: p.negative_prompt.maxLength,
    side: { min: w.minimum, max: w.maximum, step: w.multipleOf },
    seed: { min: p.seed.minimum, max: p.seed.maximum },
    refsMax: p.image_urls.maxItems,
    nMax: Math.max(1, config.max_images_per_request),
    models: p.model.enum ?? [],
    outputFormats: p.output_format.enum ?? ['png'],
  };
}

/** The nearest multiple of the step inside the bounds: what the server accepts. */
export function snapSide(value: number, side: Limits['side']): number {
  if (!Number.isFinite(value)) return side.min;
  const snapped = Math.round(value / side.step) * side.step;
  return Math.min(side.max, Math.max(side.min, snapped));
}

/** Code points, as the server's validator counts string length (an emoji is one character, not two). */
export function charCount(text: string): number {
  return [...text].length;
}

export function toRequestBody(s: Settings, references: string[], defaults: { size: string }): Record<string, unknown> {
  const body: Record<string, unknown> = { model: s.model, prompt: s.prompt };
  if (references.length > 0) body.image_urls = references;
  body.image_size = 'preset' in s.size ? s.size.preset : { width: s.size.width, height: s.size.height };
  if ('preset' in s.size && s.size.preset === defaults.size) delete body.image_size;
  if (s.negativePrompt !== '') body.negative_prompt = s.negativePrompt;
  if (s.seedLocked && s.seed !== null) body.seed = s.seed;
  body.enhance_prompt = s.enhancePrompt;
  body.watermark = s.watermark;
  if (s.n !== 1) body.n = s.n;
  if (s.outputFormat !== 'png') body.output_format = s.outputFormat;
  return body;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The error slot of a field the API names: image_size.width → err-image_size, image_urls[1] → err-image_urls. */
export function errorSlotFor(param: string | null): HTMLElement {
  const base = (param ?? '').split(/[.[]/)[0]!;
  const aliases: Record<string, string> = { size: 'image_size', Authorization: 'authorization', 'Idempotency-Key': 'form' };
  return document.getElementById(`err-${aliases[base] ?? base}`) ?? $('err-form');
}

/** The control to mark invalid for a param, when the page has one. */
function controlFor(param: string | null): HTMLElement | null {
  if (!param) return null;
  if (param === 'image_size.width') return $('width');
  if (param === 'image_size.height') return $('height');
  const base = param.split(/[.[]/)[0]!;
  const ids: Record<string, string> = { image_size: 'width', size: 'width', image_urls: 'refs-drop', authorization: 'api-key' };
  return document.getElementById(ids[base] ?? base);
}

export function clearErrors(): void {
  for (const el of document.querySelectorAll<HTMLElement>('.field-error')) el.textContent = '';
  for (const el of document.querySelectorAll<HTMLElement>('[aria-invalid=true]')) el.removeAttribute('aria-invalid');
}

export function showFieldError(param: string | null, message: string): void {
  const slot = errorSlotFor(param);
  slot.textContent = message;
  const control = controlFor(param);
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus({ preventScroll: false });
  }
  slot.scrollIntoView({ block: 'nearest' });
}

export interface GenerationForm {
  limits: Limits;
  read(): Settings;
  apply(s: Partial<Settings>): void;
  setModels(models: Array<{ id: string; healthy: boolean; detail: string }>): void;
  setLastSeed(seed: number): void;
  onChange(listener: () => void): void;
}

export function createGenerationForm(config: PlaygroundConfig, refs: ReferenceList): GenerationForm {
  const limits = limitsOf(config);
  const props = config.request_schema.properties;
  const listeners: Array<() => void> = [];
  const changed = () => listeners.forEach((l) => l());

  const model = $<HTMLSelectElement>('model');
  const prompt = $<HTMLTextAreaElement>('prompt');
  const negative = $<HTMLTextAreaElement>('negative_prompt');
  const width = $<HTMLInputElement>('width');
  const height = $<HTMLInputElement>('height');
  const seedLock = $<HTMLInputElement>('seed-lock');
  const seed = $<HTMLInputElement>('seed');
  const enhance = $<HTMLInputElement>('enhance_prompt');
  const watermark = $<HTMLInputElement>('watermark');
  const n = $<HTMLInputElement>('n');
  const format = $<HTMLSelectElement>('output_format');

  for (const id of limits.models) model.add(new Option(id, id));
  for (const f of limits.outputFormats) format.add(new Option(f, f));

  const counter = (input: HTMLTextAreaElement, out: HTMLElement, max: number) => {
    const update = () => {
      const count = charCount(input.value);
      out.textContent = `${count} / ${max} characters`;
      out.classList.toggle('over', count > max);
    };
    input.addEventListener('input', update);
    update();
    return update;
  };
  const updatePromptCount = counter(prompt, $('prompt-count'), limits.promptMax);
  const updateNegativeCount = counter(negative, $('negative-count'), limits.negativeMax);

  // Size: the schema's presets with their pixels, then "custom" with the object branch's bounds.
  const presets = $('size-presets');
  const presetNames: string[] = (props.image_size.anyOf as any[]).find((b) => b.type === 'string').enum;
  const radios: HTMLInputElement[] = [];
  for (const name of [...presetNames, 'custom']) {
    const label = document.createElement('label');
    const radio = document.createElement('input');
    radio.type = 'radio';
    radio.name = 'size';
    radio.value = name;
    radio.id = `size-${name}`;
    const px = config.size_presets[name];
    label.htmlFor = radio.id;
    label.append(radio, px ? `${name} (${px.width}×${px.height})` : 'custom');
    presets.append(label);
    radios.push(radio);
  }
  for (const input of [width, height]) {
    input.min = String(limits.side.min);
    input.max = String(limits.side.max);
    input.step = String(limits.side.step);
  }
  $('size-rule').textContent = `Width and height from ${limits.side.min} to ${limits.side.max} px, in steps of ${limits.side.step} (a value in between snaps to the nearest).`;
  const selectedSize = () => radios.find((r) => r.checked)?.value ?? config.default_size;
  const showSize = (name: string) => {
    const r = radios.find((x) => x.value === name);
    if (r) r.checked = true;
    const px = config.size_presets[name];
    if (px) {
      width.value = String(px.width);
      height.value = String(px.height);
    }
    width.disabled = height.disabled = false;
  };
  for (const r of radios) r.addEventListener('change', () => (showSize(r.value), changed()));
  for (const input of [width, height]) {
    // Typing a side makes the size custom; leaving the field snaps it to what the server accepts.
    input.addEventListener('input', () => {
      const r = radios.find((x) => x.value === 'custom');
      if (r) r.checked = true;
    });
    input.addEventListener('change', () => {
      input.value = String(snapSide(Number(input.value), limits.side));
      changed();
    });
  }
  showSize(config.default_size);

  seed.min = String(limits.seed.min);
  seed.max = String(limits.seed.max);
  const seedHint = () =>
    ($('seed-hint').textContent = seedLock.checked
      ? 'Locked: the same seed, prompt and settings draw the same image again.'
      : 'Unlocked: the server picks a random seed and the page shows it afterwards.');
  seedLock.addEventListener('change', () => {
    seed.disabled = !seedLock.checked;
    seedHint();
    if (seedLock.checked && seed.value === '') seed.value = String(Math.floor(Math.random() * 1_000_000));
    changed();
  });
  $('reuse-seed').addEventListener('click', () => {
    seedLock.checked = true;
    seed.disabled = false;
    seed.value = $('last-seed').textContent ?? '';
    seedHint();
    seed.focus();
    changed();
  });

  // What each toggle does: the schema's own description of the field, and its default.
  enhance.checked = props.enhance_prompt.default === true;
  watermark.checked = props.watermark.default === true;
  $('enhance-hint').textContent = props.enhance_prompt.description;
  $('watermark-hint').textContent = props.watermark.description;

  n.min = '1';
  n.max = String(limits.nMax);
  n.value = '1';
  $('refs-limit').textContent = `(up to ${limits.refsMax}, in order: the first is image 1)`;

  for (const el of [model, n, format, enhance, watermark, seed]) el.addEventListener('change', changed);
  refs.onChange(changed);

  return {
    limits,
    read(): Settings {
      const size = selectedSize();
      return {
        model: model.value,
        prompt: prompt.value,
        negativePrompt: negative.value,
        size: size === 'custom' ? { width: Number(width.value), height: Number(height.value) } : { preset: size },
        seedLocked: seedLock.checked,
        seed: seed.value === '' ? null : Number(seed.value),
        enhancePrompt: enhance.checked,
        watermark: watermark.checked,
        n: Number(n.value) || 1,
        outputFormat: format.value,
      };
    },
    apply(s) {
      if (s.model !== undefined) {
        if (![...model.options].some((o) => o.value === s.model)) model.add(new Option(s.model, s.model));
        model.value = s.model;
      }
      if (s.prompt !== undefined) prompt.value = s.prompt;
      if (s.negativePrompt !== undefined) negative.value = s.negativePrompt;
      if (s.size !== undefined) {
        if ('preset' in s.size) showSize(s.size.preset);
        else {
          const match = Object.entries(config.size_presets).find(([, px]) => 'width' in s.size! && px.width === s.size.width && px.height === s.size.height);
          if (match) showSize(match[0]);
          else {
            showSize('custom');
            width.value = String(s.size.width);
            height.value = String(s.size.height);
          }
        }
      }
      if (s.seedLocked !== undefined) {
        seedLock.checked = s.seedLocked;
        seed.disabled = !s.seedLocked;
        seedHint();
      }
      if (s.seed !== undefined) seed.value = s.seed === null ? '' : String(s.seed);
      if (s.enhancePrompt !== undefined) enhance.checked = s.enhancePrompt;
      if (s.watermark !== undefined) watermark.checked = s.watermark;
      if (s.n !== undefined) n.value = String(s.n);
      if (s.outputFormat !== undefined) format.value = s.outputFormat;
      updatePromptCount();
      updateNegativeCount();
      changed();
    },
    setModels(models) {
      const known = new Map(models.map((m) => [m.id, m]));
      for (const m of models) if (![...model.options].some((o) => o.value === m.id)) model.add(new Option(m.id, m.id));
      for (const o of [...model.options]) {
        const m = known.get(o.value);
        o.textContent = m ? `${m.id}${m.healthy ? '' : ' (unhealthy)'}` : o.value;
      }
      const showHealth = () => {
        const m = known.get(model.value);
        $('model-health').textContent = m ? (m.healthy ? `Backend healthy${m.detail ? `: ${m.detail}` : ''}` : `Backend unhealthy: ${m.detail || 'no detail'}`) : 'Not served by this server.';
      };
      model.addEventListener('change', showHealth);
      showHealth();
    },
    setLastSeed(value) {
      $('last-seed').textContent = String(value);
      $('last-seed-row').hidden = false;
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };
}

/** Client-side checks with the schema's limits and the server's wording; the server checks again. */
export function checkSettings(s: Settings, limits: Limits): { param: string; message: string } | null {
  if (s.prompt.trim() === '') return { param: 'prompt', message: 'prompt is required' };
  const count = charCount(s.prompt);
  if (count > limits.promptMax) return { param: 'prompt', message: `prompt must be at most ${limits.promptMax} characters long, got ${count}` };
  const neg = charCount(s.negativePrompt);
  if (neg > limits.negativeMax) return { param: 'negative_prompt', message: `negative_prompt must be at most ${limits.negativeMax} characters long, got ${neg}` };
  if (s.seedLocked && (s.seed === null || !Number.isInteger(s.seed) || s.seed < limits.seed.min || s.seed > limits.seed.max)) {
    return { param: 'seed', message: `seed must be an integer from ${limits.seed.min} to ${limits.seed.max}` };
  }
  if (!Number.isInteger(s.n) || s.n < 1 || s.n > limits.nMax) return { param: 'n', message: `n must be from 1 to ${limits.nMax} on this server` };
  return null;
}
