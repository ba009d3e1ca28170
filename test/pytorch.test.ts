// The PyTorch checkpoint reader: golden checkpoints match model.safetensors byte for byte, hostile
// pickles are refused without running anything, broken files give clear errors, and only the
// bytes that are needed are read.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryReader } from '../src/core/bytes.js';
import { openPyTorchCheckpoint } from '../src/core/pytorch.js';
import type { ByteReader } from '../src/core/tensor-source.js';
import { FileReader } from '../src/node/file.js';
import { Pickle } from './helpers/pickle.js';
import { buildZip, listZip } from './helpers/zip.js';

const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/golden/${path}`, import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'pytorch-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// --- a tiny safetensors parser, to compare against

interface SafeTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

function readSafetensors(path: string): Map<string, SafeTensor> {
  const file = new Uint8Array(readFileSync(path));
  const headerLength = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength)));
  const base = 8 + headerLength;
  const tensors = new Map<string, SafeTensor>();
  for (const [name, t] of Object.entries<{ dtype: string; shape: number[]; data_offsets: [number, number] }>(header)) {
    if (name === '__metadata__') continue;
    tensors.set(name, { dtype: t.dtype, shape: t.shape, data: file.subarray(base + t.data_offsets[0], base + t.data_offsets[1]) });
  }
  return tensors;
}

function checkpointZip(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}, archive = 'archive'): Uint8Array {
  return buildZip([
    { name: `${archive}/data.pkl`, data: pickle },
    ...Object.entries(storages).map(([key, data]) => ({ name: `${archive}/data/${key}`, data })),
    { name: `${archive}/version`, data: new TextEncoder().encode('3\n') },
  ]);
}

function open(bytes: Uint8Array, label = 'checkpoint.pt') {
  return openPyTorchCheckpoint(new MemoryReader(bytes, label));
}

/** A ByteReader that counts and records what is read through it. */
class CountingReader implements ByteReader {
  bytesRead = 0;
  readonly ranges: [number, number][] = [];
  constructor(private readonly inner: ByteReader) {}
  get label() {
    return this.inner.label;
  }
  get size() {
    return this.inner.size;
  }
  read(offset: number, length: number) {
    this.bytesRead += length;
    this.ranges.push([offset, length]);
    return this.inner.read(offset, length);
  }
  close() {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

describe('golden checkpoints', () => {
  for (const name of ['tiny', 'tiny-bf16']) {
    it(`${name}: the state_dict equals model.safetensors (names, dtypes, shapes, bytes)`, async () => {
      const expected = readSafetensors(fixture(`${name}/model.safetensors`));
      const source = await openPyTorchCheckpoint(await FileReader.open(fixture(`${name}/checkpoint.pt`)));
      try {
        expect(new Set(source.names())).toEqual(new Set(expected.keys()));
        for (const [tensor, want] of expected) {
          const info = source.info(tensor)!;
          expect([tensor, info.dtype, info.shape]).toEqual([tensor, want.dtype, want.shape]);
          expect(info.byteLength).toBe(want.data.byteLength);
          const got = await source.read(tensor);
          expect(Buffer.compare(got, want.data), tensor).toBe(0);
        }
      } finally {
        await source.close?.();
      }
    });
  }

  it('opening and reading one tensor reads a small fraction of the file', async () => {
    const reader = new CountingReader(await FileReader.open(fixture('tiny/checkpoint.pt')));
    const source = await openPyTorchCheckpoint(reader);
    await source.read('quantizer_pix.codebooks.0.weight');
    expect(reader.bytesRead).toBeLessThan(reader.size / 20);
    await source.close?.();
  });

  it('reading the whole state_dict never touches the optimizer state', async () => {
    // In this fixture the state_dict uses storages 0..349; 350..469 hold the Adam state.
    const optimizer = listZip(new Uint8Array(readFileSync(fixture('tiny/checkpoint.pt')))).filter((e) => {
      const key = /^checkpoint\/data\/(\d+)$/.exec(e.name)?.[1];
      return key !== undefined && Number(key) >= 350;
    });
    expect(optimizer).toHaveLength(120);
    const reader = new CountingReader(await FileReader.open(fixture('tiny/checkpoint.pt')));
    const source = await openPyTorchCheckpoint(reader);
    for (const name of source.names()) await source.read(name);
    for (const [offset, length] of reader.ranges) {
      const touched = optimizer.filter((e) => offset < e.dataStart + e.size && e.dataStart < offset + length);
      expect(touched.map((e) => e.name)).toEqual([]);
    }
    await source.close?.();
  });
});

describe('checkpoints built by hand', () => {
  const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);
  // A protocol-4 pickle (FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE) of a bare state_dict with
  // views of a shared storage, a parameter, an int64 scalar, a uint8 tensor and a non-tensor value.
  function viewsPickle(): Uint8Array {
    const p = new Pickle().op(0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0);
    p.stackGlobal('collections', 'OrderedDict').op(0x94, 0x29).reduce().op(0x94).mark();
    p.str('transposed').tensor('FloatStorage', '0', 6, 0, [3, 2], [1, 3]);
    p.str('offset').tensor('FloatStorage', '0', 6, 2, [2], [1]);
    p.str('row').tensor('FloatStorage', '0', 6, 3, [1, 3], [7, 1]);
    p.str('empty').tensor('FloatStorage', '0', 6, 0, [0, 4], [4, 1]);
    p.str('step').tensor('LongStorage', '1', 1, 0, [], []);
    p.str('param').stackGlobal('torch._utils', '_rebuild_parameter').mark();
    p.tensor('HalfStorage', '2', 2, 0, [2], [1]).op(0x88).global('collections', 'OrderedDict').op(0x29).reduce().tuple().reduce();
    p.str('mask').tensor('ByteStorage', '3', 4, 0, [4], [1]);
    p.str('epoch').int(5);
    return p.op(0x75).bytes();
  }
  const storages = {
    '0': f32(0, 1, 2, 3, 4, 5),
    '1': new Uint8Array(new BigInt64Array([42n]).buffer),
    '2': new Uint8Array(new Uint16Array([0x3c00, 0x4000]).buffer),
    '3': Uint8Array.of(1, 0, 1, 1),
  };

  it('reads strided views, offsets, parameters and int64 scalars from a ZIP64 archive', async () => {
    const bytes = buildZip(
      [
        { name: 'my_model/data.pkl', data: viewsPickle(), localExtra: new Uint8Array([0x46, 0x42, 3, 0, 0x5a, 0x5a, 0x5a]) },
        ...Object.entries(storages).map(([key, data]) => ({ name: `my_model/data/${key}`, data })),
        { name: 'my_model/byteorder', data: new TextEncoder().encode('little') },
      ],
      { zip64: true },
    );
    const source = await open(bytes);
    expect(source.names()).toEqual(['transposed', 'offset', 'row', 'empty', 'step', 'param']);
    expect(source.info('transposed')).toEqual({ name: 'transposed', dtype: 'F32', shape: [3, 2], byteLength: 24 });
    expect(await source.read('transposed')).toEqual(f32(0, 3, 1, 4, 2, 5));
    expect(await source.read('offset')).toEqual(f32(2, 3));
    expect(await source.read('row')).toEqual(f32(3, 4, 5));
    expect(await source.read('empty')).toEqual(new Uint8Array(0));
    expect(source.info('step')).toMatchObject({ dtype: 'I64', shape: [], byteLength: 8 });
    expect(await source.read('step')).toEqual(storages['1']);
    expect(source.info('param')).toMatchObject({ dtype: 'F16', shape: [2] });
    expect(await source.read('param')).toEqual(storages['2']);
    expect(() => source.info('mask')).toThrow(/checkpoint\.pt: tensor 'mask' is stored as torch\.ByteStorage, an unsupported dtype/);
    await expect(source.read('mask')).rejects.toThrow(/unsupported dtype/);
    expect(source.info('nope')).toBeUndefined();
  });

  it('finds the state_dict under state_dict, model, or a given key', async () => {
    const wrapped = (key: string) => {
      const p = new Pickle().op(0x80, 2, 0x7d).mark().str('epoch').int(3).str(key).op(0x7d).mark();
      p.str('w').tensor('FloatStorage', '0', 6, 0, [6], [1]);
      return checkpointZip(p.op(0x75, 0x75).bytes(), { '0': storages['0'] });
    };
    expect((await open(wrapped('state_dict'))).names()).toEqual(['w']);
    expect((await open(wrapped('model'))).names()).toEqual(['w']);
    const ema = await openPyTorchCheckpoint(new MemoryReader(wrapped('ema'), 'c.pt'), { stateDictKey: 'ema' });
    expect(ema.names()).toEqual(['w']);
    await expect(open(wrapped('ema'))).rejects.toThrow(/checkpoint\.pt: no state_dict found \(top-level keys: epoch, ema\)/);
  });

  it('reports a storage entry the pickle names but the zip lacks', async () => {
    const p = new Pickle().op(0x80, 2, 0x7d).mark().str('w').tensor('FloatStorage', '7', 6, 0, [6], [1]).op(0x75);
    await expect(open(checkpointZip(p.bytes(), storages))).rejects.toThrow(
      /checkpoint\.pt: tensor 'w' needs storage entry 'archive\/data\/7', which is missing/,
    );
  });

  it('reports a view that runs past the end of its storage', async () => {
    const p = new Pickle().op(0x80, 2, 0x7d).mark().str('w').tensor('FloatStorage', '0', 99, 4, [3], [1]).op(0x75);
    await expect(open(checkpointZip(p.bytes(), storages))).rejects.toThrow(/tensor 'w' needs 28 bytes of storage entry 'archive\/data\/0', which holds 24/);
  });
});

describe('hostile pickles are refused and nothing runs', () => {
  const marker = join(tmp, 'pwned');
  const command = `touch ${marker}`;
  const cases: [string, string, Pickle][] = [
    ['os.system', 'GLOBAL + REDUCE', new Pickle().op(0x80, 2).global('os', 'system').str(command).op(0x85).reduce()],
    [
      'builtins.eval',
      'GLOBAL + REDUCE',
      new Pickle().op(0x80, 2).global('builtins', 'eval').str(`__import__('os').system('${command}')`).op(0x85).reduce(),
    ],
    ['posix.system', 'STACK_GLOBAL', new Pickle().op(0x80, 4).stackGlobal('posix', 'system').str(command).op(0x85).reduce()],
    [
      'subprocess.Popen',
      'after a valid tensor',
      new Pickle()
        .op(0x80, 2, 0x7d)
        .mark()
        .str('w')
        .tensor('FloatStorage', '0', 1, 0, [1], [1])
        .str('x')
        .global('subprocess', 'Popen')
        .op(0x5d) // ['touch', marker], built by EMPTY_LIST + MARK ... APPENDS
        .mark()
        .str('touch')
        .str(marker)
        .op(0x65, 0x85)
        .reduce()
        .op(0x75),
    ],
  ];

  for (const [global, how, pickle] of cases) {
    it(`refuses ${global} (${how})`, async () => {
      const path = join(tmp, 'evil.pt');
      writeFileSync(path, checkpointZip(pickle.bytes(), { '0': new Uint8Array(4) }));
      const reader = await FileReader.open(path);
      await expect(openPyTorchCheckpoint(reader)).rejects.toThrow(
        new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: refused pickle global '${global.replace('.', '\\.')}'`),
      );
      await reader.close();
      expect(existsSync(marker)).toBe(false);
    });
  }

  it('refuses a call of an allowed global that is not a function', async () => {
    const p = new Pickle().op(0x80, 2).global('torch', 'FloatStorage').op(0x29).reduce();
    await expect(open(checkpointZip(p.bytes()))).rejects.toThrow(/refused call of 'torch\.FloatStorage'/);
  });

  it('names unknown opcodes with their position', async () => {
    const p = new Pickle().op(0x80, 2, 0x7d, 0x69);
    await expect(open(checkpointZip(p.bytes()))).rejects.toThrow(
      /checkpoint\.pt: unsupported pickle opcode 0x69 \('i'\) at byte 3 of archive\/data\.pkl/,
    );
  });

  it('rejects a stack underflow and a bad memo reference', async () => {
    await expect(open(checkpointZip(new Pickle().op(0x80, 2, 0x73).bytes()))).rejects.toThrow(/stack underflow/);
    await expect(open(checkpointZip(new Pickle().op(0x80, 2, 0x68, 9).bytes()))).rejects.toThrow(/memo has no entry 9/);
  });
});

