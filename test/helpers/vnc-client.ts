import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A free local port from 5901 up, since VNC command-line clients take display numbers (port - 5900). */
export async function freeVncPort(): Promise<number> {
  for (let port = 5950 + Math.floor(Math.random() * 40); port < 6000; port++) {
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 5950-5999');
}

/** Checks a PNG's signature and returns its size from the IHDR chunk. */
export function pngSize(file: string): { width: number; height: number; bytes: number } {
  const png = readFileSync(file);
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', `${file} is a PNG`);
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20), bytes: png.length };
}

/** Runs Debian's gvnccapture against 127.0.0.1:<port> (asynchronously: the bridge it talks to may live in this process). */
export function gvnccapture(port: number, file: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('gvnccapture', [`127.0.0.1:${port - 5900}`, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

