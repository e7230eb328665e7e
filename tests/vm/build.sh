#!/usr/bin/env bash
# Builds the tiny VM that drills and cold-backup tests boot under software emulation (TCG):
# - qemu-system-x86 7.2 from Debian, unpacked into a private folder (installing it would
#   replace the machine's qemu-img 10), with a wrapper that points it at its firmware;
# - Debian's cloud kernel;
# - a busybox initramfs whose /init loads the virtio drivers, mounts the first virtio disk
#   read-only, prints its /marker on the serial console and then, by the kernel command line:
#   powers off (default); with lifeboat.mode=stay waits for the ACPI power button (QMP
#   system_powerdown) and then powers off; with lifeboat.mode=ignore never powers off.
# Output (default target/vm): qemu-system-x86_64 (the wrapper), vmlinuz, initrd.gz.
# Does nothing when they are there already, in this version.
set -euo pipefail
out=$(realpath -m "${1:-target/vm}")
version=3
[[ -f $out/ready && $(cat "$out/ready") == "$version" ]] && exit 0
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DEBIAN_FRONTEND=noninteractive
echo "building the test VM in $out (qemu 7.2, Debian cloud kernel, busybox initramfs)"
apt-get update -qq
apt-get install -y -qq --no-install-recommends busybox-static e2fsprogs qemu-system-data \
  seabios ipxe-qemu libaio1 libbpf1 libcapstone4 libfdt1 libfuse3-3 libglib2.0-0 libgmp10 \
  libgnutls30 libibverbs1 libjpeg62-turbo libnuma1 libpixman-1-0 libpmem1 libpng16-16 \
  librdmacm1 libsasl2-2 libseccomp2 libslirp0 liburing2 libvdeplug2 >/dev/null
kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image/ {print $2; exit}')
(cd "$work" && apt-get download -qq qemu-system-x86 qemu-system-common "$kernel_pkg" 2>/dev/null)
mkdir -p "$out/qemu" "$work/kernel"
for deb in "$work"/qemu-system-*.deb; do dpkg-deb -x "$deb" "$out/qemu"; done
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
cp "$work"/kernel/boot/vmlinuz-* "$out/vmlinuz"
cat > "$out/qemu-system-x86_64" <<WRAPPER
#!/bin/sh
exec "$out/qemu/usr/bin/qemu-system-x86_64" -L /usr/share/seabios -L /usr/lib/ipxe/qemu -L /usr/share/qemu "\$@"
WRAPPER
chmod +x "$out/qemu-system-x86_64"

modules=$(echo "$work"/kernel/lib/modules/*/kernel)
root=$work/initrd
mkdir -p "$root/bin" "$root/lib/modules" "$root/proc" "$root/sys" "$root/dev" "$root/mnt" "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev \
         virtio/virtio_pci_modern_dev virtio/virtio_pci block/virtio_blk acpi/button input/evdev; do
  cp "$modules/drivers/$m.ko" "$root/lib/modules/"
done
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
         evdev button; do
  insmod /lib/modules/$m.ko
done
mode=once
for word in $(cat /proc/cmdline); do
  case $word in lifeboat.mode=*) mode=${word#lifeboat.mode=} ;; esac
done
# In stay mode, open the power buttons' event devices before the marker says the VM is up
# (the open is what makes the kernel keep a press for us), then wait on them in background.
if [ "$mode" = stay ]; then
  fd=3
  for d in /sys/class/input/input*; do
    grep -q "Power Button" "$d/name" 2>/dev/null || continue
    for e in "$d"/event*; do
      eval "exec $fd</dev/input/${e##*/}"
      eval "(head -c 24 <&$fd >/dev/null && touch /tmp/power) &"
      fd=$((fd+1))
    done
  done
fi
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if mount -o ro /dev/vda /mnt 2>/dev/null; then
  if [ -f /mnt/marker ]; then cat /mnt/marker; else echo "lifeboat-vm: the disk has no /marker"; fi
else
  echo "lifeboat-vm: no disk to mount"
fi
case $mode in
  stay)
    echo "lifeboat-vm: running until the power button"
    while [ ! -f /tmp/power ]; do sleep 0.2; done
    echo "lifeboat-vm: power button pressed, powering off"
    umount /mnt 2>/dev/null
    ;;
  ignore)
    echo "lifeboat-vm: running, ignoring the power button"
    while true; do sleep 3600; done
    ;;
esac
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) >"$out/initrd.gz"
echo "$version" >"$out/ready"
echo "test VM ready: $out"
