// A bounded UDP packet generator for bench/nodeport.ts, run inside a lab
// namespace (never the root one): `flows` connected UDP sockets, each on its
// own ephemeral source port, take turns sending batches of small datagrams
// with sendmmsg() to one address, until `seconds` have passed or
// `max_packets` are sent, whichever comes first.
//
// Many source ports, because a NodePort datapath keeps state per flow
// (conntrack, the SNAT port): one flow would measure one hash bucket.
// Connected sockets, so each send skips the route lookup a sendto() would do
// and the figure is the path's cost, not the generator's.
//
// Prints one JSON line: {"sent", "seconds", "errors", "flows"}. Send errors
// (ENOBUFS when a queue is full, ECONNREFUSED after an ICMP unreachable) are
// counted, not fatal: the bench reports them next to the rate.
//
// Build: gcc -O2 -o build/udpgen bench/udpgen.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 64, MAX_FLOWS = 1024, MAX_PAYLOAD = 1400 };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void) {
  fprintf(stderr, "usage: udpgen HOST PORT FLOWS SECONDS MAX_PACKETS PAYLOAD_BYTES\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc != 7) return usage();
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
  int flows = atoi(argv[3]);
  double seconds = atof(argv[4]);
  long long max_packets = atoll(argv[5]);
  int payload = atoi(argv[6]);
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 || flows < 1 || flows > MAX_FLOWS ||
      !(seconds > 0 && seconds <= 60) || max_packets < 1 || payload < 1 || payload > MAX_PAYLOAD)
    return usage();

  static int fds[MAX_FLOWS];
  for (int i = 0; i < flows; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&dst, sizeof(dst)) != 0) {
      fprintf(stderr, "udpgen: socket %d: %s\n", i, strerror(errno));
      return 1;
    }
  }

  static char buf[MAX_PAYLOAD];
  memset(buf, 'x', sizeof(buf));
  struct iovec iov = {.iov_base = buf, .iov_len = (size_t)payload};
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  long long sent = 0, errors = 0;
  double start = now_s(), end = start + seconds, t = start;
  for (int f = 0; sent < max_packets && t < end; f = (f + 1) % flows) {
    long long left = max_packets - sent;
    int n = sendmmsg(fds[f], msgs, left < BATCH ? (unsigned)left : BATCH, 0);
    if (n > 0) sent += n;
    else errors++;
    t = now_s();
  }
  printf("{\"sent\":%lld,\"seconds\":%.6f,\"errors\":%lld,\"flows\":%d}\n", sent, t - start, errors, flows);
  return 0;
}
