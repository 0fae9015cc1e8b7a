import type { RootCommand } from '@bomb.sh/tab';
import { RelayApi } from '../services/relay-api.js';
import { tokenAccount } from '../services/keychain.js';
import { CliContext } from './context.js';

/** The commands whose <vm> argument completes to VM names. */
const VM_COMMANDS = ['connect', 'vnc', 'proxy', 'power', 'vm show', 'console create', 'console show', 'console update', 'console delete'];
const POWER_WORDS = ['reset', 'shutdown', 'power-off', 'power-on', 'nmi'];

let vmNames: string[] = [];
let relayNames: string[] = [];

/**
 * Dynamic completion: VM names (asked of the relays with the keychain's tokens, 2 s at most) and
 * relay names. The shell asks `lifeline complete -- WORDS…`; the names are fetched before tab's
 * synchronous handlers run.
 */
export function completionCandidates(root: RootCommand): void {
  for (const path of VM_COMMANDS) {
    const argument = root.commands.get(path)?.arguments.get('vm');
    if (argument) argument.handler = (complete) => vmNames.forEach((name) => complete(name, ''));
  }
  const action = root.commands.get('power')?.arguments.get('action');
  if (action) action.handler = (complete) => POWER_WORDS.forEach((word) => complete(word, ''));
  const relay = root.options.get('relay');
  if (relay) relay.handler = (complete) => relayNames.forEach((name) => complete(name, ''));
}

completionCandidates.prefetch = async (words: string[]): Promise<void> => {
  const context = new CliContext({ output: 'table', yes: false });
  const records = context.registry.records();
  relayNames = records.map((r) => r.name);
  const wantsVm = VM_COMMANDS.some((path) => words.join(' ').startsWith(`${path} `));
  if (!wantsVm) return;
  const named = words[words.indexOf('--relay') + 1];
  const chosen = words.includes('--relay') ? records.filter((r) => r.name === named || r.id === named) : records;
  const lists = await Promise.all(
    chosen.map(async (record) => {
      try {
        const token = process.env.LIFELINE_TOKEN?.trim() || (await context.keychain.get(tokenAccount(record.id)));
        if (!token) return [];
        return (await new RelayApi(record.url, token, record.tlsFingerprint, context.trust, 2000).virtualMachines()).map((vm) => vm.name);
      } catch {
        return [];
      }
    }),
  );
  vmNames = [...new Set(lists.flat())].sort();
};
