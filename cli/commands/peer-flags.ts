import { OutpostError } from '../../shared/errors.js';
import type { AgentOptions } from '../../edge-agent/agent.js';
import { parseListen } from './processes.js';

/** The agent's registry replication flags (README "Replication and failure detection"). */
export interface PeerFlags {
  peerListen: string;
  peerAdvertise?: string;
}

export function peerOptions(flags: PeerFlags): NonNullable<AgentOptions['peers']> {
  let listen: { host: string; port: number } | undefined;
  if (flags.peerListen !== 'none') {
    try {
      listen = parseListen(flags.peerListen, '0.0.0.0');
    } catch {
      throw new OutpostError('BAD_REQUEST', `--peer-listen ${flags.peerListen}: expected HOST:PORT (e.g. 0.0.0.0:7946) or none`);
    }
  }
  if (flags.peerAdvertise !== undefined) {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(flags.peerAdvertise.trim());
    const port = Number(m?.[3]);
    if (!m || port < 1 || port > 65535) throw new OutpostError('BAD_REQUEST', `--peer-advertise ${flags.peerAdvertise}: expected HOST:PORT that other agents of the unit can dial, e.g. 10.0.0.5:7946`);
    if (!listen) throw new OutpostError('BAD_REQUEST', '--peer-advertise needs a peer listener (--peer-listen is none)');
  }
  return { ...(listen ? { listen } : {}), ...(flags.peerAdvertise ? { advertise: flags.peerAdvertise.trim() } : {}) };
}
