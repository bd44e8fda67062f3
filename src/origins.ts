/** `scheme://host[:port]` and nothing else: no path (not even `/`), query, fragment or credentials. */
const ORIGIN_SHAPE = /^https?:\/\/[^/?#@\s\\]+$/i;

/**
 * The canonical form of an exact web origin (`https://shop.example.com`, `http://localhost:3000`),
 * as browsers send it in the `Origin` header: lower-case host, default port dropped. Null when
 * the text is not one; wildcards are not origins.
 */
export function canonicalOrigin(text: string): string | null {
  if (!ORIGIN_SHAPE.test(text) || text.includes('*')) return null;
  try {
    const url = new URL(text);
    return url.hostname ? url.origin : null;
  } catch {
    return null;
  }
}
