import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** A picture as width, height and RGB bytes (3 a pixel). */
export interface Picture {
  width: number;
  height: number;
  rgb: Buffer;
}

/** A QMP screendump (binary PPM, P6). */
export function readPpm(path: string): Picture {
  const data = readFileSync(path);
  const header = /^P6\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(data.subarray(0, 64).toString('latin1'));
  if (!header) throw new Error(`${path} is not a binary PPM`);
  return { width: Number(header[1]), height: Number(header[2]), rgb: data.subarray(header[0].length) };
}

/** How many pixels differ between two pictures of the same size. */
export function differingPixels(a: Picture, b: Picture): number {
  assert.deepEqual([a.width, a.height], [b.width, b.height], 'the pictures have the same size');
  let count = 0;
  for (let i = 0; i < a.rgb.length; i += 3) {
    if (a.rgb[i] !== b.rgb[i] || a.rgb[i + 1] !== b.rgb[i + 1] || a.rgb[i + 2] !== b.rgb[i + 2]) count++;
  }
  return count;
}
