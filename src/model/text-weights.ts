// Loading the text tower's weights (TextTower.load): the tensors the tower reads, uploaded (and
// packed to halves under precision 'f16'), and the logit parameters classify needs.
// With precision 'f16' (linear reads every weight as halves: kn_sg_f16, one layout for every
// shape class), each linear weight is packed to halves right after it is uploaded and its f32
// original freed before the next tensor is read: the load peaks at the f16 total plus one f32
// tensor (so400m: ~0.85 GB instead of 1.65 GB). The packing is the one linear() would make at
// the first recording (same kernel, same key), so the numbers are the same. With 'f32' the
// weights are uploaded as f32 and the kn* variants pack them at the first recording, as before.
import type { TextConfig } from '../core/config.js';
import { toFloat32 } from '../core/dtype.js';
import type { KernelLibrary } from '../core/kernels.js';
import { packedWeight } from '../ops/packing.js';
import { Program } from '../core/program.js';
import { shapeStr, type Tensor } from '../core/tensor.js';
import type { TensorSource } from '../core/tensor-source.js';
import { VARIANTS, shapeClass, variantsOf } from '../ops/choice.js';
import { Weights } from '../core/weights.js';
import { LOGIT_BIAS, LOGIT_SCALE, TOKEN_EMBEDDING, isTextLinearWeight, usedByText } from './text.js';
import type { TextTowerHost } from './text-model.js';

/** logit_scale (stored as a log) and logit_bias as read, or why classify cannot run. */
export interface LogitParams {
  scaleLog?: number;
  bias?: number;
  error?: string;
}

/**
 * The text tower's weights from `source`, once its token embedding table is checked against the
 * text_config (the table itself is not uploaded); `notePeak` is given the GPU bytes held after
 * each tensor's upload (and packing).
 */
export async function loadTextWeights(host: Pick<TextTowerHost, 'gpu' | 'kernels' | 'allowNonFinite'>, cfg: TextConfig, source: TensorSource, notePeak: (bytes: number) => void): Promise<Weights> {
  const info = source.info(TOKEN_EMBEDDING);
  const { vocabSize: V, hiddenSize: C } = cfg;
  if (!info) throw new Error(`${source.label}: missing tensor '${TOKEN_EMBEDDING}' (was the text tower dropped, e.g. by convert --drop-text-tower?)`);
  if (info.shape.length !== 2 || info.shape[0] !== V || info.shape[1] !== C) {
    throw new Error(`${source.label}: '${TOKEN_EMBEDDING}' has shape ${shapeStr(info.shape)}, the text_config needs [vocab_size = ${V}, hidden_size = ${C}]`);
  }
  const weights = new Weights(host.gpu, source);
  const packer = packsToHalves(host.kernels, cfg) ? new Program(host.kernels, `${source.label}: text weights to f16`) : undefined;
  const uploaded = (name: string, t: Tensor): void => {
    notePeak(weights.byteLength + weights.packedByteLength);
    if (!packer || !isTextLinearWeight(name)) return;
    const N = t.shape[0];
    const K = t.numel / N;
    if (K % 4 !== 0) return; // linear() reads such a weight as loaded ('tiled')
    packedWeight(packer, t, N, K, 'f16');
    notePeak(weights.byteLength + weights.packedByteLength); // the original and its halves, together
    weights.releaseOriginal(t, new Set()); // nothing is recorded yet: no program binds it
  };
  try {
    await weights.load(usedByText, undefined, undefined, host.allowNonFinite ? undefined : host.kernels, uploaded);
    await packer?.finalize(); // WebGPU's verdict on the packings
  } catch (e) {
    weights.destroy();
    throw e;
  } finally {
    packer?.destroy();
  }
  return weights;
}

/** The [1]-shaped logit parameters, each checked finite; a missing one is an error for classify only. */
export async function readLogitParams(source: TensorSource): Promise<LogitParams> {
  const scalar = async (name: string): Promise<number | undefined> => {
    const i = source.info(name);
    if (!i) return undefined;
    const v = toFloat32(await source.read(name), i.dtype, `${source.label}: tensor '${name}'`);
    if (v.length !== 1 || !Number.isFinite(v[0])) throw new Error(`${source.label}: tensor '${name}' must hold one finite value (shape ${shapeStr(i.shape)})`);
    return v[0];
  };
  const scaleLog = await scalar(LOGIT_SCALE);
  const bias = await scalar(LOGIT_BIAS);
  if (scaleLog === undefined || bias === undefined) return { scaleLog, bias, error: `${source.label}: missing tensor '${scaleLog === undefined ? LOGIT_SCALE : LOGIT_BIAS}' (needed by classify)` };
  return { scaleLog, bias };
}

/**
 * Whether linear() reads every weight as halves whatever the shape class (precision 'f16' on an
 * adapter with kn_sg_f16): then the weights are packed at load (see the header).
 */
function packsToHalves(kernels: KernelLibrary, cfg: TextConfig): boolean {
  const v = variantsOf(kernels);
  const chosen = v.forClass('linear', shapeClass('linear', { M: cfg.maxPositionEmbeddings }));
  return v.singleWeightLayout() && VARIANTS.linear.find((i) => i.name === chosen)?.packs === 'f16';
}
