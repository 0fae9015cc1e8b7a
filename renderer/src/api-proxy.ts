import type { DesktopApi } from '../../preload/contract.js';

/** A DesktopApi whose every method forwards to `call`; main checks the method name and arguments. */
export function apiProxy(call: (method: string, args: unknown[]) => Promise<unknown>): DesktopApi {
  return new Proxy({} as DesktopApi, {
    get: (_target, method) => (typeof method === 'string' ? (...args: unknown[]) => call(method, args) : undefined),
  });
}
