import { readFileSync } from 'node:fs';

/** A report item the hub refused and the agent therefore dropped (from the agent's log). */
export interface Refusal {
  seq: number;
  code: string;
  reason: string;
}

/**
 * The report items an agent logged as refused by the hub ("hub refused a report item; dropped"),
 * over all its restarts. Only for diagnosis: when a report is missing at the hub, this says
 * whether the hub refused it or it never arrived.
 */
export function readRefusals(logFile: string): Refusal[] {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  const out: Refusal[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('hub refused a report item')) continue;
    try {
      const j = JSON.parse(line) as { seq?: number; code?: string; reason?: string };
      out.push({ seq: j.seq ?? 0, code: j.code ?? '', reason: j.reason ?? '' });
    } catch {
      // a torn line (process killed mid-write)
    }
  }
  return out;
}
