import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './relay-process.js';

export interface BrowserMode {
  url: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export interface BrowserModeOptions {
  /** The environment instead of this process's. */
  env?: NodeJS.ProcessEnv;
  /** Run `scripts/start.mjs` (what `npm start` runs) instead of `web.js`, in its own process group as a terminal would. */
  viaStart?: boolean;
}

/** Runs `web.js` (what `npm run web` runs) and waits for the one-time URL it prints. */
export async function startBrowserMode(args: string[], options: BrowserModeOptions = {}): Promise<BrowserMode> {
  const script = options.viaStart ? join(REPO_ROOT, 'scripts', 'start.mjs') : join(REPO_ROOT, 'dist-desktop', 'main', 'web.js');
  const child = spawn(process.execPath, [script, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env, detached: options.viaStart === true });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`browser mode did not start in 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)$/m.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`browser mode exited with ${code}:\n${output}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
