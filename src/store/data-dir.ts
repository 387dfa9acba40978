/**
 * DATA_DIR checked before anything opens it, so a bad one stops the start with a message that names
 * the problem, instead of a server that reports healthy and then fails every request.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Creates `dir` (and the listed subdirectories) if needed and proves each one takes a file. */
export function prepareDataDir(dir: string, subdirs: string[]): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch {
    // absent: created below
  }
  if (stat && !stat.isDirectory()) throw new Error(`DATA_DIR ${dir} exists and is not a directory; point DATA_DIR at a directory`);
  for (const target of [dir, ...subdirs.map((s) => path.join(dir, s))]) {
    try {
      fs.mkdirSync(target, { recursive: true });
      const probe = path.join(target, `.write-probe-${process.pid}`);
      fs.writeFileSync(probe, '');
      fs.rmSync(probe);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new Error(`DATA_DIR: cannot write to ${target} (${code}); the server needs to create files there`, { cause: err });
    }
  }
}
