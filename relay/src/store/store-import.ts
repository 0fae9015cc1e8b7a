import type { Store } from './store.js';

export interface ImportSkip {
  what: 'console' | 'endpoint' | 'token';
  name: string;
  why: string;
}

export interface ImportReport {
  consoles: number;
  endpoints: number;
  tokens: number;
  skipped: ImportSkip[];
}

/**
 * Copies a standalone relay's consoles (access ids, keys, expirations kept, so its users' SSH
 * commands keep working), endpoints and API tokens (hashes: the same secrets keep working) into a
 * fleet's store. Nothing already in the fleet is overwritten: a record that would clash (the VM
 * already has a console, an access id, endpoint name or address, or token name is taken) is skipped
 * and reported, so a second import of the same file changes nothing.
 */
export async function importStore(from: Store, to: Store): Promise<ImportReport> {
  const report: ImportReport = { consoles: 0, endpoints: 0, tokens: 0, skipped: [] };
  for (const record of await from.listConsoles()) {
    const existing = await to.getConsole(record.virtualMachine);
    const byAccessId = await to.getConsoleByAccessId(record.accessId);
    if (existing || byAccessId) {
      const why = existing
        ? `the fleet already has a console for ${record.virtualMachine}${existing.accessId === record.accessId ? ' (the same one: imported before)' : ` (access id ${existing.accessId}); delete it there first to bring this one in`}`
        : `its access id is the fleet's console of ${byAccessId!.virtualMachine}`;
      report.skipped.push({ what: 'console', name: record.virtualMachine, why });
      continue;
    }
    await to.putConsole(record);
    report.consoles++;
  }
  const endpoints = await to.listEndpoints();
  for (const record of await from.listEndpoints()) {
    const clash = endpoints.find((endpoint) => endpoint.name === record.name || endpoint.ipAddress === record.ipAddress);
    if (clash) {
      report.skipped.push({ what: 'endpoint', name: record.name, why: clash.name === record.name ? `the fleet has an endpoint named ${record.name}` : `${record.ipAddress} is the fleet's endpoint ${clash.name}` });
      continue;
    }
    await to.putEndpoint(record);
    endpoints.push(record);
    report.endpoints++;
  }
  for (const record of await from.listTokens()) {
    if ((await to.findToken(record.hash)) || !(await to.createToken(record))) {
      report.skipped.push({ what: 'token', name: record.name, why: `the fleet has a token named ${record.name} (or this very token)` });
      continue;
    }
    report.tokens++;
  }
  return report;
}
