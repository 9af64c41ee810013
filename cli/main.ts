import { Command, Option } from 'commander';
import { isOutpostError } from '../shared/errors.js';
import { OUTPOST_VERSION } from '../shared/version.js';
import { HubClient } from './client.js';
import { resolveConnection } from './config.js';
import { agentCommand, hubCommand, type AgentFlags } from './commands/processes.js';
import { agentStatusCommand } from './commands/agent-status.js';
import { OutpostError } from '../shared/errors.js';
import { playgroundCommand } from './commands/playground.js';
import { applyCommand, deleteCommand, describeCommand, eventsCommand, getCommand } from './commands/resources.js';
import { tokenCreateCommand, tokenDeleteCommand, tokenListCommand } from './commands/tokens.js';
import { registerRollout } from './commands/rollout.js';
import { describeDevice, registerDevices } from './commands/devices.js';
import { registerExec } from './commands/exec.js';
import { registerLogs } from './commands/logs.js';
import { registerPortForward } from './commands/port-forward.js';
import { describeServiceCommand, getServicesCommand, SERVICE_WORDS } from './commands/services.js';
import { resolveKind } from '../shared/api/index.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

const program = new Command('outpost')
  .description('Outpost: an edge-cloud orchestrator. Run a hub, join edge agents, deploy apps to node units.')
  .version(OUTPOST_VERSION)
  .option('--server <url>', 'hub URL (env OUTPOST_SERVER; default: the local hub)')
  .option('--token <token>', 'admin token (env OUTPOST_TOKEN; default: the local hub\'s admin-token file)')
  .enablePositionalOptions()
  .showHelpAfterError();

const client = () => new HubClient(resolveConnection(program.opts<{ server?: string; token?: string }>()));
const print = (text: string): void => { process.stdout.write(`${text}\n`); };

program
  .command('hub')
  .description('run the cloud hub (embedded SQLite store)')
  .option('--listen <host:port>', 'address of the API and agent endpoint', '127.0.0.1:7400')
  .option('--data <dir>', 'data directory (default $OUTPOST_HUB_DATA or ~/.outpost/hub)')
  .option('--read-deadline <duration>', 'close an agent session silent for this long', '30s')
  .option('--ping-interval <duration>', 'WebSocket ping period towards agents', '10s')
  .option('--admission-rate <n>', 'agent sessions admitted per second; a reconnect storm queues', '500')
  .option('--max-streams-per-node <n>', 'tunnel streams (logs, exec, port-forward) open at once per node', '32')
  .option('--store <type>', 'where desired state lives: sqlite (in --data) or kubernetes (CRDs; several replicas, leader election)', 'sqlite')
  .option('--kubeconfig <file>', 'with --store kubernetes: kubeconfig file (default: in-cluster, else KUBECONFIG or ~/.kube/config)')
  .option('--namespace <ns>', 'with --store kubernetes: namespace of the leader Lease and the credential Secrets (default: the pod\'s, else outpost-system)')
  .option('--replica-id <id>', 'with --store kubernetes: this replica\'s name in the leader Lease (default hostname-pid)')
  .option('--node-renew-interval <duration>', 'with --store kubernetes: how often a connected node\'s lastSeen is renewed in the API server', '40s')
  .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
  .action(hubCommand);

program
  .command('agent [action]')
  .description('run an edge agent on this node; `agent status --data DIR` shows an agent\'s own view (also when it is stopped)')
  .option('--hub <url>', 'hub URL, e.g. http://hub.example:7400; several replicas of one hub separated by commas (tried in turn)')
  .option('--name <name>', 'node name (unique in the hub)')
  .option('--token <token>', 'join token, needed on the first start only')
  .requiredOption('--data <dir>', 'data directory: credential, cache, outbox, instance logs')
  .option('--labels <k=v,...>', 'node labels given at join')
  .option('--listen <host:port>', 'local API (/healthz, /v1/status, /metrics)', '127.0.0.1:0')
  .option('--read-deadline <duration>', 'reconnect when the hub is silent for this long', '30s')
  .option('--backoff-max <duration>', 'upper bound of the reconnect backoff', '30s')
  .option('--stop-instances-on-exit', 'stop instances when the agent stops (by default they keep running)')
  .addOption(new Option('--container-socket <path>', 'Docker/Podman engine socket for container apps, or `none` (default: /run/podman/podman.sock, then /var/run/docker.sock)').env('OUTPOST_CONTAINER_SOCKET'))
  .option('--mqtt-listen <host:port>', 'embedded MQTT broker for devices (TCP), or `none`; use 0.0.0.0:1883 to serve the site network', '127.0.0.1:1883')
  .option('--mqtt-ws-listen <host:port>', 'also serve MQTT over WebSocket on this address')
  .option('--mqtt-url <url>', 'use this existing MQTT broker (e.g. mosquitto) instead of the embedded one: mqtt://user:password@host:1883')
  .option('--mqtt-anonymous', 'development only: accept clients without credentials (the client id names the device)')
  .option('--mqtt-tls-listen <host:port>', 'also serve MQTT over TLS on this address (with --mqtt-tls-cert and --mqtt-tls-key)')
  .option('--mqtt-tls-cert <file>', 'PEM certificate (chain) of the MQTT TLS listener')
  .option('--mqtt-tls-key <file>', 'PEM private key of the MQTT TLS listener')
  .option('--mqtt-tls-ca <file>', 'PEM CA of device client certificates: a device may log in with a certificate naming it (CN or DNS SAN) instead of a password')
  .option('--mqtt-login-limit <n/duration>', 'failed MQTT logins allowed per username: a burst of n, earned back over the duration; 0 = no limit', '10/1m')
  .option('--mqtt-login-limit-address <n/duration>', 'failed MQTT logins allowed per client address; 0 = no limit', '30/1m')
  .option('--telemetry-budget <rows>', 'device telemetry rows kept in the outbox while the hub is unreachable; oldest dropped first', '1000000')
  .option('--telemetry-max-age <duration>', 'device telemetry older than this is dropped from the outbox (counted)', '7d')
  .option('--tunnel-allow <host:port,...>', 'addresses on the node that port-forward streams may reach besides the ports of its instances')
  .option('--dns-listen <host:port>', 'registry DNS server (UDP and TCP) for <service>.outpost and <service>.<unit>.outpost, or `none`', '127.0.0.1:8600')
  .option('--dns-ttl <duration>', 'TTL of registry DNS answers', '5s')
  .option('--advertise-address <ip>', 'address registered for this node\'s EdgeApp instances with spec.service', '127.0.0.1')
  .option('--peer-listen <host:port>', 'registry peer link listener (replication and failure detection inside the unit), or `none`', '0.0.0.0:7946')
  .option('--peer-advertise <host:port>', 'address other agents of the unit dial for the peer link (default: the listen address; for 0.0.0.0 the first non-loopback IPv4)')
  .option('--registry-ttl-grace <n>', 'a registry instance that missed its TTL heartbeat is removed after this many further ttls', '3')
  .option('--registry-tombstone-retention <duration>', 'how long registry deletions are remembered (must outlast a partition)', '24h')
  .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
  .addOption(new Option('-o, --output <format>', 'agent status output').choices(['text', 'json']).default('text'))
  .action(async (action: string | undefined, o: AgentFlags & { output: string }) => {
    if (action === 'status') return print(await agentStatusCommand(o));
    if (action !== undefined) throw new OutpostError('BAD_REQUEST', `unknown agent action "${action}": use \`outpost agent --hub ...\` to run one, or \`outpost agent status --data DIR\``);
    if (!o.hub || !o.name) throw new OutpostError('BAD_REQUEST', 'outpost agent needs --hub URL and --name NAME (and --token on the first start)');
    await agentCommand(o);
  });

