// The op modules: each src/ops/<op>/ holds the op's WGSL variants, spec.ts (its variants, the
// calls each takes, the defaults per adapter class), the recording function, its float64
// reference and cases.ts. The variant tests, the kernel lab and autotune take their cases here.
import { ATTENTION_CASES } from './attention/cases.js';
import { CONV2D_CASES } from './conv2d/cases.js';
import { GROUP_NORM_CASES } from './group_norm/cases.js';
import { LAYER_NORM_CASES } from './layer_norm/cases.js';
import { LINEAR_CASES } from './linear/cases.js';
import { RQ_SEARCH_CASES } from './rq_search/cases.js';
import { SOFTMAX_CASES } from './softmax/cases.js';
import type { OpCases, OpName } from './types.js';

export const OP_CASES: Record<OpName, OpCases> = {
  linear: LINEAR_CASES,
  attention: ATTENTION_CASES,
  conv2d: CONV2D_CASES,
  group_norm: GROUP_NORM_CASES,
  rq_search: RQ_SEARCH_CASES,
  layer_norm: LAYER_NORM_CASES,
  softmax: SOFTMAX_CASES,
};
