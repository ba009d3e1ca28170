// Reads the state_dict of a PyTorch checkpoint written by torch.save (the zip format used since
// PyTorch 1.6) as a TensorSource, over any ByteReader (no Node imports: works in browsers too).
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
  const top = new Unpickler(pickle, reader.label, pickleEntry.name).load();
  const stateDict = selectStateDict(top, opts, reader.label);
  return new CheckpointSource(reader, entries, archive, tensorsOf(stateDict));
}

// ---------------------------------------------------------------------------------------------
// Zip: central directory, local headers, stored (uncompressed) entries only.

const EOCD_SIG = 0x06054b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_SIG = 0x02014b50;
const CENTRAL_SIZE = 46;
const LOCAL_SIG = 0x04034b50;
const LOCAL_SIZE = 30;
const ZIP64_EXTRA_ID = 0x0001;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const MAX_CENTRAL_DIRECTORY_BYTES = 256 * 1024 * 1024;
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

interface CentralDirectory {
  offset: number;
  size: number;
  count: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readU64(dv: DataView, at: number, what: string): number {
  const value = dv.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what} is too large (${value})`);
  return Number(value);
}

async function readZipDirectory(reader: ByteReader): Promise<Map<string, ZipEntry>> {
  const dir = await findCentralDirectory(reader);
  if (dir.size > MAX_CENTRAL_DIRECTORY_BYTES) {
    throw new Error(`${reader.label}: zip central directory of ${dir.size} bytes is implausibly large`);
  }
  if (dir.offset + dir.size > reader.size) {
    throw new Error(
      `${reader.label}: zip central directory (bytes ${dir.offset}..${dir.offset + dir.size}) lies past the end of the file (${reader.size} bytes); the file is truncated`,
    );
  }
  const bytes = await reader.read(dir.offset, dir.size);
  return parseCentralDirectory(bytes, dir.count, reader.label);
}

async function findCentralDirectory(reader: ByteReader): Promise<CentralDirectory> {
  const tailLength = Math.min(reader.size, EOCD_SIZE + U16_MAX + ZIP64_LOCATOR_SIZE);
  const tail = await reader.read(reader.size - tailLength, tailLength);
  const at = findEocd(tail);
  if (at < 0) throw await notAZipError(reader);
  const dv = view(tail);
  const locator = at - ZIP64_LOCATOR_SIZE;
  if (locator >= 0 && dv.getUint32(locator, true) === ZIP64_LOCATOR_SIG) {
    return readZip64Eocd(reader, readU64(dv, locator + 8, `${reader.label}: ZIP64 end record offset`));
  }
  const dir = { count: dv.getUint16(at + 10, true), size: dv.getUint32(at + 12, true), offset: dv.getUint32(at + 16, true) };
  if (dir.count === U16_MAX || dir.size === U32_MAX || dir.offset === U32_MAX) {
    throw new Error(`${reader.label}: zip end record needs ZIP64 data but the ZIP64 locator is missing (corrupt file)`);
  }
  return dir;
}

/** Position of the end-of-central-directory record in `tail`, searching backwards; -1 if none. */
function findEocd(tail: Uint8Array): number {
  const dv = view(tail);
  for (let i = tail.byteLength - EOCD_SIZE; i >= 0; i--) {
    if (dv.getUint32(i, true) === EOCD_SIG && i + EOCD_SIZE + dv.getUint16(i + 20, true) <= tail.byteLength) return i;
  }
  return -1;
}

async function notAZipError(reader: ByteReader): Promise<Error> {
  const head = await reader.read(0, Math.min(reader.size, 4));
  const startsLikeZip = head.length === 4 && view(head).getUint32(0, true) === LOCAL_SIG;
  const startsLikePickle = head.length >= 2 && head[0] === 0x80 && head[1] <= 5;
  if (startsLikeZip) {
    return new Error(`${reader.label}: truncated checkpoint: the zip end-of-central-directory record is missing (${reader.size} bytes)`);
  }
  if (startsLikePickle) {
    return new Error(
      `${reader.label}: legacy torch.save format (before PyTorch 1.6) is not supported; re-save it with a recent PyTorch`,
    );
  }
  return new Error(`${reader.label}: not a PyTorch checkpoint: no zip end-of-central-directory record found (${reader.size} bytes)`);
}

async function readZip64Eocd(reader: ByteReader, offset: number): Promise<CentralDirectory> {
  if (offset + ZIP64_EOCD_SIZE > reader.size) {
    throw new Error(`${reader.label}: ZIP64 end record at byte ${offset} lies past the end of the file; the file is truncated`);
  }
  const dv = view(await reader.read(offset, ZIP64_EOCD_SIZE));
  if (dv.getUint32(0, true) !== ZIP64_EOCD_SIG) {
    throw new Error(`${reader.label}: no ZIP64 end record at byte ${offset} (corrupt file)`);
  }
  const what = `${reader.label}: ZIP64 end record`;
  return { count: readU64(dv, 32, what), size: readU64(dv, 40, what), offset: readU64(dv, 48, what) };
}

function parseCentralDirectory(bytes: Uint8Array, count: number, label: string): Map<string, ZipEntry> {
  const dv = view(bytes);
  const entries = new Map<string, ZipEntry>();
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (pos + CENTRAL_SIZE > bytes.byteLength || dv.getUint32(pos, true) !== CENTRAL_SIG) {
      throw new Error(`${label}: zip central directory is corrupt (entry ${i} of ${count} at byte ${pos})`);
    }
    const nameLength = dv.getUint16(pos + 28, true);
    const extraLength = dv.getUint16(pos + 30, true);
    const commentLength = dv.getUint16(pos + 32, true);
    const end = pos + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (end > bytes.byteLength) throw new Error(`${label}: zip central directory is corrupt (entry ${i} runs past its end)`);
    const nameBytes = bytes.subarray(pos + CENTRAL_SIZE, pos + CENTRAL_SIZE + nameLength);
    const entry: ZipEntry = {
      name: utf8.decode(nameBytes),
      flags: dv.getUint16(pos + 8, true),
      method: dv.getUint16(pos + 10, true),
      compressedSize: dv.getUint32(pos + 20, true),
      size: dv.getUint32(pos + 24, true),
      localOffset: dv.getUint32(pos + 42, true),
    };
    const extraStart = pos + CENTRAL_SIZE + nameLength;
    applyZip64Extra(entry, bytes.subarray(extraStart, extraStart + extraLength), label);
    entries.set(entry.name, entry);
    pos = end;
  }
  return entries;
}

/** Replaces the 0xFFFFFFFF placeholders of a central entry with the values of its ZIP64 extra field. */
function applyZip64Extra(entry: ZipEntry, extra: Uint8Array, label: string): void {
  const fields = (['size', 'compressedSize', 'localOffset'] as const).filter((f) => entry[f] === U32_MAX);
  if (fields.length === 0) return;
  const dv = view(extra);
  for (let pos = 0; pos + 4 <= extra.byteLength; pos += 4 + dv.getUint16(pos + 2, true)) {
    if (dv.getUint16(pos, true) !== ZIP64_EXTRA_ID) continue;
    const blockEnd = pos + 4 + dv.getUint16(pos + 2, true);
    if (blockEnd > extra.byteLength || pos + 4 + 8 * fields.length > blockEnd) break;
    fields.forEach((f, k) => (entry[f] = readU64(dv, pos + 4 + 8 * k, `${label}: zip entry '${entry.name}' ${f}`)));
    return;
  }
  throw new Error(`${label}: zip entry '${entry.name}' needs a ZIP64 extra field but has none (corrupt file)`);
}

function requireStored(entry: ZipEntry, label: string): void {
  if (entry.flags & 1) throw new Error(`${label}: zip entry '${entry.name}' is encrypted; refused`);
  if (entry.method !== 0 || entry.compressedSize !== entry.size) {
    throw new Error(
      `${label}: zip entry '${entry.name}' is compressed (method ${entry.method}); torch.save stores entries uncompressed, so it is refused`,
    );
  }
}

/** File offset of an entry's data, from its local header (whose name/extra lengths may differ from the central ones). */
async function entryDataStart(reader: ByteReader, entry: ZipEntry): Promise<number> {
  const past = (what: string) =>
    new Error(`${reader.label}: ${what} of zip entry '${entry.name}' lies past the end of the file (${reader.size} bytes); the file is truncated`);
  if (entry.localOffset + LOCAL_SIZE > reader.size) throw past('local header');
  const dv = view(await reader.read(entry.localOffset, LOCAL_SIZE));
  if (dv.getUint32(0, true) !== LOCAL_SIG) {
    throw new Error(`${reader.label}: zip entry '${entry.name}' has no local header at byte ${entry.localOffset} (corrupt file)`);
  }
  const start = entry.localOffset + LOCAL_SIZE + dv.getUint16(26, true) + dv.getUint16(28, true);
  if (start + entry.size > reader.size) throw past('data');
  return start;
}

async function readWholeEntry(reader: ByteReader, entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
  requireStored(entry, reader.label);
  if (entry.size > maxBytes) {
    throw new Error(`${reader.label}: zip entry '${entry.name}' is ${entry.size} bytes, more than the ${maxBytes} this reader accepts`);
  }
  return reader.read(await entryDataStart(reader, entry), entry.size);
}

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
// Pickle: a restricted interpreter that builds plain data and tensor descriptors.

type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyValue, PyValue>
  | Set<PyValue>
  | PyGlobal
  | StorageRef
  | TensorRef;

/** A global the allowlist accepted: a storage type or one of the rebuild functions. */
class PyGlobal {
  constructor(readonly qualifiedName: string) {}
}

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

class StorageRef {
  constructor(
    readonly type: string,
    readonly key: string,
  ) {}
  get storageType(): StorageType {
    return STORAGE_TYPES[this.type];
  }
}

/** A tensor view: `shape` elements of `storage`, at `offset` elements, `stride` elements apart. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

type Callable = (args: PyValue[]) => PyValue;

const isStorageType = (qualifiedName: string) => Object.hasOwn(STORAGE_TYPES, qualifiedName);
const isCallable = (qualifiedName: string) => Object.hasOwn(CALLABLES, qualifiedName);

const CALLABLES: Record<string, Callable> = {
  'torch._utils._rebuild_tensor_v2': rebuildTensor,
  'torch._utils._rebuild_parameter': rebuildParameter,
  'torch._utils._rebuild_parameter_with_state': rebuildParameter,
  'collections.OrderedDict': orderedDict,
};

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

const MAX_STACK = 1 << 22;
const MAX_MEMO = 1 << 22;
const MAX_LONG_BYTES = 32;
const HIGHEST_PROTOCOL = 5;

const OP = {
  MARK: 0x28, EMPTY_TUPLE: 0x29, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32,
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43, BINFLOAT: 0x47, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d,
  NONE: 0x4e, BINPERSID: 0x51, REDUCE: 0x52, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, BINUNICODE: 0x58,
  EMPTY_LIST: 0x5d, APPEND: 0x61, BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, APPENDS: 0x65, BINGET: 0x68,
  LONG_BINGET: 0x6a, LIST: 0x6c, BINPUT: 0x71, LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74,
  SETITEMS: 0x75, EMPTY_DICT: 0x7d, PROTO: 0x80, NEWOBJ: 0x81, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90, FROZENSET: 0x91, STACK_GLOBAL: 0x93, MEMOIZE: 0x94,
  FRAME: 0x95,
} as const;

function opcodeName(op: number): string {
  const hex = `0x${op.toString(16).padStart(2, '0')}`;
  return op >= 0x20 && op < 0x7f ? `${hex} ('${String.fromCharCode(op)}')` : hex;
}

class Unpickler {
  private pos = 0;
  private opPos = 0;
  private readonly dv: DataView;
  private stack: PyValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly label: string,
    private readonly entryName: string,
  ) {
    this.dv = view(bytes);
  }

  load(): PyValue {
    for (;;) {
      this.opPos = this.pos;
      const op = this.u8();
      if (op === OP.STOP) return this.pop();
      try {
        this.execute(op);
      } catch (e) {
        throw this.wrap(e as Error);
      }
    }
  }

  private fail(message: string): Error {
    return new Error(`${this.label}: ${message} at byte ${this.opPos} of ${this.entryName}`);
  }

  private wrap(e: Error): Error {
    return e.message.startsWith(`${this.label}: `) ? e : this.fail(e.message);
  }

  private execute(op: number): void {
    switch (op) {
      case OP.PROTO: return this.proto(this.u8());
      case OP.FRAME: return void this.take(8);
      case OP.MARK: return this.mark();
      case OP.POP: return void this.pop();
      case OP.POP_MARK: return void this.popMark();
      case OP.DUP: return this.push(this.peek());
      case OP.NONE: return this.push(null);
      case OP.NEWTRUE: return this.push(true);
      case OP.NEWFALSE: return this.push(false);
      case OP.BININT: return this.push(this.dv.getInt32(this.take(4), true));
      case OP.BININT1: return this.push(this.u8());
      case OP.BININT2: return this.push(this.dv.getUint16(this.take(2), true));
      case OP.LONG1: return this.push(this.long(this.u8()));
      case OP.LONG4: return this.push(this.long(this.dv.getInt32(this.take(4), true)));
      case OP.BINFLOAT: return this.push(this.dv.getFloat64(this.take(8), false));
      case OP.SHORT_BINUNICODE: return this.push(this.utf8(this.u8()));
      case OP.BINUNICODE: return this.push(this.utf8(this.dv.getUint32(this.take(4), true)));
      case OP.BINUNICODE8: return this.push(this.utf8(this.u64()));
      case OP.SHORT_BINSTRING: return this.push(this.latin1(this.u8()));
      case OP.BINSTRING: return this.push(this.latin1(this.dv.getInt32(this.take(4), true)));
      case OP.SHORT_BINBYTES: return this.push(this.bytesOf(this.u8()));
      case OP.BINBYTES: return this.push(this.bytesOf(this.dv.getUint32(this.take(4), true)));
      case OP.BINBYTES8: return this.push(this.bytesOf(this.u64()));
      case OP.EMPTY_TUPLE: return this.push([]);
      case OP.TUPLE1: return this.push(this.popN(1));
      case OP.TUPLE2: return this.push(this.popN(2));
      case OP.TUPLE3: return this.push(this.popN(3));
      case OP.TUPLE: return this.push(this.popMark());
      case OP.EMPTY_LIST: return this.push([]);
      case OP.LIST: return this.push(this.popMark());
      case OP.APPEND: return this.appends(this.popN(1));
      case OP.APPENDS: return this.appends(this.popMark());
      case OP.EMPTY_DICT: return this.push(new Map());
      case OP.DICT: return this.push(this.setItems(new Map(), this.popMark()));
      case OP.SETITEM: return void this.setItems(this.dict(this.peek(2)), this.popN(2));
      case OP.SETITEMS: return this.setItemsOnTop(this.popMark());
      case OP.EMPTY_SET: return this.push(new Set());
      case OP.ADDITEMS: return this.addItems(this.popMark());
      case OP.FROZENSET: return this.push(new Set(this.popMark()));
      case OP.BINPUT: return this.put(this.u8());
      case OP.LONG_BINPUT: return this.put(this.dv.getUint32(this.take(4), true));
      case OP.MEMOIZE: return this.put(this.memo.size);
      case OP.BINGET: return this.get(this.u8());
      case OP.LONG_BINGET: return this.get(this.dv.getUint32(this.take(4), true));
      case OP.GLOBAL: return this.global(this.line(), this.line());
      case OP.STACK_GLOBAL: return this.stackGlobal();
      case OP.REDUCE:
      case OP.NEWOBJ: return this.reduce();
      case OP.BUILD: return void this.pop(); // state of an allowed object (e.g. a state_dict's _metadata): not needed
      case OP.BINPERSID: return this.push(this.persistent(this.pop()));
      default: throw this.fail(`unsupported pickle opcode ${opcodeName(op)}`);
    }
  }

  // --- reading the byte stream

  private take(n: number): number {
    if (n < 0 || this.pos + n > this.bytes.byteLength) {
      throw this.fail(`pickle ends early (needs ${n} more bytes, ${this.bytes.byteLength - this.pos} left; truncated or corrupt)`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private u8(): number {
    return this.bytes[this.take(1)];
  }

  private u64(): number {
    return readU64(this.dv, this.take(8), 'pickle length');
  }

  private utf8(n: number): string {
    const at = this.take(n);
    try {
      return utf8.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw this.fail('invalid UTF-8 in a pickled string');
    }
  }

  private latin1(n: number): string {
    const at = this.take(n);
    let s = '';
    for (let i = at; i < at + n; i++) s += String.fromCharCode(this.bytes[i]);
    return s;
  }

  private bytesOf(n: number): Uint8Array {
    const at = this.take(n);
    return this.bytes.slice(at, at + n);
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw this.fail('pickle ends early inside a GLOBAL name (truncated or corrupt)');
    return this.latin1(end - this.pos + 1).slice(0, -1);
  }

  /** A little-endian two's complement integer of n bytes (LONG1/LONG4). */
  private long(n: number): number | bigint {
    if (n > MAX_LONG_BYTES) throw this.fail(`pickled integer of ${n} bytes is too large`);
    const at = this.take(n);
    if (n === 0) return 0;
    let hex = '';
    for (let i = at + n - 1; i >= at; i--) hex += this.bytes[i].toString(16).padStart(2, '0');
    let value = BigInt(`0x${hex}`);
    if (this.bytes[at + n - 1] & 0x80) value -= 1n << BigInt(8 * n);
    const small = Number(value);
    return Number.isSafeInteger(small) ? small : value;
  }

  private proto(version: number): void {
    if (version > HIGHEST_PROTOCOL) throw this.fail(`pickle protocol ${version} is newer than ${HIGHEST_PROTOCOL}`);
  }

  // --- the stack, marks and memo

  private push(v: PyValue): void {
    if (this.stack.length >= MAX_STACK) throw this.fail(`pickle stack exceeds ${MAX_STACK} items`);
    this.stack.push(v);
  }

  /** Fails unless the stack holds `n` items above the innermost MARK. */
  private need(n: number): void {
    const fence = this.marks.length > 0 ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length - n < fence) throw this.fail('pickle stack underflow (corrupt pickle)');
  }

  private pop(): PyValue {
    this.need(1);
    return this.stack.pop()!;
  }

  private peek(depth = 0): PyValue {
    this.need(depth + 1);
    return this.stack[this.stack.length - 1 - depth];
  }

  private popN(n: number): PyValue[] {
    this.need(n);
    return this.stack.splice(this.stack.length - n, n);
  }

  private mark(): void {
    if (this.marks.length >= MAX_STACK) throw this.fail(`pickle has more than ${MAX_STACK} open MARKs`);
    this.marks.push(this.stack.length);
  }

  private popMark(): PyValue[] {
    const at = this.marks.pop();
    if (at === undefined) throw this.fail('pickle has no MARK to pop to (corrupt pickle)');
    return this.stack.splice(at);
  }

  private put(index: number): void {
    if (this.memo.size >= MAX_MEMO && !this.memo.has(index)) throw this.fail(`pickle memo exceeds ${MAX_MEMO} entries`);
    this.memo.set(index, this.peek());
  }

  private get(index: number): void {
    if (!this.memo.has(index)) throw this.fail(`pickle memo has no entry ${index} (corrupt pickle)`);
    this.push(this.memo.get(index)!);
  }

  // --- containers

  private list(v: PyValue): PyValue[] {
    if (!Array.isArray(v)) throw this.fail('APPEND to something that is not a list');
    return v;
  }

  private dict(v: PyValue): Map<PyValue, PyValue> {
    if (!(v instanceof Map)) throw this.fail('SETITEM on something that is not a dict');
    return v;
  }

  private appends(items: PyValue[]): void {
    const list = this.list(this.peek());
    for (const item of items) list.push(item);
  }

  private setItems(dict: Map<PyValue, PyValue>, items: PyValue[]): Map<PyValue, PyValue> {
    if (items.length % 2 !== 0) throw this.fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
    return dict;
  }

  private setItemsOnTop(items: PyValue[]): void {
    this.setItems(this.dict(this.peek()), items);
  }

  private addItems(items: PyValue[]): void {
    const set = this.peek();
    if (!(set instanceof Set)) throw this.fail('ADDITEMS on something that is not a set');
    for (const item of items) set.add(item);
  }

  // --- globals, calls and persistent ids: the only places the allowlist matters

  private global(module: string, name: string): void {
    const qualified = `${module}.${name}`;
    if (!isCallable(qualified) && !isStorageType(qualified)) {
      throw new Error(
        `${this.label}: refused pickle global '${qualified}' at byte ${this.opPos} of ${this.entryName} (only torch tensor rebuild functions are allowed)`,
      );
    }
    this.push(new PyGlobal(qualified));
  }

  private stackGlobal(): void {
    const name = this.pop();
    const module = this.pop();
    if (typeof module !== 'string' || typeof name !== 'string') throw this.fail('STACK_GLOBAL needs two strings');
    this.global(module, name);
  }

  private reduce(): void {
    const args = this.pop();
    const callable = this.pop();
    if (!Array.isArray(args)) throw this.fail('call arguments are not a tuple');
    if (!(callable instanceof PyGlobal) || !isCallable(callable.qualifiedName)) {
      const what = callable instanceof PyGlobal ? `'${callable.qualifiedName}'` : 'a non-callable value';
      throw this.fail(`refused call of ${what}`);
    }
    this.push(CALLABLES[callable.qualifiedName](args));
  }

  /** torch.save's persistent id: ('storage', storage_type, key, location, numel). */
  private persistent(pid: PyValue): StorageRef {
    if (!Array.isArray(pid) || pid.length < 3 || pid[0] !== 'storage') throw this.fail('persistent id is not a torch storage');
    const [, type, key] = pid;
    if (!(type instanceof PyGlobal) || !isStorageType(type.qualifiedName)) throw this.fail('persistent id has no storage type');
    if (typeof key !== 'string') throw this.fail('persistent id has no storage key');
    return new StorageRef(type.qualifiedName, key);
  }
}

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
