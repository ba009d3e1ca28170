// The autotune store for Node: one JSON file, by default ~/.cache/dualtoken/autotune.json
// ($XDG_CACHE_HOME respected), mapping an adapter key (vendor, architecture, device, driver
// description) to its table of winners `op/shapeClass -> variant`. A file that cannot be read or
// parsed counts as empty (it is a cache); writes go through a temporary file and a rename.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TuneStorage } from '../ops/autotune.js';
import type { TunedTable } from '../ops/choice.js';

export function defaultTuneCachePath(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'dualtoken', 'autotune.json');
}

interface CacheFile {
  version: 1;
  adapters: Record<string, { date: string; table: TunedTable }>;
}

function read(path: string): CacheFile {
  try {
    const data = JSON.parse(readFileSync(path, 'utf8')) as CacheFile;
    if (data && data.version === 1 && typeof data.adapters === 'object') return data;
  } catch {
    // missing or unreadable: an empty cache
  }
  return { version: 1, adapters: {} };
}

export function fileTuneStorage(path = defaultTuneCachePath()): TuneStorage {
  return {
    async load(adapter) {
      return read(path).adapters[adapter]?.table;
    },
    async save(adapter, table) {
      const data = read(path);
      data.adapters[adapter] = { date: new Date().toISOString(), table };
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(data, null, 1));
      renameSync(tmp, path);
    },
  };
}
