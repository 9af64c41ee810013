import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * TCP ports in LISTEN state whose sockets are held by a process of the process group `pgid`
 * (an instance's process and its children: the runtime starts each instance as a group leader).
 * Linux /proc only; elsewhere the set is empty, so the check refuses rather than allows.
 */
export function listeningPortsOfGroup(pgid: number): Set<number> {
  const inodes = new Set<string>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return new Set();
  }
  for (const pid of pids) {
    if (processGroup(pid) !== pgid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1]) inodes.add(m[1]);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  const ports = new Set<number>();
  if (inodes.size === 0) return ports;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT, st 0A = LISTEN, inode is column 9.
      if (cols[3] !== '0A' || !cols[9] || !inodes.has(cols[9])) continue;
      const port = parseInt(cols[1]?.split(':')[1] ?? '', 16);
      if (Number.isInteger(port)) ports.add(port);
    }
  }
  return ports;
}

function processGroup(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that ends the command name: state ppid pgrp ...
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[2]);
  } catch {
    return undefined;
  }
}
