#!/bin/sh
# Runs the host's job in a guest, for both runners (stage2.sh of the project's
# own, vng's --exec): the mounts the lab and bpfproxy expect where the runner
# has not made them, loopback up, then RESULTS/job.sh. Its exit status goes to
# RESULTS/status (written, then renamed: the host never reads half a file) and
# to the console after a marker.
R=$1
grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 cgroup2 /sys/fs/cgroup
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf
mkdir -p /run/netns
ip link set lo up
echo "BPFPROXY-VM-STARTED $(uname -r)"
sh "$R/job.sh"
rc=$?
echo "$rc" > "$R/status.tmp" && mv "$R/status.tmp" "$R/status"
sync
echo "BPFPROXY-VM-EXIT $rc"
exit "$rc"
