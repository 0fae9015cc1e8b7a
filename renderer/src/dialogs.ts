import type { CertificateView, DesktopBridge, EndpointView, RelayView } from '../../preload/contract.js';
import { button, confirmDialog, element, field, modal } from './dom.js';
import { icon } from './icons.js';

/** Runs a dialog's action; its error stays in the dialog (the user fixes the input there). */
async function attempt(errorLine: HTMLElement, action: () => Promise<void>): Promise<boolean> {
  errorLine.hidden = true;
  try {
    await action();
    return true;
  } catch (error) {
    errorLine.textContent = (error as Error).message;
    errorLine.hidden = false;
    return false;
  }
}

function errorLine(): HTMLElement {
  const line = element('p', { class: 'dialog-error', role: 'alert' });
  line.hidden = true;
  return line;
}

function form(label: string, ...children: Node[]): HTMLFormElement {
  return element('form', { class: 'form', 'aria-label': label }, ...children);
}

/**
 * Add a remote relay: name, API URL, token (checked against the relay before it is kept). An
 * https:// relay whose certificate the system does not trust shows its fingerprint first, to be
 * compared with `lifeline-relay info` on the relay and confirmed (or pasted), then pinned.
 */
export function addRelayDialog(bridge: DesktopBridge, done: (relay: RelayView) => Promise<void>): void {
  const { body: container, close } = modal('Add relay', { class: 'relay-dialog' });
  const name = field('Relay name', { placeholder: 'e.g. Production', autocomplete: 'off' });
  const url = field('Relay URL', { placeholder: 'https://relay.example:8440', autocomplete: 'off', required: '' });
  const token = field('Relay API token', { type: 'password', placeholder: 'llt_…', autocomplete: 'off', required: '' });
  const pasted = field('TLS certificate fingerprint (optional)', { placeholder: 'AB:CD:… or the output of lifeline-relay info', autocomplete: 'off', spellcheck: 'false' });
  // The certificate the relay presented, once the user is asked to confirm it.
  const confirmBox = element('section', { class: 'certificate', 'aria-label': 'Relay certificate' });
  confirmBox.hidden = true;
  let presented: CertificateView | undefined;
  const error = errorLine();
  const submit = element('button', { type: 'submit', class: 'primary' }, 'Add relay');
  const body = form('Add relay',
    name.wrapper, url.wrapper, token.wrapper, pasted.wrapper,
    confirmBox,
    element('p', { class: 'hint' }, 'The token is checked against the relay and kept in the keychain; the relay\'s SSH host key and, for https:// with a self-signed certificate, its TLS certificate are pinned.'),
    error,
    element('div', { class: 'dialog-actions' }, button('Cancel', close), submit),
  );
  const showCertificate = (certificate: CertificateView): void => {
    presented = certificate;
    confirmBox.replaceChildren(
      element('h3', {}, icon('shield'), ' Confirm the relay\'s certificate'),
      element('p', {}, `This system does not trust it (${certificate.untrustedBecause ?? 'unknown issuer'}). Compare its fingerprint with the one "lifeline-relay info" prints on the relay; add the relay only if they are the same.`),
      element('dl', { class: 'facts' },
        element('dt', {}, 'SHA-256'), element('dd', { class: 'mono fingerprint-value', 'aria-label': 'Certificate fingerprint' }, certificate.fingerprint),
        element('dt', {}, 'Subject'), element('dd', {}, certificate.subject),
        element('dt', {}, 'Valid to'), element('dd', {}, new Date(certificate.validTo).toLocaleDateString())),
    );
    confirmBox.hidden = false;
    submit.textContent = 'Trust and add relay';
  };
  url.input.addEventListener('input', () => {
    presented = undefined;
    confirmBox.hidden = true;
    submit.textContent = 'Add relay';
  });
  body.addEventListener('submit', (event) => {
    event.preventDefault();
    const label = submit.textContent;
    submit.disabled = true;
    submit.textContent = 'Checking…';
    void attempt(error, async () => {
      let tlsFingerprint = pasted.input.value.trim() || presented?.fingerprint;
      if (url.input.value.trim().startsWith('https://') && !tlsFingerprint) {
        const certificate = await bridge.api.inspectCertificate(url.input.value);
        if (!certificate.trusted) {
          showCertificate(certificate);
          return;
        }
        tlsFingerprint = undefined;
      }
      const relay = await bridge.api.addRelay({ name: name.input.value, url: url.input.value, token: token.input.value, ...(tlsFingerprint && { tlsFingerprint }) });
      token.input.value = '';
      close();
      await done(relay);
    }).finally(() => {
      submit.disabled = false;
      if (submit.textContent === 'Checking…') submit.textContent = presented ? 'Trust and add relay' : label;
    });
  });
  container.append(body);
  name.input.focus();
}

