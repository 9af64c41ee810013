// `npm run bench -- <scenario> [options]`: each scenario prints a human summary, writes
// bench/results/<scenario>.json and prints its headline figure as its last line.
import { coldStart } from './cold-start.js';
import { telemetryIngest } from './telemetry-ingest.js';

const scenarios: Record<string, (args: string[]) => Promise<void>> = { 'cold-start': coldStart, 'telemetry-ingest': telemetryIngest };
const [name, ...args] = process.argv.slice(2).filter((a) => a !== '--');
const run = name ? scenarios[name] : undefined;
if (!run) {
  console.error(`usage: npm run bench -- <scenario> [options]; scenarios: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
await run(args);
