// A restricted pickle interpreter: it runs the binary opcodes of Python's pickle VM that torch.save
// writes (protocols up to 5) to build plain data (None, bools, ints, floats, strings, bytes, tuples
// and lists as arrays, dicts as Maps, sets), and never executes or imports anything.
// The only way a pickle's bytes can become anything else is its caller's allowlist: the globals it
// may name, the functions REDUCE/NEWOBJ may call (which build values from plain data), and what a
// persistent id (BINPERSID) stands for. Any other global or call is refused, naming the byte where
// it happens; stack, memo and integer sizes are bounded, and corrupt or truncated pickles are
// errors, never crashes or hangs.

export type PyValue =
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
  | PyObject;

/** A global the allowlist accepted, by its qualified name (`module.name`). */
export class PyGlobal {
  constructor(readonly qualifiedName: string) {}
}

/** Base class of the values that an allowlist's callables and persistentLoad build (e.g. tensor descriptors). */
export abstract class PyObject {
  /** Makes the type nominal: only instances of subclasses are PyObjects, not any object. */
  private declare readonly pyObjectBrand: never;
}

/** What a pickle may name and call: everything that is not plain data comes from here. */
export interface PickleAllowlist {
  /** Globals that may be named (as persistent id parts or data) but not called, e.g. torch storage types. */
  readonly types: ReadonlySet<string>;
  /** Functions REDUCE and NEWOBJ may call, by qualified name; a throw is reported at the calling opcode. */
  readonly callables: Readonly<Record<string, (args: PyValue[]) => PyValue>>;
  /** The value a persistent id stands for; throws for an id it does not know. */
  persistentLoad(pid: PyValue): PyValue;
  /** What is allowed, for the refusal message ("only <description> are allowed"). */
  readonly description: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

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

export class Unpickler {
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
    private readonly allowlist: PickleAllowlist,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
      case OP.BINPERSID: return this.push(this.allowlist.persistentLoad(this.pop()));
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
    const value = this.dv.getBigUint64(this.take(8), true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(`pickle length is too large (${value})`);
    return Number(value);
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

  // --- globals and calls: with BINPERSID, the only places the allowlist matters

  private global(module: string, name: string): void {
    const qualified = `${module}.${name}`;
    if (!this.isCallable(qualified) && !this.allowlist.types.has(qualified)) {
      throw new Error(
        `${this.label}: refused pickle global '${qualified}' at byte ${this.opPos} of ${this.entryName} (only ${this.allowlist.description} are allowed)`,
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
    if (!(callable instanceof PyGlobal) || !this.isCallable(callable.qualifiedName)) {
      const what = callable instanceof PyGlobal ? `'${callable.qualifiedName}'` : 'a non-callable value';
      throw this.fail(`refused call of ${what}`);
    }
    this.push(this.allowlist.callables[callable.qualifiedName](args));
  }

  private isCallable(qualifiedName: string): boolean {
    return Object.hasOwn(this.allowlist.callables, qualifiedName);
  }
}
