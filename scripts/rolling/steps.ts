/**
 * The roll's commands (maintenance step, checks, hooks): an argument list run without a shell
 * (a plan value is never read as shell syntax), with the host in its environment, a timeout
 * (SIGTERM, then SIGKILL 10 s later), its output kept (the last 16 KiB of each stream) with the
 * values of the plan's secret environment variables masked.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';

export interface CommandResult {
  ok: boolean;
  /** Exit code, or null when it was killed or could not start. */
  code: number | null;
  /** What went wrong, in a sentence (empty when ok). */
  detail: string;
  /** stdout then stderr, the tail of each, secrets masked. */
  output: string;
  durationMs: number;
}

const KEEP = 16 * 1024;

/** A fragment of a secret this short at a cut is left as it is (it would mask ordinary text). */
const MIN_FRAGMENT = 4;
/** A piece of a secret this long is masked wherever it appears (a secret split across lines or streams). */
const PIECE = 6;

/** The forms a secret takes in output: as written, URL-encoded (either case), JSON-escaped, and base64 and base64url at each of the three byte alignments (the characters that depend on the secret alone). */
export function secretForms(v: string): string[] {
  const url = encodeURIComponent(v);
  const bytes = Buffer.from(v);
  const everyByte = [...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
  // JSON as most serialisers write it: raw, and with every non-ASCII character as \\uXXXX.
  const asciiJson = JSON.stringify(v).slice(1, -1).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const forms = [
    v, url, encodeURIComponent(url), everyByte, asciiJson, asciiJson.replace(/\\u[0-9a-f]{4}/g, (x) => x.toUpperCase().replace('\\U', '\\u')),
    JSON.stringify(v).slice(1, -1), bytes.toString('hex'), bytes.toString('hex').toUpperCase(),
  ];
  for (const f of [url, encodeURIComponent(url), everyByte]) forms.push(f.replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase()));
  for (let k = 0; k < 3; k++) {
    const bytes = Buffer.concat([Buffer.alloc(k), Buffer.from(v)]);
    const all = bytes.toString('base64');
    // Followed by more data (its last group cut where the secret ends), or ending the data (padded).
    for (const b64 of [all.slice(k > 0 ? 4 : 0, 4 * Math.floor(bytes.length / 3)), all.slice(k > 0 ? 4 : 0).replace(/=+$/, '')]) forms.push(b64, b64.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...new Set(forms)].filter((f) => f.length >= MIN_FRAGMENT).sort((a, b) => b.length - a.length);
}

/**
 * Mask every value of these environment variables (of 4 characters or more: shorter ones would
 * mask half the text) in each of its forms (secretForms): whole, any piece of 8 characters or
 * more wherever it is (a secret split across lines or streams), and the fragments of 4 or more a
 * cut leaves: text that begins with the end of a secret (the kept tail cut it), ends with the start
 * of one (a command killed mid-write), or lies wholly inside one.
 */
export function masker(names: readonly string[], env: NodeJS.ProcessEnv = process.env): (text: string) => string {
  const forms = [...new Set(names.map((n) => env[n]).filter((v): v is string => typeof v === 'string' && v.length >= MIN_FRAGMENT).flatMap(secretForms))];
  if (forms.length === 0) return (t) => t;
  return (t) => {
    if (t.length === 0) return t;
    const hide = new Uint8Array(t.length);
    const mark = (from: number, to: number) => hide.fill(1, Math.max(0, from), Math.min(t.length, to));
    for (const f of forms) {
      if (t.length >= MIN_FRAGMENT && f.includes(t)) return '***';
      for (let at = t.indexOf(f); at >= 0; at = t.indexOf(f, at + 1)) mark(at, at + f.length);
      // Pieces anywhere, each grown to the longest run that matches the secret there.
      for (let i = 0; f.length > PIECE && i + PIECE <= f.length; i++) {
        const piece = f.slice(i, i + PIECE);
        for (let at = t.indexOf(piece); at >= 0; at = t.indexOf(piece, at + 1)) {
          let end = at + PIECE;
          while (end < t.length && i + (end - at) < f.length && t[end] === f[i + (end - at)]) end++;
          let start = at;
          while (start > 0 && i - (at - start) > 0 && t[start - 1] === f[i - (at - start) - 1]) start--;
          mark(start, end);
        }
      }
      // The longest end of f the text begins with, the longest start of f it ends with.
      for (let n = Math.min(f.length - 1, t.length); n >= MIN_FRAGMENT; n--) {
        if (t.startsWith(f.slice(-n))) {
          mark(0, n);
          break;
        }
      }
      for (let n = Math.min(f.length - 1, t.length); n >= MIN_FRAGMENT; n--) {
        if (t.endsWith(f.slice(0, n))) {
          mark(t.length - n, t.length);
          break;
        }
      }
    }
    let out = '';
    for (let i = 0; i < t.length; i++) {
      if (!hide[i]) out += t[i];
      else if (i === 0 || !hide[i - 1]) out += '***';
    }
    return out;
  };
}

/** A command's kept output: the tail of each stream, each masked on its own (a cut or a secret at one stream's end stays within it), stdout then stderr. */
export function keptOutput(stdout: string, stderr: string, mask: (t: string) => string): string {
  const [o, e] = [mask(stdout.slice(-KEEP)), mask(stderr.slice(-KEEP))];
  return [o, e].filter((x) => x.length > 0).join(o && e ? '\n--- stderr ---\n' : '');
}

/** Run argv with extra environment; never throws (a program that cannot start is a failed result). */
export function runCommand(argv: readonly string[], extraEnv: Record<string, string>, timeoutMs: number, mask: (t: string) => string, signal?: AbortSignal, started?: (pid: number) => void): Promise<CommandResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let out = '';
    let err = '';
    let timedOut = false;
    let settled = false;
    const keep = (acc: string, d: Buffer) => (acc + d.toString()).slice(-KEEP * 2);
    // Its own process group, so a timeout stops what it started too (a shell's children hold its output open).
    let child: import('node:child_process').ChildProcessByStdio<null, import('node:stream').Readable, import('node:stream').Readable>;
    try {
      child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], shell: false, detached: true });
    } catch (e) {
      // Refused before it started (an empty or invalid program): a failed result like any other.
      return resolve({ ok: false, code: null, detail: mask(`${argv[0] || '(empty program)'} could not start: ${e instanceof Error ? e.message : String(e)}`), output: '', durationMs: Date.now() - t0 });
    }
    if (child.pid !== undefined) started?.(child.pid);
    const finish = (code: number | null, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(kill);
      signal?.removeEventListener('abort', onAbort);
      resolve({ ok: code === 0 && !detail, code, detail: mask(detail), output: keptOutput(out, err, mask), durationMs: Date.now() - t0 });
    };
    let kill: NodeJS.Timeout | undefined;
    const signal_ = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // Already gone.
      }
    };
    const stopIt = () => {
      signal_('SIGTERM');
      kill = setTimeout(() => signal_('SIGKILL'), 10_000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stopIt();
    }, timeoutMs);
    const onAbort = () => stopIt();
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => (out = keep(out, d)));
    child.stderr.on('data', (d: Buffer) => (err = keep(err, d)));
    child.on('error', (e: NodeJS.ErrnoException) => finish(null, `${argv[0]} could not start: ${e.code ?? e.message}`));
    // A command that exits but leaves a child holding its output (a daemon, ssh's ControlPersist) is
    // done when it exits: its output is read for one more second, then the pipes are let go.
    child.on('exit', () => {
      const drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        child.emit('close', child.exitCode, child.signalCode);
      }, 1000);
      drain.unref();
    });
    child.on('close', (code, sig) => {
      if (timedOut) return finish(code, `killed after its timeout of ${Math.round(timeoutMs / 1000)} s`);
      if (signal?.aborted) return finish(code, 'stopped: the roll was interrupted');
      if (sig) return finish(null, `killed by ${sig}`);
      finish(code, code === 0 ? '' : `exit ${code}`);
    });
  });
}

/** Where a program would be found on this machine (a path, or a name in PATH), or undefined: checked before a roll does anything. */
export function findProgram(program: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const ok = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (program.includes('/')) return ok(program) ? program : undefined;
  for (const dir of (env.PATH ?? '').split(':').filter(Boolean)) if (ok(join(dir, program))) return join(dir, program);
  return undefined;
}
