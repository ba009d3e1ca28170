// A tokenizer.json from disk (given, or found beside the model's weights) as the text tower's
// tokenizer: fixed length = the text config's max_position_embeddings, pad id = its pad_token_id.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TextConfig } from '../core/config.js';
import { HfTextTokenizer, type TokenizerOptions } from '../core/tokenizer.js';
import { readJson } from './io.js';

/** tokenizer.json in the model folder (or beside the weights file), if there is one. */
export function findTokenizerFile(modelPath: string): string | undefined {
  const dir = existsSync(modelPath) && statSync(modelPath).isDirectory() ? modelPath : dirname(modelPath);
  const path = join(dir, 'tokenizer.json');
  return existsSync(path) ? path : undefined;
}

/** Reads `path` (a tokenizer.json; tokenizer_config.json beside it is read too when present). */
export function loadTokenizerFile(path: string, text: TextConfig, opts: Partial<TokenizerOptions> = {}): HfTextTokenizer {
  const configPath = join(dirname(path), 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath) : {};
  return new HfTextTokenizer(readJson(path), { length: text.maxPositionEmbeddings, padId: text.padTokenId, label: path, ...opts }, config);
}