/** Rename a relay or give it a new API token. */
export function editRelayDialog(bridge: DesktopBridge, relay: RelayView, done: () => Promise<void>): void {
  const { body: container, close } = modal(`Edit relay ${relay.name}`);
  const name = field('Name', { value: relay.name, 'aria-label': `New name for ${relay.name}` });
  const token = field('New API token', { type: 'password', placeholder: 'leave empty to keep the current one', 'aria-label': `New API token for ${relay.name}`, autocomplete: 'off' });
  const https = relay.url.startsWith('https://');
  const certificate = field('New TLS certificate fingerprint', { placeholder: 'only when the relay\'s certificate was replaced: AB:CD:…', 'aria-label': `New TLS certificate fingerprint for ${relay.name}`, autocomplete: 'off', spellcheck: 'false' });
  const error = errorLine();
  const body = form(`Edit relay ${relay.name}`,
    name.wrapper, token.wrapper, ...(https ? [certificate.wrapper] : []),
    element('dl', { class: 'facts' },
      element('dt', {}, 'URL'), element('dd', {}, relay.url),
      element('dt', {}, 'SSH host key'), element('dd', { class: 'mono' }, relay.hostKeyFingerprint),
      ...(https ? [element('dt', {}, 'TLS certificate'), element('dd', { class: 'mono' }, relay.tlsFingerprint ?? 'trusted by this system (CA-signed)')] : []),
      ...(relay.token ? [element('dt', {}, 'API token'), element('dd', {}, `${relay.token.name}: ${relay.token.scopes.join(', ')}${relay.token.virtualMachines ? `; VMs ${relay.token.virtualMachines.join(', ')}` : ''}`)] : [])),
    error,
    element('div', { class: 'dialog-actions' }, button('Cancel', close), element('button', { type: 'submit', class: 'primary' }, 'Save relay')),
  );
  body.addEventListener('submit', (event) => {
    event.preventDefault();
    void attempt(error, async () => {
      await bridge.api.updateRelay({ id: relay.id, name: name.input.value, ...(token.input.value && { token: token.input.value }), ...(certificate.input.value.trim() && { tlsFingerprint: certificate.input.value }) });
      token.input.value = '';
      close();
      await done();
    });
  });
  container.append(body);
  name.input.focus();
}

