/**
 * Reference images for an edit: by URL, file picker, drag and drop or paste; shown as thumbnails in the order
 * they are sent (the first is reference image 1), with buttons to move and remove each. Files become base64
 * data: URIs, which image_urls accepts as well as http(s) URLs, so the server needs no access to the browser's files.
 */
import { makeDropZone } from './drop-zone.ts';

export interface Reference {
  /** What goes in image_urls: an http(s) URL or a data: URI. */
  src: string;
  /** What the thumbnail says: the file name or the URL. */
  label: string;
}

export interface ReferenceList {
  items(): Reference[];
  add(ref: Reference): void;
  addFiles(files: Iterable<File>): Promise<void>;
  clear(): void;
  onChange(listener: () => void): void;
}

function readAsDataUri(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

export function createReferenceList(max: number, report: (message: string) => void): ReferenceList {
  const list = document.getElementById('refs-list') as HTMLOListElement;
  const items: Reference[] = [];
  const listeners: Array<() => void> = [];

  const render = () => {
    list.replaceChildren();
    items.forEach((ref, i) => {
      const li = document.createElement('li');
      const img = document.createElement('img');
      img.src = ref.src;
      img.alt = `Reference image ${i + 1}: ${ref.label}`;
      const caption = document.createElement('div');
      caption.className = 'hint';
      caption.textContent = `${i + 1}. ${ref.label.length > 40 ? `${ref.label.slice(0, 37)}…` : ref.label}`;
      const row = document.createElement('div');
      row.className = 'row';
      const button = (text: string, label: string, disabled: boolean, action: () => void) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = text;
        b.setAttribute('aria-label', label);
        b.disabled = disabled;
        b.addEventListener('click', () => {
          action();
          render();
          listeners.forEach((l) => l());
        });
        return b;
      };
      row.append(
        button('←', `Move reference image ${i + 1} earlier`, i === 0, () => items.splice(i - 1, 0, ...items.splice(i, 1))),
        button('→', `Move reference image ${i + 1} later`, i === items.length - 1, () => items.splice(i + 1, 0, ...items.splice(i, 1))),
        button('✕', `Remove reference image ${i + 1}`, false, () => items.splice(i, 1)),
      );
      li.append(img, caption, row);
      list.append(li);
    });
  };

  const add = (ref: Reference) => {
    if (items.length >= max) {
      report(`image_urls must have at most ${max} items: remove one first`);
      return;
    }
    items.push(ref);
    render();
    listeners.forEach((l) => l());
  };

  const addFiles = async (files: Iterable<File>) => {
    for (const file of files) {
      if (!file.type.startsWith('image/')) {
        report(`${file.name} is not an image (${file.type || 'unknown type'})`);
        continue;
      }
      add({ src: await readAsDataUri(file), label: file.name || 'pasted image' });
    }
  };

  // The drop zone, the file picker, paste anywhere outside a text field, and the URL box.
  const drop = document.getElementById('refs-drop')!;
  const picker = document.getElementById('refs-file') as HTMLInputElement;
  makeDropZone(drop, (dt) => {
    if (dt.files.length > 0) void addFiles(dt.files);
    else {
      const url = dt.getData('text/uri-list').split('\n').find((l) => /^https?:\/\//i.test(l.trim()));
      if (url) add({ src: url.trim(), label: url.trim() });
    }
  });
  picker.addEventListener('change', () => {
    if (picker.files) void addFiles(picker.files).then(() => (picker.value = ''));
  });
  const urlInput = document.getElementById('ref-url') as HTMLInputElement;
  const addUrl = () => {
    const url = urlInput.value.trim();
    if (!/^https?:\/\/\S+$/i.test(url)) {
      report('image_urls items must be http(s) URLs or data: URIs');
      return;
    }
    add({ src: url, label: url });
    urlInput.value = '';
  };
  document.getElementById('ref-url-add')!.addEventListener('click', addUrl);
  urlInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      addUrl();
    }
  });
  document.addEventListener('paste', (e) => {
    const panel = document.getElementById('panel-generate')!;
    if (panel.hidden) return;
    const files = [...(e.clipboardData?.files ?? [])].filter((f) => f.type.startsWith('image/'));
    if (files.length === 0) return;
    e.preventDefault();
    void addFiles(files);
  });

  return {
    items: () => [...items],
    add,
    addFiles,
    clear: () => {
      items.splice(0);
      render();
      listeners.forEach((l) => l());
    },
    onChange: (l) => listeners.push(l),
  };
}
