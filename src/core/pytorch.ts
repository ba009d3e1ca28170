// Reads the state_dict of a PyTorch checkpoint written by torch.save (the zip format used since
// PyTorch 1.6) as a TensorSource, over any ByteReader (no Node imports: works in browsers too):
// the zip container is read by zip.ts, its data.pkl by the restricted unpickler of unpickler.ts
// with the allowlist defined here, and this file maps the result to tensors.
//
// What it reads: the zip's central directory (ZIP64 included), `<archive>/data.pkl`, and, when a
// tensor is asked for, only the byte span of its storage entry `<archive>/data/<key>` that the
// tensor covers. It never reads the whole file, and never reads storages it is not asked for
// (the optimizer state of a training checkpoint is described by the pickle but never loaded).
//
// What it refuses: compressed or encrypted zip entries, big-endian checkpoints, the legacy
// (pre-1.6) format, and any pickle that names a global outside a small allowlist (the torch tensor
// rebuild functions, collections.OrderedDict and torch storage types). The pickle is interpreted
// as pure data: nothing from the file is ever executed or imported.
import { entryDataStart, readWholeEntry, readZipDirectory, requireStored, type ZipEntry } from './zip.js';
import { PyGlobal, PyObject, Unpickler, type PickleAllowlist, type PyValue } from './unpickler.js';
import type { ByteReader, DType, TensorInfo, TensorSource } from './tensor-source.js';
import { DTYPE_BYTES, numel } from './tensor-source.js';

export interface PyTorchCheckpointOptions {
  /** Key of the state_dict in the checkpoint's top-level dict (default: `state_dict`, then `model`). */
  stateDictKey?: string;
}

export async function openPyTorchCheckpoint(
  reader: ByteReader,
  opts: PyTorchCheckpointOptions = {},
): Promise<TensorSource> {
  const entries = await readZipDirectory(reader);
  const archive = findArchiveFolder(entries, reader.label);
  await checkByteOrder(reader, entries, archive);
  const pickleEntry = entries.get(`${archive}data.pkl`)!;
  const pickle = await readWholeEntry(reader, pickleEntry, MAX_PICKLE_BYTES);
  const top = new Unpickler(pickle, reader.label, pickleEntry.name, TORCH_PICKLES).load();
  const stateDict = selectStateDict(top, opts, reader.label);
  return new CheckpointSource(reader, entries, archive, tensorsOf(stateDict));
}

const MAX_PICKLE_BYTES = 256 * 1024 * 1024;

/** The archive's top folder (e.g. `archive/` or `checkpoint/`), found from its `data.pkl`. */
function findArchiveFolder(entries: Map<string, ZipEntry>, label: string): string {
  const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length === 0) throw new Error(`${label}: not a torch.save checkpoint: the zip has no '<archive>/data.pkl' entry`);
  if (pickles.length > 1) throw new Error(`${label}: ambiguous checkpoint: several data.pkl entries (${pickles.join(', ')})`);
  return pickles[0].slice(0, -'data.pkl'.length);
}

/** PyTorch >= 2.1 records the byte order of storages; older versions always wrote little-endian. */
async function checkByteOrder(reader: ByteReader, entries: Map<string, ZipEntry>, archive: string): Promise<void> {
  const entry = entries.get(`${archive}byteorder`);
  if (!entry) return;
  const order = new TextDecoder().decode(await readWholeEntry(reader, entry, 16)).trim();
  if (order !== 'little') throw new Error(`${reader.label}: checkpoint storages are '${order}'-endian; only little-endian is supported`);
}

// ---------------------------------------------------------------------------------------------
// The pickle's allowlist: storage types, persistent ids and the tensor rebuild functions.

interface StorageType {
  dtype: DType | null;
  elemSize: number;
}

/** torch storage classes; those with a null dtype can be described but not read. */
const STORAGE_TYPES: Record<string, StorageType> = {
  'torch.FloatStorage': { dtype: 'F32', elemSize: 4 },
  'torch.HalfStorage': { dtype: 'F16', elemSize: 2 },
  'torch.BFloat16Storage': { dtype: 'BF16', elemSize: 2 },
  'torch.IntStorage': { dtype: 'I32', elemSize: 4 },
  'torch.LongStorage': { dtype: 'I64', elemSize: 8 },
  'torch.DoubleStorage': { dtype: null, elemSize: 8 },
  'torch.ShortStorage': { dtype: null, elemSize: 2 },
  'torch.CharStorage': { dtype: null, elemSize: 1 },
  'torch.ByteStorage': { dtype: null, elemSize: 1 },
  'torch.BoolStorage': { dtype: null, elemSize: 1 },
};

