import type { ConsoleResource, EndpointResource, RelayInfo, VirtualMachineResource } from '@lifeline/relay/client';
import { relayRequest, TlsTrustError, type HttpAnswer } from './relay-tls.js';

/** A failed call to a relay, with a message fit for the UI. */
export class RelayApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = 'RelayApiError';
  }
}

/** The relay's control API v1, typed by the relay's exported client types. */
export class RelayApi {
  /**
   * `tlsFingerprint`: the pinned certificate of an https:// relay (SHA-256, `AB:CD:…`); without
   * one, the system's CAs must trust it.
   */
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly tlsFingerprint?: string,
    private readonly timeoutMs = 10_000,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: HttpAnswer;
    try {
      response = await relayRequest(new URL(`${this.url.replace(/\/+$/, '')}${path}`), {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        pin: this.tlsFingerprint,
        timeoutMs: this.timeoutMs,
      });
    } catch (error) {
      if (error instanceof TlsTrustError) throw new RelayApiError(error.message, 0, error.code);
      const cause = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new RelayApiError(`Cannot reach the relay at ${this.url} (${cause}). Check the URL and that the relay is running.`, 0, 'Unreachable');
    }
    let parsed: unknown;
    try {
      parsed = response.body ? JSON.parse(response.body) : undefined;
    } catch {
      throw new RelayApiError(`${this.url} did not answer like a Lifeline relay (HTTP ${response.status}).`, response.status, 'NotARelay');
    }
    if (response.status >= 300) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      if (response.status === 401) throw new RelayApiError(`The relay refused the API token${error?.message ? ` (${error.message})` : ''}. Check the token (the admin token is in <dataDir>/admin.token on the relay).`, 401, 'Unauthorized');
      if (error?.code === 'TlsRequired') throw new RelayApiError(`The relay speaks HTTPS: use https:// in its URL (${this.url.replace(/^http:/, 'https:')}).`, response.status, 'TlsRequired');
      if (response.status === 403) throw new RelayApiError(`Not allowed with this relay's API token: ${error?.message ?? 'forbidden'}. Ask the relay's administrator for a token with that scope.`, 403, 'Forbidden');
      throw new RelayApiError(error?.message ?? `HTTP ${response.status}`, response.status, error?.code ?? 'HttpError');
    }
    return parsed as T;
  }

  info(): Promise<RelayInfo> {
    return this.call('GET', '/v1/relay');
  }

  async virtualMachines(): Promise<VirtualMachineResource[]> {
    return (await this.call<{ value: VirtualMachineResource[] }>('GET', '/v1/virtualMachines')).value;
  }

  async console(vm: string): Promise<ConsoleResource | undefined> {
    try {
      return await this.call<ConsoleResource>('GET', `/v1/virtualMachines/${encodeURIComponent(vm)}/console`);
    } catch (error) {
      if (error instanceof RelayApiError && error.code === 'ConsoleNotFound') return undefined;
      throw error;
    }
  }

  putConsole(vm: string, body: { enabled: boolean; sshPublicKey: { keyData: string }; expiration?: string }): Promise<ConsoleResource> {
    return this.call('PUT', `/v1/virtualMachines/${encodeURIComponent(vm)}/console`, body);
  }

  patchConsole(vm: string, body: { enabled?: boolean; sshPublicKey?: { keyData: string }; expiration?: string }): Promise<ConsoleResource> {
    return this.call('PATCH', `/v1/virtualMachines/${encodeURIComponent(vm)}/console`, body);
  }

  powerAction(vm: string, action: string): Promise<{ virtualMachine: string; action: string; status: string }> {
    return this.call('POST', `/v1/virtualMachines/${encodeURIComponent(vm)}/powerActions`, { action });
  }

  deleteConsole(vm: string): Promise<void> {
    return this.call('DELETE', `/v1/virtualMachines/${encodeURIComponent(vm)}/console`);
  }

  async endpoints(): Promise<EndpointResource[]> {
    return (await this.call<{ value: EndpointResource[] }>('GET', '/v1/privateEndpoints')).value;
  }

  putEndpoint(name: string, body: { ipAddress?: string; allowedSourcePrefixes?: string[] }): Promise<EndpointResource> {
    return this.call('PUT', `/v1/privateEndpoints/${encodeURIComponent(name)}`, body);
  }

  deleteEndpoint(name: string): Promise<void> {
    return this.call('DELETE', `/v1/privateEndpoints/${encodeURIComponent(name)}`);
  }
}
