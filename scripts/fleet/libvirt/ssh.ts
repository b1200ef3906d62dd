/**
 * SSH to the fleet's hosts with ssh2: one pooled connection per host (keepalive, reconnect on
 * the next command after a drop), strict host-key checking against a known_hosts file, keys from
 * the plan, an agent, or the usual files. Remote commands are argument lists, each argument
 * quoted for the remote shell: plan values are never pasted into a command line.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import { Client, type ConnectConfig } from 'ssh2';

/** Channels open at once per host: below sshd's MaxSessions (10 by default), so no command is refused for want of one. */
export const CHANNELS_PER_HOST = 8;

export interface SshTarget {
  /** Host name as the plan and known_hosts know it. */
  name: string;
  /** Address to connect to (the plan's default: the name). */
  address: string;
  port: number;
}

export interface SshOptions {
  user: string;
  /** Private key files to try, in order; default ~/.ssh/id_ed25519, id_ecdsa, id_rsa. */
  identityFiles?: string[];
  knownHostsFile: string;
  connectTimeoutMs: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Quote one argument for a POSIX shell. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Host keys known for a host: plain or hashed known_hosts entries, by name or address (and port). */
export function knownKeys(knownHosts: string, names: string[], port = 22): Buffer[] {
  const wanted = names.map((n) => (port === 22 ? n : `[${n}]:${port}`));
  const keys: Buffer[] = [];
  for (const line of knownHosts.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith('@')) continue;
    const [hosts, , key] = t.split(/\s+/);
    if (!key) continue;
    const match = hosts.split(',').some((pattern) => {
      if (pattern.startsWith('|1|')) {
        const [, , salt, hash] = pattern.split('|');
        return wanted.some((w) => createHmac('sha1', Buffer.from(salt, 'base64')).update(w).digest('base64') === hash);
      }
      return wanted.includes(pattern);
    });
    if (match) keys.push(Buffer.from(key, 'base64'));
  }
  return keys;
}

export class SshPool {
  private conns = new Map<string, Promise<Client>>();
  private limits = new Map<string, LimitFunction>();
  private clients = new Map<string, Client>();
  /** Every connection made and not yet ended, for close(). */
  private all = new Set<Client>();
  private closed = false;

  constructor(
    private readonly targets: Map<string, SshTarget>,
    private readonly opts: SshOptions,
  ) {}

  /**
   * Run argv on host; resolves with its exit code and output (a non-zero exit is not an error).
   * Rejects when the host cannot be reached. A connection found dropped when a channel is asked
   * for is made again once (the command had not started, so running it then is safe).
   */
  async exec(host: string, argv: string[], stdin?: string): Promise<ExecResult> {
    let limit = this.limits.get(host);
    if (!limit) this.limits.set(host, (limit = pLimit(CHANNELS_PER_HOST)));
    return limit(async () => {
      try {
        return await this.once(host, argv, stdin);
      } catch (e) {
        if (!(e instanceof NotStarted)) throw e;
        return this.once(host, argv, stdin);
      }
    });
  }

  private async once(host: string, argv: string[], stdin?: string): Promise<ExecResult> {
    const client = await this.connect(host);
    return new Promise((resolve, reject) => {
      const started = (fn: () => void) => {
        try {
          fn();
        } catch (e) {
          // ssh2 throws when the connection closed under us: nothing ran.
          this.drop(host, client);
          reject(new NotStarted(e instanceof Error ? e.message : String(e)));
        }
      };
      started(() => client.exec(argv.map(shellQuote).join(' '), (err, stream) => {
        if (err) {
          this.drop(host, client);
          // sshd refusing a session channel is no dead host: say what limits it.
          const why = /Channel open failure/i.test(err.message) ? `${err.message} (${host}'s sshd refused a session: is its MaxSessions below ${CHANNELS_PER_HOST}, the channels evacuator opens per host?)` : err.message;
          return reject(new NotStarted(why));
        }
        // Chunks are decoded once, whole: a character split between two chunks (a name in UTF-8) stays one character.
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        stream.on('data', (d: Buffer) => stdout.push(d));
        stream.stderr.on('data', (d: Buffer) => stderr.push(d));
        stream.on('close', (code: number | null) => resolve({ code: code ?? -1, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() }));
        if (stdin !== undefined) stream.end(stdin);
        else stream.end();
      }));
    });
  }

  private connect(host: string): Promise<Client> {
    if (this.closed) return Promise.reject(new Error('the SSH connections are closed'));
    const existing = this.conns.get(host);
    if (existing) return existing;
    const target = this.targets.get(host);
    if (!target) return Promise.reject(new Error(`host ${host} is not in the plan's libvirt hosts`));
    const known = existsSync(this.opts.knownHostsFile) ? readFileSync(this.opts.knownHostsFile, 'utf8') : '';
    const keys = knownKeys(known, [...new Set([target.name, target.address])], target.port);
    const p = new Promise<Client>((resolve, reject) => {
      const client = new Client();
      const config: ConnectConfig = {
        host: target.address,
        port: target.port,
        username: this.opts.user,
        readyTimeout: this.opts.connectTimeoutMs,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        // Strict: a host whose key is not in known_hosts, or differs, is refused.
        hostVerifier: (key: Buffer) => keys.some((k) => k.equals(key)),
        ...this.credentials(),
      };
      client.on('ready', () => resolve(client));
      this.clients.set(host, client);
      this.all.add(client);
      client.on('error', (e) => {
        this.drop(host, client);
        reject(keys.length === 0 ? new Error(`${host} is not in ${this.opts.knownHostsFile}; add its host key (ssh-keyscan, checked out of band)`) : e);
      });
      client.on('close', () => {
        this.all.delete(client);
        this.drop(host, client);
      });
      client.connect(config);
    });
    this.conns.set(host, p);
    return p;
  }

  private credentials(): Partial<ConnectConfig> {
    const files = this.opts.identityFiles ?? ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f));
    const file = files.find((f) => existsSync(f));
    return {
      ...(file ? { privateKey: readFileSync(file) } : {}),
      ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}),
    };
  }

  /** Forget host's connection, if it is still this client's (a newer one stays). */
  private drop(host: string, client: Client): void {
    const p = this.conns.get(host);
    if (p && this.clients.get(host) === client) {
      this.conns.delete(host);
      this.clients.delete(host);
    }
    // Not ended here: commands may still run on it (a channel refused is no dead connection); close() ends it.
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.all) c.end();
    this.all.clear();
    for (const p of this.conns.values()) p.then((c) => c.end(), () => {});
    this.conns.clear();
    this.clients.clear();
  }
}

/** A channel could not be opened: the command never ran. */
class NotStarted extends Error {}
