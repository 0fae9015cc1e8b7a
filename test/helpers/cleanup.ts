/** Runs every cleanup step even when one throws (so VMs and relays never outlive a failed suite), then reports the first error. */
export async function runCleanups(steps: Array<(() => unknown) | undefined>): Promise<void> {
  let first: unknown;
  for (const step of steps) {
    try {
      await step?.();
    } catch (error) {
      first ??= error;
    }
  }
  if (first) throw first;
}
