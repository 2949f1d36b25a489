#!/bin/sh
# Stage 2 of the project's own runner, in the guest's root (the host's files
# under a tmpfs overlay, stage 1 having moved /dev, /proc and /sys here): the
# remaining mounts, the job (run-job.sh), then power off.
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts 2>/dev/null || { mkdir -p /dev/pts && mount -t devpts devpts /dev/pts; }
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
hostname bpfproxy-vm 2>/dev/null
sh "$(dirname "$0")/run-job.sh" /run/bpxvm
echo o > /proc/sysrq-trigger
sleep 30