class StorageRef extends PyObject {
  constructor(
    readonly type: string,
    readonly key: string,
  ) {
    super();
  }
  get storageType(): StorageType {
    return STORAGE_TYPES[this.type];
  }
}

/** A tensor view: `shape` elements of `storage`, at `offset` elements, `stride` elements apart. */
class TensorRef extends PyObject {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {
    super();
  }
}

function isCount(v: PyValue): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function countList(v: PyValue, what: string): number[] {
  if (!Array.isArray(v) || !v.every(isCount)) throw new Error(`_rebuild_tensor_v2: ${what} is not a tuple of non-negative integers`);
  return v as number[];
}

function rebuildTensor(args: PyValue[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (args.length < 4 || !(storage instanceof StorageRef)) throw new Error('_rebuild_tensor_v2: first argument is not a storage');
  if (!isCount(offset)) throw new Error('_rebuild_tensor_v2: storage offset is not a non-negative integer');
  const shape = countList(size, 'size');
  const strides = countList(stride, 'stride');
  if (shape.length !== strides.length) throw new Error('_rebuild_tensor_v2: size and stride differ in length');
  return new TensorRef(storage, offset, shape, strides);
}

function rebuildParameter(args: PyValue[]): TensorRef {
  if (!(args[0] instanceof TensorRef)) throw new Error('_rebuild_parameter: first argument is not a tensor');
  return args[0];
}

function orderedDict(args: PyValue[]): Map<PyValue, PyValue> {
  const dict = new Map<PyValue, PyValue>();
  const pairs = args[0] ?? [];
  if (!Array.isArray(pairs)) throw new Error('OrderedDict: argument is not a list of pairs');
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new Error('OrderedDict: argument is not a list of pairs');
    dict.set(pair[0], pair[1]);
  }
  return dict;
}

/** torch.save's persistent id: ('storage', storage_type, key, location, numel). */
function persistentLoad(pid: PyValue): StorageRef {
  if (!Array.isArray(pid) || pid.length < 3 || pid[0] !== 'storage') throw new Error('persistent id is not a torch storage');
  const [, type, key] = pid;
  if (!(type instanceof PyGlobal) || !Object.hasOwn(STORAGE_TYPES, type.qualifiedName)) throw new Error('persistent id has no storage type');
  if (typeof key !== 'string') throw new Error('persistent id has no storage key');
  return new StorageRef(type.qualifiedName, key);
}

/** All a checkpoint's pickle may name: the storage types and the functions that rebuild tensors and dicts. */
const TORCH_PICKLES: PickleAllowlist = {
  types: new Set(Object.keys(STORAGE_TYPES)),
  callables: {
    'torch._utils._rebuild_tensor_v2': rebuildTensor,
    'torch._utils._rebuild_parameter': rebuildParameter,
    'torch._utils._rebuild_parameter_with_state': rebuildParameter,
    'collections.OrderedDict': orderedDict,
  },
  persistentLoad,
  description: 'torch tensor rebuild functions',
};

// ---------------------------------------------------------------------------------------------
// The state_dict and the TensorSource over it.

type PyDict = Map<PyValue, PyValue>;

function hasTensors(v: PyValue | undefined): v is PyDict {
  return v instanceof Map && [...v.values()].some((x) => x instanceof TensorRef);
}

function selectStateDict(top: PyValue, opts: PyTorchCheckpointOptions, label: string): PyDict {
  if (!(top instanceof Map)) throw new Error(`${label}: the checkpoint's top-level object is not a dict`);
  const keys = [...top.keys()].map((k) => String(k)).join(', ');
  if (opts.stateDictKey !== undefined) {
    const chosen = top.get(opts.stateDictKey);
    if (!(chosen instanceof Map)) throw new Error(`${label}: no dict under key '${opts.stateDictKey}' (top-level keys: ${keys})`);
    return chosen;
  }
  const stateDict = top.get('state_dict');
  if (stateDict instanceof Map) return stateDict;
  const model = top.get('model');
  if (hasTensors(model)) return model;
  if (hasTensors(top)) return top;
  throw new Error(`${label}: no state_dict found (top-level keys: ${keys}); pass stateDictKey`);
}

function tensorsOf(stateDict: PyDict): Map<string, TensorRef> {
  const tensors = new Map<string, TensorRef>();
  for (const [name, value] of stateDict) {
    if (typeof name === 'string' && value instanceof TensorRef) tensors.set(name, value);
  }
  return tensors;
}

