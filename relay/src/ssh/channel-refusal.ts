import type { Connection } from 'ssh2';

/** SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1). */
export const OPEN_FAILURE = { administrativelyProhibited: 1, connectFailed: 2, unknownChannelType: 3, resourceShortage: 4 } as const;

interface ProtocolWithOpenFail {
  channelOpenFail(remote: number, reason: number, description: string): void;
}

/**
 * A channel refusal with a reason the client prints. ssh2's `reject()` sends an empty
 * description, so OpenSSH showed `open failed: connect failed: ` and nothing more. The
 * connection's protocol object sends every open failure; wrapping its `channelOpenFail` lets the
 * next `reject()` carry a code and a description (the wrapper is per connection and synchronous:
 * `reject()` calls it at once). Returns `refuse(reject, code, why)`.
 */
export function channelRefusals(client: Connection): (reject: () => void, code: number, description: string) => void {
  const protocol = (client as unknown as { _protocol?: ProtocolWithOpenFail })._protocol;
  let next: { code: number; description: string } | undefined;
  if (protocol) {
    const send = protocol.channelOpenFail.bind(protocol);
    protocol.channelOpenFail = (remote, reason, description) => {
      const given = next;
      next = undefined;
      send(remote, given?.code ?? reason, given?.description ?? description);
    };
  }
  return (reject, code, description) => {
    next = { code, description };
    reject();
    next = undefined;
  };
}
