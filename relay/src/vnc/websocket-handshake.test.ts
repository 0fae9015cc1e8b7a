import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { handshakeProblem } from './websocket-handshake.js';

const good = { upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };
const request = (headers: Record<string, string | undefined>, method = 'GET'): IncomingMessage => ({ method, headers: { ...good, ...headers } }) as unknown as IncomingMessage;

test('a well-formed handshake passes, with or without subprotocols', () => {
  assert.equal(handshakeProblem(request({})), undefined);
  assert.equal(handshakeProblem(request({ upgrade: 'WebSocket', 'sec-websocket-version': '8' })), undefined);
  for (const protocols of ['binary', 'binary, base64', 'binary ,base64', 'a,b']) assert.equal(handshakeProblem(request({ 'sec-websocket-protocol': protocols })), undefined, protocols);
});

test('each malformed part is named, as ws would refuse it', () => {
  assert.deepEqual(handshakeProblem(request({}, 'POST')), { status: 405, message: 'a WebSocket opening handshake is a GET request', headers: { Allow: 'GET' } });
  assert.match(handshakeProblem(request({ upgrade: 'h2c' }))!.message, /Upgrade/);
  assert.match(handshakeProblem(request({ upgrade: undefined }))!.message, /Upgrade/);
  for (const key of ['short', 'dGhlIHNhbXBsZSBub25jZQ', 'dGhlIHNhbXBsZSBub25jZQ==x', '']) assert.match(handshakeProblem(request({ 'sec-websocket-key': key }))!.message, /Sec-WebSocket-Key/, key);
  for (const version of ['7', '14', '', 'x']) {
    const problem = handshakeProblem(request({ 'sec-websocket-version': version }))!;
    assert.match(problem.message, /Sec-WebSocket-Version/, version);
    assert.equal(problem.headers?.['Sec-WebSocket-Version'], '13, 8');
  }
  for (const protocols of ['', 'a b', 'binary,', ',binary', 'binary, binary', ' binary', 'binary ', 'é', 'a;b']) assert.match(handshakeProblem(request({ 'sec-websocket-protocol': protocols }))?.message ?? 'accepted', /Sec-WebSocket-Protocol/, JSON.stringify(protocols));
});
