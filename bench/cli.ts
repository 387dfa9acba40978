/** Command-line options shared by the bench scripts: `--name value` pairs and bare `--name` flags. */
const args = process.argv.slice(2);

/** The value after `--name`, or `fallback` when the option is absent or has no value. */
export function opt(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
}

/** Whether `--name` was given. */
export function flag(name: string): boolean {
  return args.includes(`--${name}`);
}
