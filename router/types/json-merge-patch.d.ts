// json-merge-patch (RFC 7396) ships no types: the one function weft calls.
declare module "json-merge-patch" {
  /** Applies a merge patch to target (which it may change) and returns the result. */
  export function apply(target: unknown, patch: unknown): unknown;
}
