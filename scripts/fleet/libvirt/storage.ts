/**
 * Which disk files two hosts share, decided by identity, never by filesystem type: a host writes
 * a marker file of random content into each folder that holds a disk, the other hosts read it at
 * the same path, and only a host that reads the same content sees the same folder. A folder the
 * marker cannot be written into is of unknown sharedness, which counts as shared for every
 * decision that could harm data (never copied onto, never deleted) and as local for none.
 *
 * Every path goes to the remote shell as an argument ("$@"), never inside the script's text.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { ExecResult } from './ssh.ts';

export type Exec = (host: string, argv: string[], stdin?: string) => Promise<ExecResult>;

/** What a reader host knows of an owner host's folder. */
export type Sharing = 'shared' | 'local' | 'unknown';

const MARKER = '.evacuator-probe-';

/** Folders of these paths, without repeats. */
export function foldersOf(paths: string[]): string[] {
  return [...new Set(paths.map((p) => posix.dirname(p)))];
}

/**
 * For each owner host and each of its folders, what each reader host sees there: the same
 * folder (shared), another (local), or unknown (the marker could not be written, or a host did
 * not answer). Three remote commands per host, whatever the number of folders.
 */
export async function probeSharing(exec: Exec, folders: Map<string, string[]>, readers: string[]): Promise<Map<string, Map<string, Map<string, Sharing>>>> {
  const result = new Map<string, Map<string, Map<string, Sharing>>>();
  const written = new Map<string, { folder: string; file: string; token: string }[]>();
  // 1. Each owner writes a marker of its own random content into each folder (exclusively: noclobber).
  await Promise.all([...folders].map(async ([owner, dirs]) => {
    const byFolder = new Map<string, Map<string, Sharing>>();
    result.set(owner, byFolder);
    for (const d of dirs) byFolder.set(d, new Map(readers.filter((r) => r !== owner).map((r) => [r, 'unknown' as Sharing])));
    if (dirs.length === 0) return;
    const token = randomBytes(12).toString('hex');
    const r = await exec(owner, ['sh', '-c', 'set -C; t=$1; shift; for d do printf %s "$t" 2>/dev/null > "$d/' + MARKER + '$t" && printf "%s\\0" "$d"; done; exit 0', 'sh', token, ...dirs]).catch(() => undefined);
    const ok = new Set((r?.stdout ?? '').split('\0').filter(Boolean));
    written.set(owner, dirs.filter((d) => ok.has(d)).map((folder) => ({ folder, file: posix.join(folder, `${MARKER}${token}`), token })));
  }));
  // 2. Each reader reads every other owner's markers in one command: index and content of each found.
  const markers = [...written].flatMap(([owner, list]) => list.map((m) => ({ owner, ...m })));
  await Promise.all(readers.map(async (reader) => {
    const theirs = markers.filter((m) => m.owner !== reader);
    if (theirs.length === 0) return;
    const r = await exec(reader, ['sh', '-c', 'i=0; for f do i=$((i+1)); c=$(cat -- "$f" 2>/dev/null) && printf "%s %s\\n" "$i" "$c"; done; exit 0', 'sh', ...theirs.map((m) => m.file)]).catch(() => undefined);
    if (!r || r.code !== 0) return;
    const seen = new Map<number, string>();
    for (const line of r.stdout.split('\n')) {
      const m = /^(\d+) ([0-9a-f]+)$/.exec(line);
      if (m) seen.set(Number(m[1]), m[2]);
    }
    theirs.forEach((m, i) => {
      result.get(m.owner)!.get(m.folder)!.set(reader, seen.get(i + 1) === m.token ? 'shared' : 'local');
    });
  }));
  // 3. Each owner removes its markers.
  await Promise.all([...written].map(([owner, list]) => (list.length === 0 ? undefined
    : exec(owner, ['sh', '-c', 'for f do rm -f -- "$f"; done', 'sh', ...list.map((m) => m.file)]).catch(() => undefined))));
  return result;
}

/** The paths among these that exist on host (files, devices, links: anything a copy would overwrite); undefined when it did not answer. */
export async function existing(exec: Exec, host: string, paths: string[]): Promise<Set<string> | undefined> {
  if (paths.length === 0) return new Set();
  const r = await exec(host, ['sh', '-c', 'for f do if [ -e "$f" ] || [ -L "$f" ]; then printf "%s\\0" "$f"; fi; done; exit 0', 'sh', ...paths]).catch(() => undefined);
  if (!r || r.code !== 0) return undefined;
  return new Set(r.stdout.split('\0').filter(Boolean));
}

/** A random separator for a batch's output, so no text from a host can forge one. */
export function separator(): string {
  return `@@evacuator-${randomBytes(9).toString('hex')}`;
}
