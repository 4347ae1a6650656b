// Command-line flags for the learner's CLIs: node's parseArgs plus the --help and bad-usage
// handling both share (usage on stdout for --help, on stderr with exit code 2 for a bad flag).
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O }>>['values'];

/** The parsed flags, or the exit code when the process should stop here (0 after --help, 2 after a bad flag). */
export function cliArgs<O extends Options>(options: O, usage: string, argv = process.argv.slice(2)): Values<O> | number {
  let values: Values<O>;
  try {
    values = parseArgs({ options, args: argv }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    return 2;
  }
  if ((values as { help?: unknown }).help === true) {
    console.log(usage);
    return 0;
  }
  return values;
}
