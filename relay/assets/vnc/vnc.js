// The browser page for a VNC token URL: noVNC over a WebSocket to the same address.
import RFB from '/novnc/core/rfb.js';

const status = document.getElementById('status');
const params = new URLSearchParams(location.search);
const token = params.get('token') ?? '';
// A token minted to observe: the relay drops this viewer's input whatever the page does; the page says so and sends none.
const observing = params.get('mode') === 'observe';
// The token is single use; keep it out of the address bar and history once read.
history.replaceState(null, '', '/');

function show(state, text) {
  document.body.dataset.state = state;
  status.textContent = text;
}

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
// Our own WebSocket, handed to noVNC, so the relay's close reason can be shown.
const socket = new WebSocket(`${scheme}://${location.host}/?token=${encodeURIComponent(token)}`, ['binary']);
let closeReason = '';
socket.addEventListener('close', (event) => {
  closeReason = event.reason || (event.code === 1006 ? 'the connection was refused or lost' : '');
});

const rfb = new RFB(document.getElementById('screen'), socket);
rfb.scaleViewport = true;
const viewOnly = document.getElementById('view-only');
if (observing) {
  document.body.dataset.mode = 'observe';
  document.getElementById('mode-badge').hidden = false;
  rfb.viewOnly = true;
  viewOnly.checked = true;
  viewOnly.disabled = true;
  viewOnly.parentElement.title = 'This link is for watching: the relay passes none of its input to the VM';
}
let desktopName = '';
rfb.addEventListener('desktopname', (event) => {
  desktopName = event.detail.name;
  if (document.body.dataset.state === 'connected') show('connected', connectedText());
});
function connectedText() {
  return `${observing ? 'Observing' : 'Connected to'} ${desktopName || 'the VM'}`;
}
rfb.addEventListener('connect', () => {
  show('connected', connectedText());
  document.getElementById('ctrl-alt-del').disabled = observing;
  rfb.focus();
});
rfb.addEventListener('disconnect', () => {
  // The close event may follow noVNC's disconnect; give it a moment to arrive.
  setTimeout(() => show('disconnected', `Disconnected${closeReason ? `: ${closeReason}` : ''}`), 50);
  document.getElementById('ctrl-alt-del').disabled = true;
});
rfb.addEventListener('securityfailure', (event) => show('disconnected', `Security failure: ${event.detail.reason ?? event.detail.status}`));

document.getElementById('ctrl-alt-del').addEventListener('click', () => rfb.sendCtrlAltDel());
document.getElementById('scale').addEventListener('change', (event) => {
  rfb.scaleViewport = event.target.checked;
});
viewOnly.addEventListener('change', (event) => {
  rfb.viewOnly = event.target.checked;
});
// For tests and scripts: the RFB object.
window.lifelineRfb = rfb;