/** The relay's private endpoints: which one consoles go through, create and delete (asking first). */
export async function endpointsDialog(bridge: DesktopBridge, relay: RelayView, done: () => Promise<void>): Promise<void> {
  const endpoints = await bridge.api.listEndpoints(relay.id);
  const { body: container } = modal(`Private endpoints of ${relay.name}`, { class: 'endpoints-dialog' });
  let current = relay.endpoint;
  const list = element('ul', { class: 'endpoint-list', 'aria-label': 'Endpoints' });
  const error = errorLine();
  const render = (items: EndpointView[]): void => {
    list.replaceChildren(...items.map((e) => element('li', { 'aria-label': e.name },
      element('div', { class: 'row-main' }, element('strong', {}, e.name), element('span', { class: 'mono' }, e.ipAddress), e.name === current ? element('span', { class: 'badge ok' }, 'used for consoles') : ''),
      element('small', {}, `SSH ${e.sshPort} · VNC ${e.vncPort} · ${e.allowedSourcePrefixes.join(', ') || 'any source'} · ${e.provisioningState}`),
      element('div', { class: 'row-actions' },
        ...(e.name === current ? [] : [button('Use for consoles', () => attempt(error, async () => {
          await bridge.api.updateRelay({ id: relay.id, endpoint: e.name });
          current = e.name;
          render(items);
          await done();
        }), { variant: 'ghost' })]),
        ...(e.name === 'default' || !relay.allowed.endpoints ? [] : [button('Delete', async () => {
          const sure = await confirmDialog('Delete endpoint?', [`Delete the private endpoint ${e.name} (${e.ipAddress})? Its SSH and VNC listeners close, and so do the sessions through it.`], 'Delete endpoint');
          if (!sure) return;
          await attempt(error, async () => {
            await bridge.api.deleteEndpoint(relay.id, e.name);
            render(await bridge.api.listEndpoints(relay.id));
          });
        }, { icon: 'remove', name: `Delete endpoint ${e.name}`, variant: 'ghost' })]),
      ),
    )));
  };
  render(endpoints);
  const name = field('Endpoint name', { placeholder: 'e.g. ops', required: '' });
  const ip = field('Endpoint IP address', { placeholder: 'optional: picked from the pool' });
  const prefixes = field('Allowed source prefixes', { placeholder: 'optional, comma-separated CIDRs' });
  const create = form('Create endpoint', element('h3', {}, 'New endpoint'), element('div', { class: 'inline-fields' }, name.wrapper, ip.wrapper, prefixes.wrapper), element('div', { class: 'dialog-actions' }, element('button', { type: 'submit', class: 'primary' }, 'Create endpoint')));
  create.addEventListener('submit', (event) => {
    event.preventDefault();
    void attempt(error, async () => {
      const allowed = prefixes.input.value.split(',').map((p) => p.trim()).filter(Boolean);
      await bridge.api.createEndpoint(relay.id, { name: name.input.value.trim(), ...(ip.input.value.trim() && { ipAddress: ip.input.value.trim() }), ...(allowed.length > 0 && { allowedSourcePrefixes: allowed }) });
      name.input.value = '';
      ip.input.value = '';
      prefixes.input.value = '';
      render(await bridge.api.listEndpoints(relay.id));
    });
  });
  // A token without the "endpoints" scope may pick an endpoint for consoles, not create or delete one: say so instead.
  const denied = element('p', { class: 'hint', role: 'note' }, `The API token for ${relay.name}${relay.token ? ` ("${relay.token.name}")` : ''} lacks the "endpoints" scope: it cannot create or delete private endpoints. Ask the relay's administrator for a token that has it.`);
  container.append(list, error, relay.allowed.endpoints ? create : denied);
}

export const SHORTCUTS: Array<[string, string]> = [
  ['Ctrl+Shift+F', 'Search VMs'],
  ['Ctrl+Shift+] or Ctrl+Tab', 'Next tab'],
  ['Ctrl+Shift+[ or Ctrl+Shift+Tab', 'Previous tab'],
  ['Ctrl+Shift+X', 'Close the tab'],
  ['Ctrl+Shift+E', 'Find in the serial output'],
  ['← → Home End (on the tab strip)', 'Move between tabs'],
  ['Delete (on a tab)', 'Close that tab'],
  ['Ctrl+? (Ctrl+Shift+/)', 'This list'],
];

export function helpDialog(): void {
  const { body } = modal('Keyboard shortcuts', { class: 'help-dialog' });
  body.append(
    element('table', { class: 'shortcuts' },
      element('tbody', {}, ...SHORTCUTS.map(([keys, what]) => element('tr', {}, element('td', {}, ...keys.split(' or ').flatMap((k, i) => [...(i ? [' or '] : []), element('kbd', {}, k)])), element('td', {}, what))))),
    element('p', { class: 'hint' }, 'Inside a console every other key goes to the VM. In a VNC tab, the Keys menu sends combinations your desktop would keep for itself (Ctrl+Alt+F1…, Alt+Tab).'),
  );
}
