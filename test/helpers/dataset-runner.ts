// A test-only entry for the dataset commands (tokenize, queue, worker) until src/node/cli.ts
// routes them: the same ParsedArgs the CLI builds, the same exit statuses (0, 1, 2). Bundled by
// test/helpers/redis.ts (bundleRunner) and run as a child process.
import { parseArgs } from '../../src/node/args.js';
import { DATASET_SWITCHES, DATASET_VALUE_FLAGS, DatasetPartialFailure, queueCommand, tokenizeCommand, workerCommand } from '../../src/node/dataset-commands.js';
import { oneLine } from '../../src/node/messages.js';

async function main(argv: string[]): Promise<number> {
  try {
    const args = parseArgs(argv, ['model', 'out', 'adapter', 'batch-size', ...DATASET_VALUE_FLAGS], ['quiet', 'exif-rotate', ...DATASET_SWITCHES]);
    const commands: Record<string, () => Promise<void>> = {
      tokenize: () => tokenizeCommand(args),
      queue: () => queueCommand(args),
      worker: () => workerCommand(args),
    };
    const run = commands[args.command];
    if (!run) throw new Error(`unknown command '${args.command}'`);
    await run();
    return 0;
  } catch (e) {
    console.error(`dualtoken: ${oneLine(e instanceof Error ? e.message : String(e))}`);
    return e instanceof DatasetPartialFailure ? 2 : 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
