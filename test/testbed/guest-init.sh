#!/bin/busybox sh
# /init of the testbed's tiny guest: prints "tick N up=SECONDS" to the serial port every second,
# so that the host can tell a guest that kept running (N goes on) from one that rebooted.
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# ACPI power button -> power off, unless the kernel command line says to ignore it.
if ! grep -q ignore_shutdown /proc/cmdline; then
  for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
  sleep 0.2
  for d in /sys/class/input/event*; do
    if grep -q "Power Button" "$d/device/name" 2>/dev/null; then
      (head -c 1 "/dev/input/${d##*/}" >/dev/null; echo "power button: powering off" > /dev/ttyS0; poweroff -f) &
    fi
  done
fi
n=0
while true; do
  n=$((n + 1))
  echo "tick $n up=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
  sleep 1
done