/** Elements from the view's first to its last element, inclusive, measured from its storage offset. */
function spanElements(t: TensorRef): number {
  if (t.shape.some((d) => d === 0)) return 0;
  return 1 + t.shape.reduce((sum, d, i) => sum + (d - 1) * t.stride[i], 0);
}

function isContiguous(t: TensorRef): boolean {
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

/** Copies a strided view out of `span` (whose element 0 is the view's first element) into row-major order. */
function gather(span: Uint8Array, shape: number[], stride: number[], elemSize: number): Uint8Array {
  const out = new Uint8Array(numel(shape) * elemSize);
  const last = shape.length - 1;
  const rowLength = shape[last];
  const rowStride = stride[last];
  const index = new Array<number>(last).fill(0);
  for (let o = 0; o < out.byteLength; ) {
    const rowStart = index.reduce((sum, k, i) => sum + k * stride[i], 0);
    if (rowStride === 1) {
      out.set(span.subarray(rowStart * elemSize, (rowStart + rowLength) * elemSize), o);
      o += rowLength * elemSize;
    } else {
      for (let j = 0; j < rowLength; j++, o += elemSize) {
        const from = (rowStart + j * rowStride) * elemSize;
        out.set(span.subarray(from, from + elemSize), o);
      }
    }
    for (let i = last - 1; i >= 0 && ++index[i] === shape[i]; i--) index[i] = 0;
  }
  return out;
}

class CheckpointSource implements TensorSource {
  private readonly dataStarts = new Map<string, number>();

  constructor(
    private readonly reader: ByteReader,
    private readonly entries: Map<string, ZipEntry>,
    private readonly archive: string,
    private readonly tensors: Map<string, TensorRef>,
  ) {
    for (const [name, t] of tensors) this.checkSpan(name, t);
  }

  get label(): string {
    return this.reader.label;
  }

  /** Tensors of an unsupported dtype (e.g. uint8) are left out; info() and read() of them throw. */
  names(): string[] {
    return [...this.tensors].filter(([, t]) => t.storage.storageType.dtype !== null).map(([name]) => name);
  }

  info(name: string): TensorInfo | undefined {
    const t = this.tensors.get(name);
    if (!t) return undefined;
    const dtype = this.dtypeOf(name, t);
    return { name, dtype, shape: [...t.shape], byteLength: numel(t.shape) * DTYPE_BYTES[dtype] };
  }

  async read(name: string): Promise<Uint8Array> {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.label}: missing tensor '${name}'`);
    const elemSize = DTYPE_BYTES[this.dtypeOf(name, t)];
    const span = spanElements(t);
    if (span === 0) return new Uint8Array(0);
    const entry = this.storageEntry(name, t);
    const start = (await this.dataStart(entry)) + t.offset * elemSize;
    const bytes = await this.reader.read(start, span * elemSize);
    return isContiguous(t) ? bytes : gather(bytes, t.shape, t.stride, elemSize);
  }

  async close(): Promise<void> {
    await this.reader.close?.();
  }

  private dtypeOf(name: string, t: TensorRef): DType {
    const { dtype } = t.storage.storageType;
    if (dtype === null) {
      throw new Error(`${this.label}: tensor '${name}' is stored as ${t.storage.type}, an unsupported dtype (supported: F32, F16, BF16, I32, I64)`);
    }
    return dtype;
  }

  private storageEntry(name: string, t: TensorRef): ZipEntry {
    const entryName = `${this.archive}data/${t.storage.key}`;
    const entry = this.entries.get(entryName);
    if (!entry) throw new Error(`${this.label}: tensor '${name}' needs storage entry '${entryName}', which is missing`);
    return entry;
  }

  /** Checks, without reading anything, that a tensor's storage entry exists, is stored, and covers the view. */
  private checkSpan(name: string, t: TensorRef): void {
    const entry = this.storageEntry(name, t);
    requireStored(entry, this.label);
    const span = spanElements(t);
    const end = span === 0 ? 0 : (t.offset + span) * t.storage.storageType.elemSize;
    if (!Number.isSafeInteger(end) || end > entry.size) {
      throw new Error(`${this.label}: tensor '${name}' needs ${end} bytes of storage entry '${entry.name}', which holds ${entry.size}`);
    }
  }

  private async dataStart(entry: ZipEntry): Promise<number> {
    let start = this.dataStarts.get(entry.name);
    if (start === undefined) {
      start = await entryDataStart(this.reader, entry);
      this.dataStarts.set(entry.name, start);
    }
    return start;
  }
}
