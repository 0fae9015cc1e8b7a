/** Writes an initramfs in the `newc` cpio format, so device nodes need no root privileges to create. */
export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'char'; path: string; major: number; minor: number; mode?: number };

const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000, char: 0o020000 } as const;

function hex8(value: number): string {
  return value.toString(16).padStart(8, '0');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let inode = 1;
  const push = (path: string, mode: number, data: Buffer, rdevMajor = 0, rdevMinor = 0): void => {
    const name = Buffer.from(`${path}\0`);
    const fields = [inode++, mode, 0, 0, 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, name.length, 0];
    const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'latin1');
    parts.push(header, name, pad4(header.length + name.length), data, pad4(data.length));
  };
  for (const entry of entries) {
    switch (entry.kind) {
      case 'dir':
        push(entry.path, TYPE_BITS.dir | (entry.mode ?? 0o755), Buffer.alloc(0));
        break;
      case 'file':
        push(entry.path, TYPE_BITS.file | (entry.mode ?? 0o644), entry.data);
        break;
      case 'symlink':
        push(entry.path, TYPE_BITS.symlink | 0o777, Buffer.from(entry.target));
        break;
      case 'char':
        push(entry.path, TYPE_BITS.char | (entry.mode ?? 0o600), Buffer.alloc(0), entry.major, entry.minor);
        break;
    }
  }
  push('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}
