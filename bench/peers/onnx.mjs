// A tiny ONNX (protobuf) writer: enough to build single-op models for the peer benchmark.
// Written from the public onnx.proto field numbers; no dependency.
//   ModelProto:   ir_version=1 (int64), producer_name=2, graph=7, opset_import=8
//   OperatorSetIdProto: domain=1, version=2
//   GraphProto:   node=1, name=2, initializer=5, input=11, output=12
//   NodeProto:    input=1, output=2, name=3, op_type=4, attribute=5, domain=7
//   AttributeProto: name=1, f=2 (fixed32), i=3, ints=8, type=20 (FLOAT=1, INT=2, INTS=7)
//   TensorProto:  dims=1, data_type=2 (FLOAT=1, INT64=7), name=8, raw_data=9
//   ValueInfoProto: name=1, type=2; TypeProto: tensor_type=1;
//   TypeProto.Tensor: elem_type=1, shape=2; TensorShapeProto: dim=1; Dimension: dim_value=1

export const DT = { FLOAT: 1, INT64: 7 };

// ---- wire format -------------------------------------------------------------------------
class Writer {
  constructor() {
    this.chunks = [];
    this.length = 0;
  }
  bytes(u8) {
    this.chunks.push(u8);
    this.length += u8.length;
    return this;
  }
  varint(v) {
    // v: number or bigint, >= 0 (negative int64 is written as its 64-bit two's complement)
    let x = BigInt.asUintN(64, BigInt(v));
    const out = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x) b |= 0x80;
      out.push(b);
    } while (x);
    return this.bytes(Uint8Array.from(out));
  }
  tag(field, wire) {
    return this.varint((field << 3) | wire);
  }
  int(field, v) {
    return this.tag(field, 0).varint(v);
  }
  f32(field, v) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.tag(field, 5).bytes(b);
  }
  lenDelim(field, u8) {
    return this.tag(field, 2).varint(u8.length).bytes(u8);
  }
  str(field, s) {
    return this.lenDelim(field, new TextEncoder().encode(s));
  }
  msg(field, w) {
    return this.lenDelim(field, w.finish());
  }
  finish() {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

// ---- messages ----------------------------------------------------------------------------
function valueInfo(name, dims, elemType = DT.FLOAT) {
  const shape = new Writer();
  for (const d of dims) {
    const dim = new Writer();
    if (typeof d === 'string') dim.str(2, d);
    else dim.int(1, d);
    shape.msg(1, dim);
  }
  const tensorType = new Writer().int(1, elemType).msg(2, shape);
  const type = new Writer().msg(1, tensorType);
  return new Writer().str(1, name).msg(2, type);
}

function tensor(name, dims, data) {
  const w = new Writer();
  for (const d of dims) w.int(1, d);
  let dt;
  let raw;
  if (data instanceof Float32Array) {
    dt = DT.FLOAT;
    raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else if (data instanceof BigInt64Array) {
    dt = DT.INT64;
    raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else throw new Error(`initializer ${name}: Float32Array or BigInt64Array expected`);
  const n = dims.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims}]`);
  // little-endian host assumed (x86-64, arm64)
  return w.int(2, dt).str(8, name).lenDelim(9, raw);
}

function attribute(name, value) {
  const w = new Writer().str(1, name);
  if (Array.isArray(value)) {
    for (const v of value) w.int(8, v);
    return w.int(20, 7);
  }
  if (typeof value === 'object' && value && 'float' in value) return w.f32(2, value.float).int(20, 1);
  if (Number.isInteger(value)) return w.int(3, value).int(20, 2);
  return w.f32(2, value).int(20, 1);
}

function node({ op, inputs, outputs, name, attrs = {}, domain }) {
  const w = new Writer();
  for (const i of inputs) w.str(1, i);
  for (const o of outputs) w.str(2, o);
  w.str(3, name ?? `${op}_${outputs[0]}`);
  w.str(4, op);
  for (const [k, v] of Object.entries(attrs)) w.msg(5, attribute(k, v));
  if (domain) w.str(7, domain);
  return w;
}

/**
 * Build a serialized ModelProto.
 * spec: { name, opset, inputs: [{name, dims}], outputs: [{name, dims}],
 *         initializers: [{name, dims, data}], nodes: [{op, inputs, outputs, attrs}] }
 * attrs: integer -> INT, {float: x} or non-integer number -> FLOAT, array of integers -> INTS.
 */
export function buildModel(spec) {
  const g = new Writer();
  for (const n of spec.nodes) g.msg(1, node(n));
  g.str(2, spec.name ?? 'graph');
  for (const t of spec.initializers ?? []) g.msg(5, tensor(t.name, t.dims, t.data));
  for (const v of spec.inputs) g.msg(11, valueInfo(v.name, v.dims));
  for (const v of spec.outputs) g.msg(12, valueInfo(v.name, v.dims));
  const m = new Writer();
  m.int(1, spec.irVersion ?? 8);
  m.str(2, 'dualtoken-bench-peers');
  m.msg(7, g);
  m.msg(8, new Writer().str(1, '').int(2, spec.opset ?? 17));
  return m.finish();
}
