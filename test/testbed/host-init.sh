#!/bin/bash
# Runs inside a testbed host's fresh mount and UTS namespaces (and its network namespace):
# gives it a copy-on-write /etc and /var, a private /root and /run, its own sshd and libvirtd,
# then stays alive as the anchor that holds the namespaces.
# Arguments: NAME ADDRESS HOST_DIR FLEET_DIR
set -euo pipefail
name=$1 addr=$2 dir=$3 fleet=$4

for d in etc var; do mkdir -p "$dir/$d.upper" "$dir/$d.work"; done
mkdir -p "$dir/root" "$dir/run"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$dir/etc.upper,workdir=$dir/etc.work" /etc
mount -t overlay overlay -o "lowerdir=/var,upperdir=$dir/var.upper,workdir=$dir/var.work" /var
mount --bind "$dir/root" /root
mount --bind "$dir/run" /run
hostname "$name"

cp "$fleet/hosts" /etc/hosts
# libvirt 9 looks up its built-in user before reading qemu.conf.
grep -q '^libvirt-qemu:' /etc/passwd || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >> /etc/passwd
grep -q '^libvirt-qemu:' /etc/group || echo 'libvirt-qemu:x:64055:' >> /etc/group

# SSH: its own host key, root logs in with the fleet's key (hosts reach each other) or the controller's.
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
cp /etc/ssh/ssh_host_ed25519_key.pub "$dir/host_key.pub"
mkdir -p /root/.ssh /run/sshd
chmod 700 /root/.ssh
cp "$fleet/fleet_key" /root/.ssh/id_ed25519
cat "$fleet/fleet_key.pub" "$fleet/controller_key.pub" > /root/.ssh/authorized_keys
cat > /root/.ssh/config <<CONF
Host *
  IdentityFile /root/.ssh/id_ed25519
  UserKnownHostsFile $fleet/known_hosts
  StrictHostKeyChecking yes
  ConnectTimeout 5
  BatchMode yes
CONF
chmod 600 /root/.ssh/id_ed25519 /root/.ssh/config
: > /root/.bashrc
cat > /etc/ssh/sshd_config <<CONF
ListenAddress $addr
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PidFile /run/sshd.pid
# virsh without -c probes several URIs first (seconds per call).
SetEnv LIBVIRT_DEFAULT_URI=qemu:///system
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
/usr/sbin/sshd -f /etc/ssh/sshd_config -E "$dir/sshd.log"

# libvirt: a distinct host UUID (else "migration to the same host"), no auth on the local socket,
# QEMU as root without security drivers or cgroups (namespaces, no systemd), migration on our address.
cat > /etc/libvirt/libvirtd.conf <<CONF
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
cat > /etc/libvirt/qemu.conf <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
migration_host = "$addr"
CONF
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/images /var/cache/libvirt/qemu
# Probing QEMU's capabilities costs about 8 s per host: reuse the first host's.
if [ -d "$fleet/qemu-capabilities" ]; then cp -a "$fleet/qemu-capabilities" /var/cache/libvirt/qemu/capabilities; fi
export LIBVIRT_DEFAULT_URI=qemu:///system
libvirtd --daemon --config /etc/libvirt/libvirtd.conf
for _ in $(seq 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
virsh -q pool-define-as default dir --target /var/lib/libvirt/images >/dev/null
virsh -q pool-start default >/dev/null
virsh -q pool-autostart default >/dev/null
# The first call that needs QEMU's capabilities (version, capabilities) probes them: pay it now.
virsh -q version >/dev/null
if [ ! -d "$fleet/qemu-capabilities" ]; then cp -a /var/cache/libvirt/qemu/capabilities "$fleet/qemu-capabilities" || true; fi

echo ready > "$dir/ready"
exec sleep infinity
