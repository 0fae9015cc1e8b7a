import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';
import type { RecordingCatalog } from '../recordings/recording-catalog.js';
import type { LegalHold, RecordingSummary } from '../recordings/recording-library.js';
import type { AgentPeer, AgentRequest } from './remote-vm.js';

/** A segment larger than this is not taken from an agent (a full 8K frame is 128 MiB; a VNC segment holds one and its updates). */
const MAX_SEGMENT_BYTES = 512 * 1024 * 1024;

/**
 * A fleet gateway's recordings (docs/recordings.md#in-a-fleet): the agents keep them, the gateway
 * asks every agent connected to it. A recording of an agent not connected here is not listed
 * (GET /v1/agents says which are); whichever gateway a session went through, every gateway the
 * agent is connected to lists and plays it.
 */
export class FleetRecordings implements RecordingCatalog {
  /** Which agent has which recording, as last listed or found. */
  private readonly holders = new Map<string, string>();

  constructor(
    private readonly peers: () => AgentPeer[],
    private readonly log: Logger,
  ) {}

  private async ask(peer: AgentPeer, message: AgentRequest): Promise<unknown> {
    const result = await peer.request(message);
    if (!result.ok) throw new Error(`the hypervisor agent ${peer.name}: ${result.error?.message ?? 'the request failed'}`);
    return result.value;
  }

  async list(filter: { virtualMachine?: string; since?: number }): Promise<RecordingSummary[]> {
    const lists = await Promise.all(
      this.peers().map(async (peer) => {
        let value: RecordingSummary[];
        try {
          value = (await this.ask(peer, { type: 'recordings', op: 'list', ...(filter.virtualMachine && { virtualMachine: filter.virtualMachine }), ...(filter.since !== undefined && { since: filter.since }) })) as RecordingSummary[];
        } catch (error) {
          // One agent that cannot answer (too old, busy, its disk failing) leaves the others' recordings listed.
          this.log.warn({ agent: peer.name, err: (error as Error).message }, 'an agent did not list its recordings');
          return [];
        }
        for (const recording of value) this.holders.set(recording.id, peer.name);
        return value.map((recording) => ({ ...recording, agent: peer.name }));
      }),
    );
    return lists.flat().sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
  }

  /** The agent that has recording `id`, asking them all when it is not known yet. */
  private async holder(id: string): Promise<{ peer: AgentPeer; recording: RecordingSummary } | undefined> {
    const known = this.holders.get(id);
    const peers = this.peers();
    for (const peer of known ? [...peers.filter((p) => p.name === known), ...peers.filter((p) => p.name !== known)] : peers) {
      const recording = (await this.ask(peer, { type: 'recordings', op: 'get', recording: id }).catch((error: Error) => {
        this.log.warn({ agent: peer.name, err: error.message }, 'an agent did not answer for a recording');
        return null;
      })) as RecordingSummary | null;
      if (recording) {
        this.holders.set(id, peer.name);
        return { peer, recording: { ...recording, agent: peer.name } as RecordingSummary };
      }
    }
    return undefined;
  }

  async get(id: string): Promise<RecordingSummary | undefined> {
    return (await this.holder(id))?.recording;
  }

  async segment(id: string, name: string): Promise<Buffer | undefined> {
    const found = await this.holder(id);
    if (!found || !found.recording.segments.some((segment) => segment.name === name)) return undefined;
    let channel: Duplex;
    try {
      channel = await found.peer.openStream({ kind: 'recording', virtualMachine: found.recording.virtualMachine, fence: 0, session: randomUUID(), recordingId: id, segment: name }, () => undefined);
    } catch {
      return undefined;
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      channel.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_SEGMENT_BYTES) return channel.destroy(new Error(`segment ${name} is larger than ${MAX_SEGMENT_BYTES} bytes`));
        chunks.push(chunk);
      });
      channel.once('error', reject);
      // The agent ends its side after the last byte; the channel closes once this side ends too.
      channel.once('end', () => {
        resolve(Buffer.concat(chunks));
        channel.end();
      });
      channel.once('close', () => resolve(Buffer.concat(chunks)));
    });
  }

  async hold(id: string, hold: boolean, reason: string | undefined): Promise<LegalHold | null | undefined> {
    const found = await this.holder(id);
    if (!found) return undefined;
    const value = await this.ask(found.peer, { type: 'recordings', op: 'hold', recording: id, hold, ...(reason !== undefined && { reason }) });
    return value === 'gone' ? undefined : (value as LegalHold | null);
  }

  async delete(id: string): Promise<'deleted' | 'held' | 'running' | 'gone'> {
    const found = await this.holder(id);
    if (!found) return 'gone';
    const outcome = (await this.ask(found.peer, { type: 'recordings', op: 'delete', recording: id })) as 'deleted' | 'held' | 'running' | 'gone';
    if (outcome === 'deleted') this.holders.delete(id);
    return outcome;
  }
}
