import { readdirSync, readFileSync } from 'node:fs';

// Readings from /proc for the benchmarks and the memory-bound tests.

/** Resident set size of a process, KiB. */
export function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** User and system CPU seconds of one process (not its children). */
export function cpuSplit(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/**
 * CPU time (user + system, seconds, nanosecond resolution from schedstat) of a process's every
 * thread (Node's GC and compiler threads count too) and of its live descendants (sshd's
 * per-connection child and socat, websockify's per-client fork). Sample it while the client is
 * still connected: an exited child's time is gone.
 */
export function treeCpuSeconds(pid: number): number {
  let nanos = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0; // The process ended.
  }
  for (const tid of tasks) {
    try {
      nanos += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
        nanos += treeCpuSeconds(Number(child)) * 1e9;
      }
    } catch {
      // The thread ended.
    }
  }
  return nanos / 1e9;
}

/** Resident set size of a process and its live descendants (sshd's per-connection children), KiB. */
export function treeRssKiB(pid: number): number {
  let total: number;
  try {
    total = rssKiB(pid);
  } catch {
    return 0; // The process ended.
  }
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return total;
  }
  for (const tid of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += treeRssKiB(Number(child));
    } catch {
      // The thread ended.
    }
  }
  return total;
}
