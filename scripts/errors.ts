/** Exit codes: the one place that decides them (documented in README.md). */
export const ExitCode = {
  /** Every VM of every source host moved; the sources are empty. */
  ok: 0,
  /** A bug or an unexpected failure inside evacuator. */
  internal: 1,
  /** Bad input: plan invalid, unknown host or VM, bad command line. Nothing was touched. */
  badInput: 2,
  /** The run finished but some VMs were left in place (each one reported with its reason). */
  incomplete: 3,
  /** The fleet could not be reached or read (a source host down, a driver error). Nothing was touched. */
  fleet: 4,
  /** Another run holds these hosts (named in the message), or an earlier run of this plan must be resumed first. Nothing was touched. */
  held: 5,
  /** Interrupted by SIGINT/SIGTERM; reports written for what happened so far. */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Where a problem comes from: the user (fix your input) or evacuator itself (a bug). */
/** incomplete: the work cannot be done as planned (a roll whose host cannot be emptied): exit 3, nothing touched. */
export type ErrorSource = 'user' | 'fleet' | 'held' | 'interrupted' | 'incomplete' | 'internal';

/** A located problem in an input file. */
export interface Problem {
  file: string;
  line: number;
  col: number;
  /** JSON-pointer-like field path, e.g. migration.concurrency.total */
  path: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** The one error type: the CLI catches it once and turns it into a message and an exit code. */
export class EvacError extends Error {
  constructor(
    message: string,
    readonly source: ErrorSource,
    readonly problems: Problem[] = [],
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'EvacError';
  }

  get exitCode(): ExitCode {
    if (this.source === 'user') return ExitCode.badInput;
    if (this.source === 'fleet') return ExitCode.fleet;
    if (this.source === 'held') return ExitCode.held;
    if (this.source === 'interrupted') return ExitCode.interrupted;
    if (this.source === 'incomplete') return ExitCode.incomplete;
    return ExitCode.internal;
  }
}

export const userError = (message: string, problems: Problem[] = [], hint?: string) =>
  new EvacError(message, 'user', problems, hint);

/** What went wrong, as text, whatever was thrown. */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A command line to suggest to a person: each word quoted for a POSIX shell where it needs it. */
export function commandLine(...words: string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`)).join(' ');
}
