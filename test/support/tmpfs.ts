// Real small file systems for storage-fault tests: a tmpfs of a given size that can be filled to ENOSPC, freed, and remounted read-only.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  dir: string;
  /** Writes a filler file until the file system refuses (ENOSPC); returns the bytes it took. */
  fill(): number;
  /** Deletes the filler: the space is back. */
  free(): void;
  /** Remounts read-only (no file on it may be open for writing) or read-write. */
  remount(mode: 'ro' | 'rw'): void;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `sizeBytes`. Needs root (CAP_SYS_ADMIN); where it cannot mount, it throws with the reason,
 * so the test fails saying why instead of skipping.
 */
export function mountTmpfs(sizeBytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'gradlens-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`this test needs a real small file system: mount -t tmpfs failed (${stderr || (err as Error).message}); run it as root with CAP_SYS_ADMIN`);
  }
  const filler = join(dir, 'filler');
  let mounted = true;
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      let written = 0;
      try {
        // Large chunks first, then page-sized ones, so no page is left that a small write could still use.
        for (const size of [1 << 20, 64 << 10, 4096, 512]) {
          const chunk = Buffer.alloc(size, 0x55);
          for (;;) {
            try {
              written += writeSync(fd, chunk);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
              break;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      return written;
    },
    free() {
      rmSync(filler, { force: true });
    },
    remount(mode) {
      execFileSync('mount', ['-o', `remount,${mode}`, dir], { stdio: 'pipe' });
    },
    unmount() {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
