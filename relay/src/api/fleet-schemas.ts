import { Type, type Static } from '@sinclair/typebox';
import { Name } from './schemas.js';

/* The fleet's resources: hypervisor agents and their join tokens (docs/fleet.md, docs/api.md). */

export const AgentParams = Type.Object({ name: Name }, { additionalProperties: false });

export const AgentJoinTokenBody = Type.Object(
  {
    agent: Name,
    expiresAt: Type.Optional(Type.String({ maxLength: 64, description: 'RFC 3339; default one hour from now, at most 7 days' })),
  },
  { additionalProperties: false },
);
export type AgentJoinTokenBody = Static<typeof AgentJoinTokenBody>;

export const AgentJoinToken = Type.Object({
  agent: Type.String(),
  token: Type.String({ description: 'single use; shown once: give it to the agent as joinToken or LIFELINE_JOIN_TOKEN' }),
  expiresAt: Type.String(),
  caFingerprint: Type.String({ description: "the fleet's SSH host key fingerprint: the agent's agent.caFingerprint" }),
});

export const AgentResource = Type.Object({
  name: Type.String(),
  state: Type.Union([Type.Literal('Connected'), Type.Literal('Disconnected')]),
  gateways: Type.Array(Type.String(), { description: 'the gateways it holds a tunnel to now (their agents.advertiseAddress)' }),
  lastSeenAt: Type.Optional(Type.String()),
  joinedAt: Type.String(),
  keyFingerprint: Type.String(),
  virtualMachines: Type.Array(Type.String()),
  conflicts: Type.Array(Type.Object({ name: Type.String(), heldBy: Type.String() }), { description: 'VM names it announced that another agent holds: not listed for it' }),
  version: Type.String(),
});
export type AgentResource = Static<typeof AgentResource>;

export const AgentList = Type.Object({ value: Type.Array(AgentResource) });
