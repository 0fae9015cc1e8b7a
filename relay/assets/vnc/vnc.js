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
// Our own WebSocket, so the relay's close reason can be shown. It offers "lifeline.notices": the relay
// then sends its notices (who joined or left, that the session is recorded) as text messages beside
// the binary RFB ones; noVNC gets only the binary ones, through the channel below.
const socket = new WebSocket(`${scheme}://${location.host}/?token=${encodeURIComponent(token)}`, ['lifeline.notices', 'binary']);
socket.binaryType = 'arraybuffer';
let closeReason = '';
socket.addEventListener('close', (event) => {
  closeReason = event.reason || (event.code === 1006 ? 'the connection was refused or lost' : '');
});

const notice = document.getElementById('notice');
const notices = [];
function showNotice(line) {
  if (/^this session is recorded/.test(line)) document.getElementById('recorded-badge').hidden = false;
  notices.push(line);
  notice.hidden = false;
  notice.textContent = line;
  notice.title = notices.slice(-10).join('\n');
}
// For tests and scripts: every notice so far.
window.lifelineNotices = notices;

const channel = {
  binaryType: 'arraybuffer',
  get protocol() { return socket.protocol; },
  get readyState() { return socket.readyState; },
  onopen: null,
  onmessage: null,
  onclose: null,
  onerror: null,
  send: (data) => socket.send(data),
  close: () => socket.close(),
};
socket.onopen = (event) => channel.onopen?.(event);
socket.onclose = (event) => channel.onclose?.(event);
socket.onerror = (event) => channel.onerror?.(event);
socket.onmessage = (event) => {
  if (typeof event.data !== 'string') return channel.onmessage?.(event);
  try {
    const message = JSON.parse(event.data);
    if (typeof message.notice === 'string') showNotice(message.notice);
  } catch {
    // Not a notice: nothing to show.
  }
};

const rfb = new RFB(document.getElementById('screen'), channel);
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
