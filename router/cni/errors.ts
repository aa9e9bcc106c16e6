// CNI errors (spec 1.0.0, "Error"): a code, a message a person can act on, details.
export const CNI = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO: 5,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN: 11,
  NOT_AVAILABLE: 50,
  // weft's own (100+)
  IPAM: 100,
  WIRING: 101,
  CHECK_FAILED: 102,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = "",
  ) {
    super(message);
  }
}
