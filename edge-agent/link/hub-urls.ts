import { OutpostError } from '../../shared/errors.js';

/**
 * `--hub` is one hub URL or a comma-separated list of the replicas of one hub (Kubernetes mode):
 * `http://hub-a:7400,http://hub-b:7400`. Each must be http(s)://. Trailing slashes are dropped.
 */
export function parseHubUrls(text: string): string[] {
  const urls = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (urls.length === 0) throw new OutpostError('BAD_REQUEST', '--hub: no URL given (expected http://host:port, or several separated by commas)');
  if (urls.length > 16) throw new OutpostError('BAD_REQUEST', `--hub: ${urls.length} URLs; at most 16`);
  return urls.map((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new OutpostError('BAD_REQUEST', `--hub: "${u}" is not a URL (expected http://host:port)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutpostError('BAD_REQUEST', `--hub: "${u}" must start with http:// or https://`);
    return u.replace(/\/+$/, '');
  });
}

/** The replica in use, and the next one after a failure (round robin). */
export class HubUrlRing {
  private readonly urls: string[];
  private i = 0;

  constructor(text: string) {
    this.urls = parseHubUrls(text);
  }

  get size(): number {
    return this.urls.length;
  }

  current(): string {
    return this.urls[this.i] as string;
  }

  /** Moves to the next URL (no-op with one). */
  next(): string {
    this.i = (this.i + 1) % this.urls.length;
    return this.current();
  }
}
