/**
 * What went wrong in a domain service (consoles, endpoints), in the service's terms: what kind of
 * failure, a stable code and a sentence for the caller. Services know nothing of HTTP; the API's
 * errors plugin maps the kind to a status (api/plugins/errors.ts).
 */
export type DomainErrorKind =
  /** The input is malformed (a bad key, address or timestamp). */
  | 'invalid'
  /** What it names does not exist. */
  | 'not-found'
  /** It conflicts with the current state (in use, managed by the config, shutting down). */
  | 'conflict'
  /** Well-formed, but cannot be carried out as asked (outside the pool, cannot bind). */
  | 'unprocessable'
  /** A service it needs is out of reach for now (the fleet's database): try again shortly. */
  | 'unavailable';

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}
