// A pickle writer for tests: the opcodes of torch.save's pickles, chained (`p.mark().str('w')...`),
// plus op() for any raw bytes (hand-made protocol headers, hostile or broken pickles). With a
// protocol it writes that protocol's header and only opcodes it has (protocol 2: GLOBAL and
// BINUNICODE, as PyTorch 1.13 writes); without one it writes no header and the newest opcodes
// (STACK_GLOBAL, SHORT_BINUNICODE), for tests that write their own header.

const OP = {
  MARK: 0x28, EMPTY_TUPLE: 0x29, STOP: 0x2e, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, BINPERSID: 0x51,
  REDUCE: 0x52, BINUNICODE: 0x58, GLOBAL: 0x63, TUPLE: 0x74, SETITEMS: 0x75, EMPTY_DICT: 0x7d, PROTO: 0x80,
  NEWFALSE: 0x89, LONG1: 0x8a, SHORT_BINUNICODE: 0x8c, STACK_GLOBAL: 0x93,
} as const;

const utf8 = new TextEncoder();

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** A non-negative integer as LONG1's little-endian two's complement bytes. */
function longBytes(n: number): number[] {
  const bytes: number[] = [];
  for (let v = BigInt(n); v > 0n; v >>= 8n) bytes.push(Number(v & 0xffn));
  if (bytes[bytes.length - 1] & 0x80) bytes.push(0);
  return bytes;
}

export class Pickle {
  private readonly out: number[] = [];
  private readonly newest: boolean;

  constructor(protocol?: number) {
    this.newest = protocol === undefined || protocol >= 4;
    if (protocol !== undefined) this.op(OP.PROTO, protocol);
  }

  op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }

  str(s: string): this {
    const b = utf8.encode(s);
    if (this.newest && b.length < 256) return this.op(OP.SHORT_BINUNICODE, b.length).raw(b);
    return this.op(OP.BINUNICODE, ...u32(b.length)).raw(b);
  }

  int(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`Pickle.int: ${n}`);
    if (n < 0x100) return this.op(OP.BININT1, n);
    if (n < 0x10000) return this.op(OP.BININT2, n & 0xff, n >>> 8);
    if (n < 0x80000000) return this.op(OP.BININT, ...u32(n));
    const bytes = longBytes(n);
    return this.op(OP.LONG1, bytes.length, ...bytes);
  }

  ints(ns: number[]): this {
    this.mark();
    for (const n of ns) this.int(n);
    return this.tuple();
  }

  global(module: string, name: string): this {
    return this.op(OP.GLOBAL).raw(utf8.encode(`${module}\n${name}\n`));
  }

  stackGlobal(module: string, name: string): this {
    return this.str(module).str(name).op(OP.STACK_GLOBAL);
  }

  mark(): this {
    return this.op(OP.MARK);
  }

  tuple(): this {
    return this.op(OP.TUPLE);
  }

  emptyTuple(): this {
    return this.op(OP.EMPTY_TUPLE);
  }

  emptyDict(): this {
    return this.op(OP.EMPTY_DICT);
  }

  setItems(): this {
    return this.op(OP.SETITEMS);
  }

  reduce(): this {
    return this.op(OP.REDUCE);
  }

  orderedDict(): this {
    return this.global('collections', 'OrderedDict').emptyTuple().reduce();
  }

  /** _rebuild_tensor_v2(('storage', torch.<storageClass>, key, 'cpu', numel), offset, shape, stride, False, OrderedDict()) */
  tensor(storageClass: string, key: string, storageNumel: number, offset: number, shape: number[], stride: number[]): this {
    this.named('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').named('torch', storageClass).str(key).str('cpu').int(storageNumel).tuple().op(OP.BINPERSID);
    this.int(offset).ints(shape).ints(stride).op(OP.NEWFALSE).orderedDict();
    return this.tuple().reduce();
  }

  /** The pickle, STOP included. */
  bytes(): Uint8Array {
    return Uint8Array.from([...this.out, OP.STOP]);
  }

  private raw(bytes: Uint8Array): this {
    for (const b of bytes) this.out.push(b);
    return this;
  }

  /** A global as the protocol names it: STACK_GLOBAL from protocol 4 on, GLOBAL before. */
  private named(module: string, name: string): this {
    return this.newest ? this.stackGlobal(module, name) : this.global(module, name);
  }
}
