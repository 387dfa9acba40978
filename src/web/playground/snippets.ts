/**
 * "Copy as" for the request just made, in the shape of the seed's own examples (Python with requests and
 * json.dumps, JavaScript with fetch), plus curl. The key is a placeholder: a snippet gets pasted into chats
 * and tickets, and the real key should not travel with it.
 */

const KEY_PLACEHOLDER = '<YOUR_API_KEY>';

/** A JSON value written as a Python literal (True/False/None), indented like json.dumps(indent=4). */
function pythonLiteral(value: unknown, indent: string): string {
  const inner = `${indent}    `;
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + pythonLiteral(v, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pythonLiteral(v, inner)}`).join(',\n')}\n${indent}}`;
}

/** A JSON value as a JavaScript literal: keys unquoted where they are identifiers, strings in single quotes. */
function jsLiteral(value: unknown, indent: string): string {
  const inner = `${indent}  `;
  if (typeof value === 'string') return `'${JSON.stringify(value).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + jsLiteral(v, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  const key = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : `'${k}'`);
  return `{\n${entries.map(([k, v]) => `${inner}${key(k)}: ${jsLiteral(v, inner)}`).join(',\n')}\n${indent}}`;
}

/** POSIX shell single quotes: ' ends the quote, so it is written as '\'' . */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export type SnippetLanguage = 'curl' | 'python' | 'js';

export function renderSnippet(language: SnippetLanguage, baseUrl: string, body: Record<string, unknown>): string {
  const url = `${baseUrl}/v1/images/generations`;
  switch (language) {
    case 'curl':
      return [
        `curl -s ${shellQuote(url)} \\`,
        `  -H ${shellQuote(`Authorization: Bearer ${KEY_PLACEHOLDER}`)} \\`,
        `  -H 'Content-Type: application/json' \\`,
        `  -d ${shellQuote(JSON.stringify(body, null, 2))}`,
      ].join('\n');
    case 'python':
      return `import requests
import json  # for getting a structured output with indentation

def main():
    response = requests.post(
        ${JSON.stringify(url)},
        headers={
            "Authorization": "Bearer ${KEY_PLACEHOLDER}",
            "Content-Type": "application/json",
        },
        json=${pythonLiteral(body, '        ')}
    )

    data = response.json()
    print(json.dumps(data, indent=2, ensure_ascii=False))

if __name__ == "__main__":
    main()
`;
    case 'js':
      return `const response = await fetch('${url}', {
  method: 'POST',
  headers: {
    'Authorization': 'Bearer ${KEY_PLACEHOLDER}',
    'Content-Type': 'application/json',
  },
  body: JSON.stringify(${jsLiteral(body, '  ')}),
});

const data = await response.json();
console.log(JSON.stringify(data, null, 2));
`;
  }
}
