// `npm run bench -- <scenario> [options]`: each scenario prints a human summary, writes
// bench/results/<scenario>.json (or --results DIR) and prints its headline figure as its last line.
// See bench/README.md.
import { coldStart } from './cold-start.js';
import { agentFootprint } from './scenarios/agent-footprint.js';
import { churn } from './scenarios/churn.js';
import { fanout } from './scenarios/fanout.js';
import { registry } from './scenarios/registry.js';
import { reconnectStorm } from './scenarios/reconnect-storm.js';
import { sessions } from './scenarios/sessions.js';
import { telemetryIngest } from './telemetry-ingest.js';
import { tunnel } from './scenarios/tunnel.js';

const scenarios: Record<string, (args: string[]) => Promise<void>> = {
  sessions,
  fanout,
  'fanout-kube': (args) => fanout(['--store', 'kubernetes', ...args]),
  'reconnect-storm': reconnectStorm,
  churn,
  'agent-footprint': agentFootprint,
  'cold-start': coldStart,
  'telemetry-ingest': telemetryIngest,
  registry,
  tunnel,
};
const [name, ...args] = process.argv.slice(2).filter((a) => a !== '--');
const run = name ? scenarios[name] : undefined;
if (!run) {
  console.error(`usage: npm run bench -- <scenario> [options]; scenarios: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
try {
  await run(args);
} catch (err) {
  console.error(`bench ${name} failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
}
// Child processes and sockets are closed by the scenario; do not wait on stray handles.
process.exit(process.exitCode ?? 0);
