/**
 * The roll's commands (maintenance step, checks, hooks): an argument list run without a shell
 * (a plan value is never read as shell syntax), with the host in its environment, a timeout
 * (SIGTERM, then SIGKILL 10 s later), its output kept (the last 16 KiB of each stream) with the
 * values of the plan's secret environment variables masked.
 */
import { spawn } from 'node:child_process';

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

/**
 * Mask every value of these environment variables (of 4 characters or more: shorter ones would
 * mask half the text), as written and as commands often print them (URL-encoded, base64, JSON
 * string), and the fragments a cut leaves: text that begins with the end of a secret (the kept
 * tail cut it) or ends with the start of one (a command killed mid-write).
 */
export function masker(names: readonly string[], env: NodeJS.ProcessEnv = process.env): (text: string) => string {
  const raw = names.map((n) => env[n]).filter((v): v is string => typeof v === 'string' && v.length >= MIN_FRAGMENT);
  if (raw.length === 0) return (t) => t;
  const forms = [...new Set(raw.flatMap((v) => [v, encodeURIComponent(v), Buffer.from(v).toString('base64').replace(/=+$/, ''), JSON.stringify(v).slice(1, -1)]))]
    .filter((v) => v.length >= MIN_FRAGMENT).sort((a, b) => b.length - a.length);
  return (t) => {
    let out = forms.reduce((acc, v) => acc.split(v).join('***'), t);
    for (const v of forms) {
      // All of the text inside a secret (both ends cut).
      if (out.length >= MIN_FRAGMENT && v.includes(out)) return '***';
      // The longest end of v the text begins with, the longest start of v it ends with.
      for (let n = Math.min(v.length - 1, out.length); n >= MIN_FRAGMENT; n--) {
        if (out.startsWith(v.slice(-n))) {
          out = `***${out.slice(n)}`;
          break;
        }
      }
      for (let n = Math.min(v.length - 1, out.length); n >= MIN_FRAGMENT; n--) {
        if (out.endsWith(v.slice(0, n))) {
          out = `${out.slice(0, -n)}***`;
          break;
        }
      }
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
    const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], shell: false, detached: true });
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
