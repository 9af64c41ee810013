import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What every instance process of a chaos run does first: append one line
 * `<node> <instance> <gen> <pid>` to `$MARKER_DIR/<instance>.starts`, then exec a long sleep (so
 * the pid the agent reports is the pid in the line). SIGTERM is ignored while the line is written,
 * so a process the agent stops at once still leaves its line (it is then SIGKILLed after the
 * grace period, which is what an app ignoring SIGTERM gets). One line is one process start: the
 * ground truth the hub's Started events are compared with.
 */
export const MARKER_SCRIPT =
  'trap "" TERM; echo "$OUTPOST_NODE $OUTPOST_INSTANCE $GEN $$" >> "$MARKER_DIR/$OUTPOST_INSTANCE.starts"; trap - TERM; exec sleep 100000';

/** One process start, in the order the starts of that instance were written. */
export interface StartRecord {
  node: string;
  instance: string;
  gen: string;
  pid: number;
}

/** Every start recorded in `dir`, by instance name, in file order. */
export function readMarkers(dir: string): Map<string, StartRecord[]> {
  const out = new Map<string, StartRecord[]>();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.starts')).sort();
  } catch {
    return out;
  }
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(join(dir, f), 'utf8');
    } catch {
      continue;
    }
    // Only complete lines: a start being written right now is read on the next pass.
    const lines = text.split('\n').slice(0, -1);
    for (const line of lines) {
      const [node, instance, gen, pid] = line.trim().split(' ');
      if (!node || !instance || !gen || !pid || !/^\d+$/.test(pid)) continue;
      const list = out.get(instance) ?? [];
      list.push({ node, instance, gen, pid: Number(pid) });
      out.set(instance, list);
    }
  }
  return out;
}

/** The starts of `instance` on `node`, in order. */
export function startsOn(markers: Map<string, StartRecord[]>, instance: string, node: string): StartRecord[] {
  return (markers.get(instance) ?? []).filter((s) => s.node === node);
}
