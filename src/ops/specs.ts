// Every op module's spec, by op name: the variant choice (choice.ts) reads only this.
import { ATTENTION } from './attention/spec.js';
import { CONV2D } from './conv2d/spec.js';
import { GROUP_NORM } from './group_norm/spec.js';
import { LAYER_NORM } from './layer_norm/spec.js';
import { LINEAR } from './linear/spec.js';
import { RQ_SEARCH } from './rq_search/spec.js';
import { SOFTMAX } from './softmax/spec.js';
import type { OpName, OpSpec } from './types.js';

export const SPECS: Record<OpName, OpSpec> = {
  linear: LINEAR,
  attention: ATTENTION,
  conv2d: CONV2D,
  group_norm: GROUP_NORM,
  rq_search: RQ_SEARCH,
  layer_norm: LAYER_NORM,
  softmax: SOFTMAX,
};

export const OP_NAMES = Object.keys(SPECS) as OpName[];
