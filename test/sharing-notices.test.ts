import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineSplitter, noticeMeaning } from '../main/services/sharing-notices.js';

test('the relay\'s sharing lines give the tab its role, the recorded badge and the pending request', () => {
  assert.deepEqual(noticeMeaning('[lifeline] observing lab-1: read-only, your typing is not sent. session 5c1e0f2a (127.0.0.1 via SSH) has control.'), { text: 'observing lab-1: read-only, your typing is not sent. session 5c1e0f2a (127.0.0.1 via SSH) has control.', role: 'observer', controlRequested: false });
  assert.equal(noticeMeaning('[lifeline] you have control of lab-1 now (approved); your typing reaches the VM')?.role, 'controller');
  assert.equal(noticeMeaning('[lifeline] session 9b06a0b3 (10.0.0.8 via SSH) has control now (handed over); you are observing')?.role, 'observer');
  assert.equal(noticeMeaning('[lifeline] this session is recorded (recording 3f0c2a11; docs/recordings.md)')?.recorded, true);
  assert.equal(noticeMeaning('[lifeline] session 9b06a0b3 (10.0.0.8 via SSH) asks for control: Enter ~~a hands it over, ~~d refuses (no answer in 30 s is no)')?.controlRequested, true);
  assert.equal(noticeMeaning('[lifeline] the request of session 9b06a0b3 (10.0.0.8 via SSH) timed out')?.controlRequested, false);
  assert.equal(noticeMeaning('plain guest output'), undefined);
});

test('stderr chunks become whole lines', () => {
  const lines = new LineSplitter();
  assert.deepEqual(lines.push('\r\n[lifeline] obs'), []);
  assert.deepEqual(lines.push('erving lab-1\r\n[lifeline] b\r\n'), ['[lifeline] observing lab-1', '[lifeline] b']);
});
