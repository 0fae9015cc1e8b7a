/** An error the API answers its caller with, as `{"error":{"code","message"}}` with `status` (domain services throw DomainError instead). */
export class RelayError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 414 | 415 | 422 | 429 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RelayError';
  }
}
