/**
 * Splits an image reference into the `fromImage` and `tag` of a pull. The tag is what follows
 * the last ':' after the last '/' (a ':' before it belongs to a registry port, as in
 * `registry:5000/app`); a digest (`@sha256:...`) is passed as the tag. Without either, `latest`:
 * an empty tag would make the engine pull every tag of the repository.
 */
export function splitImageRef(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  if (at > 0) return { fromImage: ref.slice(0, at), tag: ref.slice(at + 1) };
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { fromImage: ref, tag: 'latest' };
}

/** An image name as a URL path segment sequence (`/images/{name}/json`). */
export function imagePath(ref: string): string {
  return ref.split('/').map(encodeURIComponent).join('/');
}