describe('broken files', () => {
  const golden = new Uint8Array(readFileSync(fixture('tiny/checkpoint.pt')));

  it('a checkpoint cut in half is reported as truncated', async () => {
    await expect(open(golden.slice(0, golden.length >> 1))).rejects.toThrow(
      /checkpoint\.pt: truncated checkpoint: the zip end-of-central-directory record is missing/,
    );
  });

  it('a checkpoint cut to 10 bytes is reported as truncated', async () => {
    await expect(open(golden.slice(0, 10))).rejects.toThrow(/checkpoint\.pt: truncated checkpoint/);
  });

  it('garbage bytes are not a checkpoint', async () => {
    const garbage = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff);
    await expect(open(garbage)).rejects.toThrow(/checkpoint\.pt: not a PyTorch checkpoint: no zip end-of-central-directory record/);
  });

  it('a legacy (pre-1.6) torch.save file is named as such', async () => {
    await expect(open(Uint8Array.of(0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc))).rejects.toThrow(/legacy torch\.save format/);
  });

  it('a corrupted central directory is reported', async () => {
    const bad = golden.slice();
    const eocd = bad.length - 22;
    const cdOffset = new DataView(bad.buffer).getUint32(eocd + 16, true);
    bad.fill(0xee, cdOffset, cdOffset + 8);
    await expect(open(bad)).rejects.toThrow(/checkpoint\.pt: zip central directory is corrupt/);
  });

  it('a truncated or garbled pickle is reported', async () => {
    const pickle = new Pickle().op(0x80, 2, 0x7d).mark().str('w').tensor('FloatStorage', '0', 1, 0, [1], [1]).op(0x75).bytes();
    await expect(open(checkpointZip(pickle.slice(0, 40)))).rejects.toThrow(/checkpoint\.pt: pickle ends early .* of archive\/data\.pkl/);
    const garbled = pickle.slice();
    garbled.fill(0xfe, 10, 20);
    await expect(open(checkpointZip(garbled))).rejects.toThrow(/checkpoint\.pt: .*at byte \d+ of archive\/data\.pkl/);
  });

  it('a storage entry that runs past the end of the file is reported when read', async () => {
    const pickle = new Pickle().op(0x80, 2, 0x7d).mark().str('w').tensor('FloatStorage', '0', 1, 0, [1], [1]).op(0x75).bytes();
    const zip = checkpointZip(pickle, { '0': new Uint8Array(4) });
    // Claim a 1 MB entry in the central directory (the name's last occurrence is the central one).
    const central = Buffer.from(zip).lastIndexOf('archive/data/0') - 46;
    new DataView(zip.buffer).setUint32(central + 20, 1 << 20, true);
    new DataView(zip.buffer).setUint32(central + 24, 1 << 20, true);
    const source = await open(zip);
    await expect(source.read('w')).rejects.toThrow(
      /checkpoint\.pt: data of zip entry 'archive\/data\/0' lies past the end of the file \(\d+ bytes\); the file is truncated/,
    );
  });

  it('a zip without data.pkl is not a checkpoint', async () => {
    const zip = buildZip([{ name: 'archive/version', data: Uint8Array.of(0x33) }]);
    await expect(open(zip)).rejects.toThrow(/checkpoint\.pt: not a torch\.save checkpoint: the zip has no '<archive>\/data\.pkl' entry/);
  });

  it('compressed entries are refused, naming the entry', async () => {
    const pickle = new Pickle().op(0x80, 2, 0x7d).mark().str('w').tensor('FloatStorage', '0', 1, 0, [1], [1]).op(0x75).bytes();
    const deflatedPickle = buildZip([{ name: 'archive/data.pkl', data: pickle, method: 8 }]);
    await expect(open(deflatedPickle)).rejects.toThrow(/checkpoint\.pt: zip entry 'archive\/data\.pkl' is compressed \(method 8\)/);
    const deflatedStorage = buildZip([
      { name: 'archive/data.pkl', data: pickle },
      { name: 'archive/data/0', data: new Uint8Array(4), method: 8 },
    ]);
    await expect(open(deflatedStorage)).rejects.toThrow(/zip entry 'archive\/data\/0' is compressed/);
  });

  it('a big-endian checkpoint is refused', async () => {
    const zip = buildZip([
      { name: 'archive/data.pkl', data: new Pickle().op(0x80, 2, 0x7d).bytes() },
      { name: 'archive/byteorder', data: new TextEncoder().encode('big') },
    ]);
    await expect(open(zip)).rejects.toThrow(/'big'-endian/);
  });
});
