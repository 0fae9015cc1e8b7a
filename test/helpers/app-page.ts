import type { Locator, Page } from 'playwright-core';
import { waitUntil } from './wait.js';

/** The app's VM list row of `vm`. */
export function vmRow(page: Page, vm: string): Locator {
  return page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: vm, exact: true });
}

/**
 * Opens (or selects) the serial tab of `vm`, waits for the guest's prompt (keys typed before its
 * shell runs are lost), runs `command` and waits for `output`. Returns the tab's panel.
 */
export async function runInSerialTab(page: Page, vm: string, command: string, output: RegExp): Promise<Locator> {
  await vmRow(page, vm).getByRole('button', { name: 'Open serial console' }).click();
  await page.getByRole('tab', { name: `${vm} — serial` }).waitFor({ timeout: 30_000 });
  const panel = page.getByRole('tabpanel', { name: `${vm} — serial` });
  const rows = panel.locator('.xterm-rows');
  await panel.locator('.xterm').click();
  await page.keyboard.press('Enter');
  await waitUntil(async () => new RegExp(`${vm}:\\S*#`).test((await rows.textContent()) ?? ''), 60_000, `the ${vm} prompt in the terminal`);
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
  await waitUntil(async () => output.test((await rows.textContent()) ?? ''), 20_000, `${output} in the terminal`);
  return panel;
}