const token = program.command('token').description('join tokens for edge nodes');
token
  .command('create')
  .description('create a join token for a unit; prints the token')
  .requiredOption('--unit <unit>', 'the node unit the token joins nodes into')
  .option('--ttl <duration>', 'validity, e.g. 1h, 24h, 7d, or "never"', '24h')
  .option('--uses <n>', 'number of joins allowed, or "unlimited"', '1')
  .option('--description <text>', 'free text shown by token list')
  .option('--labels <k=v,...>', 'labels every node joining with this token gets (unit selectors match only these)')
  .action(async (o: { unit: string; ttl: string; uses: string; description?: string; labels?: string }) => print(await tokenCreateCommand(client(), o)));
token.command('list').description('list join tokens (never their secrets)').action(async () => print(await tokenListCommand(client())));
token.command('delete <id>').description('revoke a join token').action(async (id: string) => print(await tokenDeleteCommand(client(), id)));

program
  .command('apply')
  .description('create or update objects from YAML/JSON')
  .requiredOption('-f, --filename <path...>', 'file, directory, or - for stdin')
  .action(async (o: { filename: string[] }) => print((await applyCommand(client(), o.filename)).join('\n')));

program
  .command('get <kind> [name]')
  .description('list objects or show one (kinds: units, nodes, apps, instances, configs, devices, models; services: the hub registry view)')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'wide', 'json', 'yaml']).default('table'))
  .option('-l, --selector <selector>', 'label selector, e.g. tier=edge,zone!=eu')
  .option('--show-secrets', 'show the secretData values of configs (otherwise <redacted>)')
  .action(async (kind: string, name: string | undefined, o: { output: string; selector?: string; showSecrets?: boolean }) => print(SERVICE_WORDS.has(kind) ? await getServicesCommand(client(), name, o) : await getCommand(client(), kind, name, o)));

program
  .command('describe <kind> <name>')
  .description('show one object with its instances, nodes and events')
  .action(async (kind: string, name: string) => print(SERVICE_WORDS.has(kind) ? await describeServiceCommand(client(), name) : resolveKind(kind)?.kind === 'Device' ? await describeDevice(client(), name) : await describeCommand(client(), kind, name)));

program
  .command('delete <kind> <name>')
  .description('delete an object (apps, units; nodes: revokes the node credential)')
  .action(async (kind: string, name: string) => print(await deleteCommand(client(), kind, name)));

program
  .command('events')
  .description('events reported by agents')
  .option('--node <node>', 'only this node')
  .option('--object <name>', 'only this object')
  .action(async (o: { node?: string; object?: string }) => print(await eventsCommand(client(), o)));

registerRollout(program, client);
registerDevices(program, client);
registerExec(program, () => resolveConnection(program.opts<{ server?: string; token?: string }>()));
registerLogs(program, () => resolveConnection(program.opts<{ server?: string; token?: string }>()));
registerPortForward(program, () => resolveConnection(program.opts<{ server?: string; token?: string }>()));

program
  .command('playground')
  .description('start a local hub, two agents in units site-a and site-b, and the sample app (npm start)')
  .option('--data <dir>', 'where everything lives (default ./.outpost)')
  .action(playgroundCommand);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (isOutpostError(err)) {
    process.stderr.write(`error: ${err.message}\n`);
    for (const f of err.fields ?? []) process.stderr.write(`  ${f.path}: ${f.message}\n`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exitCode = 1;
}
