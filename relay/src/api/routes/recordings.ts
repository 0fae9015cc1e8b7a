import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { vmAllowed } from '../../core/scopes.js';
import type { RecordingSummary } from '../../recordings/recording-library.js';
import { RelayError } from '../relay-error.js';
import { access, callerOf, ERRORS, note, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
const SegmentParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), segment: Type.String({ pattern: '^(serial\\.cast|serial\\.raw|vnc-[0-9]{4,6}\\.rfb)$', description: 'serial.cast, serial.raw, or a VNC segment vnc-0000.rfb' }) }, { additionalProperties: false });
const ListQuery = Type.Object({ vm: Type.Optional(S.Name), since: Type.Optional(Type.String({ maxLength: 64, description: 'RFC 3339: recordings started at or after' })) }, { additionalProperties: false });
const HoldBody = Type.Object({ hold: Type.Boolean(), reason: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false });
const SEGMENT_TYPES: Record<string, string> = { 'serial.cast': 'application/x-asciicast', 'serial.raw': 'application/octet-stream' };
/** A VNC segment (docs/recordings.md#vnc-segments). */
const RFB_TYPE = 'application/vnd.lifeline.rfb';

/** A catalog call whose keeper cannot answer (a fleet agent gone or failing): a 503 that says so, not a 500. */
async function reach<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw new RelayError(503, 'RecordingsUnavailable', `the recording cannot be reached now (${(error as Error).message.slice(0, 200)}); try again shortly`);
  }
}

/** Session recordings (docs/recordings.md): listed, read, played, held and deleted; scope `recordings`, VM globs apply. */
const recordingRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  const library = deps.recordings;
  if (!library) return;
  /** The recording, if the caller's token may see its VM; a 404 otherwise, as for one that does not exist. */
  const visible = async (request: Parameters<typeof callerOf>[0], id: string): Promise<RecordingSummary> => {
    const recording = await library.get(id);
    if (!recording || !vmAllowed(callerOf(request), recording.virtualMachine)) {
      throw new RelayError(404, 'RecordingNotFound', `no recording with id "${id.slice(0, 64)}"; list them with GET /v1/recordings`);
    }
    return recording;
  };

  app.get<{ Querystring: { vm?: string; since?: string } }>('/v1/recordings', { ...access({ scope: 'recordings' }), schema: { querystring: ListQuery, response: { 200: S.RecordingList, ...ERRORS } } }, async (request) => {
    const since = request.query.since === undefined ? undefined : Date.parse(request.query.since);
    if (since !== undefined && !Number.isFinite(since)) throw new RelayError(400, 'InvalidSince', 'since must be an RFC 3339 time such as 2026-12-01T00:00:00Z');
    const token = callerOf(request);
    const value = (await library.list({ ...(request.query.vm && { virtualMachine: request.query.vm }), ...(since !== undefined && { since }) })).filter((recording) => vmAllowed(token, recording.virtualMachine));
    return { value };
  });

  app.get<{ Params: { id: string } }>('/v1/recordings/:id', { ...access({ scope: 'recordings' }), schema: { params: Params, response: { 200: S.RecordingResource, ...ERRORS } } }, async (request) => visible(request, request.params.id));

  app.get<{ Params: { id: string; segment: string } }>('/v1/recordings/:id/:segment', { ...access({ scope: 'recordings' }), schema: { params: SegmentParams, response: ERRORS } }, async (request, reply) => {
    const { id, segment } = request.params;
    await visible(request, id);
    const data = await reach(library.segment(id, segment));
    if (!data) throw new RelayError(404, 'SegmentNotFound', `recording ${id} has no ${segment}`);
    return reply.header('content-type', SEGMENT_TYPES[segment] ?? RFB_TYPE).header('content-disposition', `attachment; filename="${id}-${segment}"`).send(data);
  });

  app.put<{ Params: { id: string }; Body: { hold: boolean; reason?: string } }>('/v1/recordings/:id/hold', { ...access({ scope: 'recordings', audit: 'recording.hold' }), schema: { params: Params, body: HoldBody, response: ERRORS } }, async (request) => {
    const recording = await visible(request, request.params.id);
    note(request, { recording: recording.id, virtualMachine: recording.virtualMachine, hold: request.body.hold, ...(request.body.reason && { reason: request.body.reason }) });
    const hold = await reach(library.hold(recording.id, request.body.hold, request.body.reason));
    return { id: recording.id, hold };
  });

  app.delete<{ Params: { id: string } }>('/v1/recordings/:id', { ...access({ scope: 'recordings', audit: 'recording.delete' }), schema: { params: Params, response: ERRORS } }, async (request, reply) => {
    const recording = await visible(request, request.params.id);
    note(request, { recording: recording.id, virtualMachine: recording.virtualMachine });
    const outcome = await reach(library.delete(recording.id));
    if (outcome === 'held') throw new RelayError(409, 'RecordingOnHold', `recording ${recording.id} is on legal hold (${recording.hold?.reason || 'no reason given'}); take it off with PUT /v1/recordings/${recording.id}/hold {"hold": false} first`);
    if (outcome === 'running') throw new RelayError(409, 'RecordingRunning', `recording ${recording.id} is still being written; delete it once its session has ended`);
    return reply.status(204).send();
  });
};

export default recordingRoutes;
