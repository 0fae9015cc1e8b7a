/**
 * What an API token may do: scopes (KubeVirt's console/VNC split and Teleport's roles, in
 * small) and, optionally, which VMs by name glob. Pure logic.
 */
export const SCOPES = ['consoles:read', 'consoles:write', 'vnc', 'power', 'endpoints', 'sessions', 'audit', 'metrics', 'recordings', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  'consoles:read': 'list VMs and read their Console resources',
  'consoles:write': 'create, renew, re-key, disable and delete Console resources',
  vnc: 'mint WebSocket VNC tokens',
  power: 'power actions (start, stop, reset…)',
  endpoints: 'create and delete private endpoints',
  sessions: 'list live sessions and close them',
  audit: 'read the audit trail',
  metrics: 'scrape GET /metrics (Prometheus)',
  recordings: 'list, play, hold and delete session recordings',
  admin: 'manage API tokens; implies every other scope (it could grant them)',
};

/** A VM name pattern: the VM name characters plus `*` (any run) and `?` (one character). */
export const VM_GLOB = /^[A-Za-z0-9._*?-]{1,63}$/;

export interface TokenGrant {
  scopes: readonly string[];
  /** Name globs; undefined: every VM. */
  virtualMachines?: readonly string[];
}

/**
 * Scopes over resources every VM shares: a private endpoint carries every VM's sessions, so a
 * token limited to some VMs cannot hold them (deleting an endpoint would close other VMs' sessions).
 */
export const SHARED_SCOPES: readonly Scope[] = ['endpoints'];

export function hasScope(token: TokenGrant, scope: Scope): boolean {
  // A limited token stored before SHARED_SCOPES were refused at creation still cannot use one.
  if (token.virtualMachines !== undefined && SHARED_SCOPES.includes(scope)) return false;
  return token.scopes.includes('admin') || token.scopes.includes(scope);
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

const compiled = new Map<string, RegExp>();

export function matchesGlob(name: string, glob: string): boolean {
  let pattern = compiled.get(glob);
  if (!pattern) {
    pattern = globToRegExp(glob);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(glob, pattern);
  }
  return pattern.test(name);
}

/** Whether the token may act on the VM called `name`. */
export function vmAllowed(token: TokenGrant, name: string): boolean {
  return token.virtualMachines === undefined || token.virtualMachines.some((glob) => matchesGlob(name, glob));
}

/** "virtual machines matching web-*, db-1" for refusals. */
export function describeVmLimit(token: TokenGrant): string {
  return `virtual machines matching ${(token.virtualMachines ?? ['*']).join(', ')}`;
}
