// dualtoken info: what a model folder holds and what running it costs.
import type { DType } from '../core/tensor-source.js';
import { modelFlops } from '../core/program.js';
import { DualToken } from '../model/dualtoken.js';
import { loadDualToken, openModelFiles, type LoadOptions } from './load.js';

const fmt = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${n}`);

export async function infoCommand(modelPath: string, load: LoadOptions = {}): Promise<void> {
  const files = await openModelFiles(modelPath);
  const { config: c, source } = files;
  const names = source.names();
  const dtypes = new Map<DType, number>();
  let params = 0;
  for (const n of names) {
    const i = source.info(n)!;
    dtypes.set(i.dtype, (dtypes.get(i.dtype) ?? 0) + 1);
    params += i.byteLength / (i.dtype === 'F32' || i.dtype === 'I32' ? 4 : i.dtype === 'I64' ? 8 : 2);
  }
  const unused = DualToken.unusedTensors(source, c);
  await source.close?.();
  const v = c.vision;
  const lines = [
    `weights      ${files.weightsPath}: ${names.length} tensors, ${fmt(params)} parameters (${[...dtypes].map(([d, k]) => `${k} ${d}`).join(', ')})`,
    `backbone     ${c.backbone || 'from siglip_config.json'}: ${v.numLayers} layers, width ${v.hiddenSize}, ${v.numHeads} heads, MLP ${v.intermediateSize}, ${v.imageSize} px / patch ${v.patchSize}`,
    `taps         shortcut ${c.layerShortcut ?? 'none'} (x${c.weightShortcut}), recon ${c.layerRecon}, semantic ${c.layerSem}`,
    `pixel codes  [${c.quantPix.codeShape}] from ${c.quantPix.nEmbed} x ${c.quantPix.embedDim}`,
    `sem. codes   [${c.quantSem.codeShape}] from ${c.quantSem.nEmbed} x ${c.quantSem.embedDim}`,
    `decoder      ch ${c.decoder.ch} x [${c.decoder.chMult}], ${c.decoder.numResBlocks} res blocks, attention at [${c.decoder.attnResolutions}], latent ${c.decoder.latentShape.join('x')} -> ${c.decoder.resolution} px`,
    `unused       ${unused.length} tensors not loaded${unused.length ? `: ${summarizeNames(unused)}` : ''}`,
  ];
  console.log(lines.join('\n'));
  const model = await loadDualToken(modelPath, { ...load, silenceAdapterWarnings: true });
  try {
    const enc = model.encoderProgram(1);
    const dec = model.decoderProgram(1);
    const flops = (p: typeof enc) => p.costs().reduce((s, x) => s + modelFlops(x), 0);
    const mem = model.memory();
    console.log(
      [
        `adapter      ${model.gpu.describe()}; features: ${['shader-f16', 'timestamp-query', 'subgroups'].filter((f) => model.gpu.has(f as 'shader-f16')).join(', ') || 'none'}`,
        `kernels      ${Object.entries(model.kernelChoice()).map(([op, v]) => `${op} ${v}`).join('; ')}; precision ${load.precision ?? 'f32'}`,
        `GPU memory   weights ${(mem.weights / 1e6).toFixed(1)} MB (f32) + packed layouts ${(mem.packed / 1e6).toFixed(1)} MB (originals read only through them are freed)`,
        `cost/image   encode ${fmt(flops(enc))}FLOP in ${enc.dispatchCount} dispatches, decode ${fmt(flops(dec))}FLOP in ${dec.dispatchCount} dispatches`,
      ].join('\n'),
    );
  } finally {
    model.dispose();
  }
}

/** Groups names by their first two dotted parts: "siglip_model.text_model (124), ...". */
function summarizeNames(names: string[]): string {
  const groups = new Map<string, number>();
  for (const n of names) {
    const key = n.split('.').slice(0, 2).join('.');
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].map(([k, n]) => `${k} (${n})`).join(', ');
}
