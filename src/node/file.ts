// A ByteReader over a file on disk: reads only the ranges asked for, never the whole file.
import { open, type FileHandle } from 'node:fs/promises';
import type { ByteReader } from '../core/tensor-source.js';
import { errorCode } from './messages.js';

export class FileReader implements ByteReader {
  private constructor(
    readonly label: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<FileReader> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (e) {
      throw new Error(`${path}: cannot open (${errorCode(e)})`);
    }
    const stat = await handle.stat();
    if (stat.isDirectory()) {
      await handle.close();
      throw new Error(`${path}: cannot read (it is a folder, not a file)`);
    }
    return new FileReader(path, stat.size, handle);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`${this.label}: read of ${length} bytes at ${offset} is past the end of the file (${this.size} bytes)`);
    }
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(out, done, length - done, offset + done));
      } catch (e) {
        throw new Error(`${this.label}: cannot read at byte ${offset + done} (${errorCode(e)})`);
      }
      if (bytesRead === 0) throw new Error(`${this.label}: file ended early at byte ${offset + done}`);
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
