// Writing the CLI's outputs without losing anything. A file is written under a temporary name
// beside its target (.NAME.tmp-PID-RANDOM, same folder) and renamed into place only once
// complete and synced: a failed write (full disk, ...) removes the temporary file and leaves the
// previous file at the target as it was. Before any work the outputs are checked: none is an
// input (after resolving links), each folder exists or can be created, and is writable.
// `-` is stdout.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { errorCode } from './messages.js';

/** The --out value that means stdout. */
export const STDOUT = '-';

/** A temporary name beside `path`, in the same folder so that the final rename stays on one file system. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

export function cannotWrite(path: string, e: unknown): Error {
  return new Error(`${path}: cannot write (${errorCode(e)})`);
}

/**
 * Creates `dir` and its missing parents one level at a time. (mkdirSync's own recursive mode
 * never returns for a path under /proc; here the first level that cannot be made is the error.)
 */
function ensureFolder(dir: string, out: string): void {
  let isDir: boolean | undefined;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    if (errorCode(e) !== 'ENOENT') throw cannotWrite(out, e);
  }
  if (isDir) return;
  if (isDir === false) throw new Error(`${out}: cannot write (${dir} is not a folder)`);
  const parent = dirname(dir);
  if (parent !== dir) ensureFolder(parent, out);
  try {
    mkdirSync(dir);
  } catch (e) {
    if (errorCode(e) !== 'EEXIST') throw new Error(`${out}: cannot create the folder ${dir} (${errorCode(e)})`);
  }
}

/** Creates and removes a temporary file beside `path`: the folder exists (or is made) and is writable. */
function probe(path: string): void {
  ensureFolder(dirname(path), path);
  const tmp = tempPathFor(path);
  try {
    closeSync(openSync(tmp, 'wx'));
  } catch (e) {
    throw cannotWrite(path, e);
  }
  rmSync(tmp, { force: true });
}

/** Checks an output file before any work: its folder can be written, and it is not a folder itself. */
export function checkWritableFile(path: string): void {
  if (path === STDOUT) return;
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // does not exist yet
  }
  if (isDir) throw new Error(`${path}: cannot write (it is a folder)`);
  probe(path);
}

/** Checks an output folder before any work: it exists or can be created, and files can be made in it. */
export function checkWritableFolder(dir: string): void {
  ensureFolder(dir, dir);
  probe(join(dir, 'probe'));
}

/** The path with links resolved; for a file that does not exist yet, its folder's. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      return join(realpathSync(dirname(resolve(path))), basename(path));
    } catch {
      return resolve(path);
    }
  }
}

/** Refuses, before any work, an output that is one of the inputs (compared after resolving links). */
export function checkNotInputs(outputs: string[], inputs: string[]): void {
  const byPath = new Map(inputs.map((input) => [realPath(input), input]));
  for (const out of outputs) {
    const input = out === STDOUT ? undefined : byPath.get(realPath(out));
    if (input !== undefined) throw new Error(`${out}: this output is the input ${input}; refusing to overwrite it`);
  }
}

/** Refuses an output whose extension contradicts what will be written into it. */
export function checkExtension(out: string, extensions: string[], what: string): void {
  if (out === STDOUT || extensions.some((ext) => out.toLowerCase().endsWith(ext))) return;
  throw new Error(`${out}: ${what} must go to a ${extensions.join(' or ')} file`);
}

/** Writes a file atomically (see the file comment); any failure is `PATH: cannot write (CODE)`. */
export function writeFile(path: string, data: Uint8Array | string): void {
  ensureFolder(dirname(path), path);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx');
    for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw cannotWrite(path, e);
  }
}

/** writeFile, or stdout for `-`. */
export async function writeOutput(path: string, data: Uint8Array | string): Promise<void> {
  if (path !== STDOUT) return writeFile(path, data);
  await new Promise<void>((done, fail) => {
    // Kept after a failed write: the stream emits its 'error' (EPIPE, ...) after the callback.
    const onError = (e: Error) => fail(new Error(`stdout: cannot write (${errorCode(e)})`));
    process.stdout.once('error', onError);
    process.stdout.write(data, (e) => {
      if (e) return onError(e);
      process.stdout.off('error', onError);
      done();
    });
  });
}

/**
 * One PNG per input in `dir`, named after the input; a name already taken by an earlier input
 * (d1/x.png and d2/x.png, y.jpg and y.png) gets -2, -3, ... (`renamed`).
 */
export function folderOutputs(inputs: string[], dir: string): { path: string; renamed: boolean }[] {
  const taken = new Set<string>();
  return inputs.map((input) => {
    const stem = basename(input, extname(input));
    let name = `${stem}.png`;
    for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${stem}-${n}.png`;
    taken.add(name.toLowerCase());
    return { path: join(dir, name), renamed: name !== `${stem}.png` };
  });
}
