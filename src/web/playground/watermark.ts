/** The watermark tab: an image dropped, pasted or picked goes to POST /v1/watermark/detect as a multipart upload. */
import { ApiFailure, type Api } from './api.ts';
import { showFieldError } from './form.ts';
import { makeDropZone } from './drop-zone.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export function setUpWatermarkCheck(api: Api): void {
  const drop = $('wm-drop');
  const picker = $<HTMLInputElement>('wm-file');
  const result = $('wm-result');
  let thumbUrl: string | null = null;

  const check = async (file: File) => {
    $('err-image').textContent = '';
    result.hidden = true;
    drop.setAttribute('aria-busy', 'true');
    const form = new FormData();
    form.append('image', file, file.name || 'image');
    try {
      const answer = await api.postForm('/v1/watermark/detect', form);
      if (thumbUrl) URL.revokeObjectURL(thumbUrl);
      thumbUrl = URL.createObjectURL(file);
      $<HTMLImageElement>('wm-thumb').src = thumbUrl;
      $('wm-detected').textContent = answer.detected ? 'yes: this server\'s mark is in the image' : 'no mark found';
      $('wm-confidence').textContent = `${(answer.confidence * 100).toFixed(1)} %`;
      $('wm-payload').textContent = answer.payload ? `issuer ${answer.payload.issuer_id}, generation ${answer.payload.generation_id}` : '—';
      result.dataset.detected = String(answer.detected);
      result.hidden = false;
    } catch (err) {
      showFieldError('image', err instanceof ApiFailure ? err.message : `could not reach the server: ${(err as Error).message}`);
    } finally {
      drop.removeAttribute('aria-busy');
    }
  };

  makeDropZone(drop, (dt) => {
    const file = dt.files[0];
    if (file) void check(file);
  });
  picker.addEventListener('change', () => {
    const file = picker.files?.[0];
    if (file) void check(file).then(() => (picker.value = ''));
  });
  document.addEventListener('paste', (e) => {
    if ($('panel-watermark').hidden) return;
    const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
    if (!file) return;
    e.preventDefault();
    void check(file);
  });
}
