/**
 * The testbed's tiny guest: Debian's cloud kernel (downloaded, unpacked, not installed) and a
 * busybox initramfs whose /init prints a tick counter to the serial port every second. Built
 * once into the testbed folder; every host boots it from the same path.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';
import { paths } from './layout.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const KERNEL = join(paths.guest, 'vmlinuz');
export const INITRD = join(paths.guest, 'initrd.img');

export async function buildGuest(): Promise<void> {
  if (existsSync(KERNEL) && existsSync(INITRD)) return;
  await mkdir(paths.guest, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'evtb-guest-'));
  try {
    // The metapackage names the current kernel package; download that one.
    const depends = (await $`apt-cache depends linux-image-cloud-amd64`).stdout;
    const pkg = /Depends: (linux-image-[\w.+-]+-cloud-amd64)/.exec(depends)?.[1];
    if (!pkg) throw new Error('cannot find the Debian cloud kernel package (apt-cache depends linux-image-cloud-amd64); run apt-get update');
    await $({ cwd: work })`apt-get download -q -o APT::Sandbox::User=root ${pkg}`;
    const deb = (await readdir(work)).find((f) => f.endsWith('.deb'))!;
    await $`dpkg-deb -x ${join(work, deb)} ${join(work, 'kernel')}`;
    const boot = join(work, 'kernel', 'boot');
    const vmlinuz = (await readdir(boot)).find((f) => f.startsWith('vmlinuz-'))!;

    const root = join(work, 'root');
    await mkdir(join(root, 'bin'), { recursive: true });
    await mkdir(join(root, 'lib', 'modules'), { recursive: true });
    await copyFile('/bin/busybox', join(root, 'bin', 'busybox'));
    await copyFile(join(HERE, 'guest-init.sh'), join(root, 'init'));
    await $`chmod 755 ${join(root, 'init')} ${join(root, 'bin', 'busybox')}`;
    // The power button and input event modules, so that `virsh shutdown` reaches the guest.
    for (const mod of ['button', 'evdev']) {
      const found = (await $`find ${join(work, 'kernel', 'lib', 'modules')} -name ${`${mod}.ko*`}`).stdout.trim().split('\n')[0];
      if (!found) continue;
      const target = join(root, 'lib', 'modules', `${mod}.ko`);
      if (found.endsWith('.xz')) await $`xz -dc ${found} > ${target}`;
      else await copyFile(found, target);
    }
    await $({ cwd: root })`find . | busybox cpio -o -H newc --quiet | gzip -9 > ${INITRD}`;
    await copyFile(join(boot, vmlinuz), KERNEL);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A guest's libvirt definition: plain QEMU (TCG: KVM does not work here), direct kernel boot, serial to a file. */
export function domainXml(name: string, memoryMib: number, opts: { ignoreShutdown?: boolean } = {}): string {
  const cmdline = `console=ttyS0 quiet${opts.ignoreShutdown ? ' ignore_shutdown' : ''}`;
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>${memoryMib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${KERNEL}</kernel>
    <initrd>${INITRD}</initrd>
    <cmdline>${cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/${name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/${name}.serial'/>
    </serial>
  </devices>
</domain>
`;
}

/**
 * The density guest: no kernel at all, a 1 MiB raw disk whose boot sector halts the CPU (cli;
 * hlt), 16 MiB of RAM. It costs no CPU and about 40 MiB of RSS, so a host carries 50 of them on
 * this machine. Its disk is read-only in a folder every testbed host sees: libvirt migrates it
 * live without a copy (a writable disk on a filesystem libvirt does not know as shared, such as
 * this one, is "unsafe" to it whatever its cache mode), and evacuator never copies or deletes it.
 */
export const TINY_DISKS = join(dirname(paths.guest), 'density');

/** The boot sector: cli; hlt; jmp back to hlt, then the boot signature, in a 1 MiB raw image. */
export function tinyDisk(): Buffer {
  const img = Buffer.alloc(2 ** 20);
  Buffer.from([0xfa, 0xf4, 0xeb, 0xfd]).copy(img, 0);
  img[510] = 0x55;
  img[511] = 0xaa;
  return img;
}

export function tinyDomainXml(name: string): string {
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${TINY_DISKS}/${name}.img'/>
      <target dev='vda' bus='virtio'/>
      <readonly/>
    </disk>
  </devices>
</domain>
`;
}
