#!/bin/busybox sh
# Stage 1, the initramfs's /init: load what it takes to reach the host's
# files (virtio, 9p, overlay), build a root from the host's / (read-only 9p)
# under a tmpfs overlay, and switch_root into it. switch_root, not chroot:
# after a chroot the kernel's module auto-loading still runs this
# initramfs's modprobe, and `ip link add ... type dummy`, nftables and
# iptables nat fail (vm-notes).
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "BPFPROXY-VM-FAIL $*"
  echo o > /proc/sysrq-trigger
  sleep 10
}

while read -r mod; do
  insmod "/modules/$mod" || fail "insmod $mod"
done < /modules/order

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^bpxvm\.$1=//p"; }
STAGE2=$(arg stage2)
KVER=$(uname -r)

P9='trans=virtio,version=9p2000.L,msize=512000'
mkdir -p /lower /rw /newroot
mount -t 9p -o "$P9,ro,cache=loose" bpxroot /lower || fail "mount the host's root"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "mount the overlay"

# The guest kernel's modules where its modprobe looks (/lib is usr/lib on Debian 12).
mkdir -p /newroot/usr/lib/modules
mount -t 9p -o "$P9,ro" bpxmods /newroot/usr/lib/modules || fail "mount the module tree"
[ -d "/newroot/usr/lib/modules/$KVER" ] || fail "no modules for $KVER in the module share"

# A fresh /run; /tmp stays the overlay's (writes land in its tmpfs upper layer):
# a tmpfs over /tmp would hide a checkout that lives there, as CI's clones may.
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mkdir -p /newroot/run/bpxvm
mount -t 9p -o "$P9" bpxresults /newroot/run/bpxvm || fail "mount the results share"

for d in dev proc sys; do mount --move "/$d" "/newroot/$d"; done
exec switch_root /newroot /bin/sh "$STAGE2"
