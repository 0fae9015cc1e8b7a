import { fleetSchemas, schemas, type ConsolePatchBody, type ConsolePutBody, type ConsoleResource, type RecordingResource, type EndpointResource, type VirtualMachineResource } from '@lifeline/relay/client';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { relayRequest, TlsTrustError, type HttpAnswer, type TrustStore } from './relay-tls.js';

/** An endpoint as the app reads it: a relay from before advertiseAddress still works (its ipAddress is where clients connect). */
const EndpointReply = Type.Composite([Type.Omit(schemas.EndpointResource, ['advertiseAddress']), Type.Object({ advertiseAddress: Type.Optional(Type.String()) })]);
const RelayInfoReply = Type.Composite([Type.Omit(schemas.RelayInfo, ['endpoints']), Type.Object({ endpoints: Type.Array(EndpointReply) })]);
const PowerActionReply = schemas.PowerActionAccepted;
const NoContent = Type.Undefined();

export type RelayInfoReply = Static<typeof RelayInfoReply>;
export type EndpointReply = Static<typeof EndpointReply>;

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
    private readonly tlsFingerprint: string | undefined,
    private readonly trust: TrustStore,
    private readonly timeoutMs = 10_000,
  ) {}

  /** One API call; the reply is checked against `reply` (the relay's own schema), never trusted as cast. */
  private async call<T extends TSchema>(method: string, path: string, reply: T, body?: unknown): Promise<Static<T>> {
    const { parsed, status } = await this.send(method, path, body);
    if (!Value.Check(reply, parsed)) {
      const issue = Value.Errors(reply, parsed).First();
      throw new RelayApiError(
        `The relay at ${this.url} answered ${method} ${path.split('?')[0]} with a reply this app cannot read (${issue ? `${issue.path || 'the body'}: ${issue.message}` : 'unexpected shape'}); is it a Lifeline relay of another version?`,
        status,
        'UnexpectedReply',
      );
    }
    return parsed as Static<T>;
  }

  /** A request and its answer: refusals are RelayApiErrors; a JSON reply is parsed, any other is kept as text (`raw`). */
  private async send(method: string, path: string, body?: unknown, raw = false): Promise<{ parsed: unknown; text: string; bytes: Buffer; status: number }> {
    let response: HttpAnswer;
    try {
      response = await relayRequest(new URL(`${this.url.replace(/\/+$/, '')}${path}`), {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        pin: this.tlsFingerprint,
        trust: this.trust,
        timeoutMs: this.timeoutMs,
      });
    } catch (error) {
      if (error instanceof TlsTrustError) throw new RelayApiError(error.message, 0, error.code);
      const cause = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new RelayApiError(`Cannot reach the relay at ${this.url} (${cause}). Check the URL and that the relay is running.`, 0, 'Unreachable');
    }
    let parsed: unknown;
    try {
      parsed = response.body && (!raw || response.status >= 300) ? JSON.parse(response.body) : undefined;
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
    return { parsed, text: response.body ?? '', bytes: response.bytes, status: response.status };
  }

  /** The VM's session recordings, newest first (scope recordings). */
  async recordings(vm: string): Promise<RecordingResource[]> {
    return (await this.call('GET', `/v1/recordings?vm=${encodeURIComponent(vm)}`, schemas.RecordingList)).value;
  }

  /** A recording's asciicast v2 text. */
  async recordingCast(id: string): Promise<string> {
    return (await this.send('GET', `/v1/recordings/${encodeURIComponent(id)}/serial.cast`, undefined, true)).text;
  }

  /** One VNC segment of a recording (docs/recordings.md#vnc-segments), as bytes. */
  async recordingSegment(id: string, name: string): Promise<Buffer> {
    return (await this.send('GET', `/v1/recordings/${encodeURIComponent(id)}/${encodeURIComponent(name)}`, undefined, true)).bytes;
  }

  info(): Promise<RelayInfoReply> {
    return this.call('GET', '/v1/relay', RelayInfoReply);
  }

  async virtualMachines(): Promise<VirtualMachineResource[]> {
    return (await this.call('GET', '/v1/virtualMachines', schemas.VirtualMachineList)).value;
  }

  async console(vm: string): Promise<ConsoleResource | undefined> {
    try {
      return await this.call('GET', `/v1/virtualMachines/${encodeURIComponent(vm)}/console`, schemas.ConsoleResource);
    } catch (error) {
      if (error instanceof RelayApiError && error.code === 'ConsoleNotFound') return undefined;
      throw error;
    }
  }

  putConsole(vm: string, body: ConsolePutBody): Promise<ConsoleResource> {
    return this.call('PUT', `/v1/virtualMachines/${encodeURIComponent(vm)}/console`, schemas.ConsoleResource, body);
  }

  patchConsole(vm: string, body: ConsolePatchBody): Promise<ConsoleResource> {
    return this.call('PATCH', `/v1/virtualMachines/${encodeURIComponent(vm)}/console`, schemas.ConsoleResource, body);
  }

  powerAction(vm: string, action: Static<typeof schemas.PowerActionName>): Promise<Static<typeof PowerActionReply>> {
    return this.call('POST', `/v1/virtualMachines/${encodeURIComponent(vm)}/powerActions`, PowerActionReply, { action });
  }

  deleteConsole(vm: string): Promise<void> {
    return this.call('DELETE', `/v1/virtualMachines/${encodeURIComponent(vm)}/console`, NoContent);
  }

  async endpoints(): Promise<EndpointReply[]> {
    return (await this.call('GET', '/v1/privateEndpoints', Type.Object({ value: Type.Array(EndpointReply) }))).value;
  }

  putEndpoint(name: string, body: { ipAddress?: string; allowedSourcePrefixes?: string[] }): Promise<EndpointResource> {
    return this.call('PUT', `/v1/privateEndpoints/${encodeURIComponent(name)}`, schemas.EndpointResource, body);
  }

  deleteEndpoint(name: string): Promise<void> {
    return this.call('DELETE', `/v1/privateEndpoints/${encodeURIComponent(name)}`, NoContent);
  }

  async virtualMachine(vm: string): Promise<VirtualMachineResource> {
    return this.call('GET', `/v1/virtualMachines/${encodeURIComponent(vm)}`, schemas.VirtualMachineResource);
  }

  vncToken(vm: string, endpoint?: string): Promise<Static<typeof schemas.VncToken>> {
    const query = endpoint ? `?endpoint=${encodeURIComponent(endpoint)}` : '';
    return this.call('POST', `/v1/virtualMachines/${encodeURIComponent(vm)}/vncTokens${query}`, schemas.VncToken);
  }

  async sessions(): Promise<Array<Static<typeof schemas.SessionResource>>> {
    return (await this.call('GET', '/v1/sessions', schemas.SessionList)).value;
  }

  /** Control of an observer's console by force (`POST /v1/sessions/{id}/control`, the sessions scope). */
  takeControl(id: string, reason: string): Promise<Static<typeof schemas.SessionResource>> {
    return this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/control`, schemas.SessionResource, { reason });
  }

  closeSession(id: string): Promise<void> {
    return this.call('DELETE', `/v1/sessions/${encodeURIComponent(id)}`, NoContent);
  }

  async tokens(): Promise<Array<Static<typeof schemas.TokenResource>>> {
    return (await this.call('GET', '/v1/tokens', schemas.TokenList)).value;
  }

  createToken(body: Static<typeof schemas.TokenCreateBody>): Promise<Static<typeof schemas.TokenCreated>> {
    return this.call('POST', '/v1/tokens', schemas.TokenCreated, body);
  }

  deleteToken(id: string): Promise<void> {
    return this.call('DELETE', `/v1/tokens/${encodeURIComponent(id)}`, NoContent);
  }

  /** One page of the audit trail: `query` as GET /v1/auditEvents takes it (since, afterSeq, vm, limit). */
  auditEvents(query: Record<string, string | undefined>): Promise<Static<typeof schemas.AuditEventList>> {
    const search = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined)).toString();
    return this.call('GET', `/v1/auditEvents${search ? `?${search}` : ''}`, schemas.AuditEventList);
  }

  async agents(): Promise<Array<Static<typeof fleetSchemas.AgentResource>>> {
    return (await this.call('GET', '/v1/agents', fleetSchemas.AgentList)).value;
  }
}
