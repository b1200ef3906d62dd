/**
 * The SSH pool against a real SSH server (ssh2's, in process) that refuses session channels past
 * two, as an sshd with MaxSessions 2 does: the refusals say what limits them, and close() ends
 * every connection it made, so a command that failed this way cannot keep the process alive.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { SshPool } from '../scripts/fleet/libvirt/ssh.ts';

const dir = mkdtempSync(join(tmpdir(), 'evac-ssh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SshPool', () => {
  it('channels refused past MaxSessions: said as such; close() ends every connection', async () => {
    const host = ssh2.utils.generateKeyPairSync('ed25519');
    const user = ssh2.utils.generateKeyPairSync('ed25519');
    let open = 0;
    let live = 0;
    const server = new ssh2.Server({ hostKeys: [host.private] }, (client) => {
      live++;
      client.on('close', () => live--);
      client.on('authentication', (ctx) => ctx.accept());
      client.on('ready', () => {
        client.on('session', (accept, reject) => {
          if (open >= 2) return reject();
          open++;
          const session = accept();
          session.on('exec', (acceptExec) => {
            const stream = acceptExec();
            // A command that takes a while, so channels overlap.
            setTimeout(() => {
              stream.write('ok\n');
              stream.exit(0);
              stream.end();
              open--;
            }, 300);
          });
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const keyLine = host.public.split(' ').slice(0, 2).join(' ');
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${keyLine}\n`);
    writeFileSync(join(dir, 'id'), user.private);
    const pool = new SshPool(new Map([['h', { name: 'h', address: '127.0.0.1', port }]]), { user: 'root', identityFiles: [join(dir, 'id')], knownHostsFile: join(dir, 'known_hosts'), connectTimeoutMs: 5000 });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => pool.exec('h', ['true'])));
    const refused = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    for (const why of refused) expect(why).toMatch(/MaxSessions/);
    await pool.close();
    for (let i = 0; i < 50 && live > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(live).toBe(0);
    await expect(pool.exec('h', ['true'])).rejects.toThrow(/closed/);
    server.close();
  });
});
