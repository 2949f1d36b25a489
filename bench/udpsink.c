// The counting receiver of bench/nodeport.ts, run in a backend pod's
// namespace: binds 0.0.0.0:PORT (UDP) and counts datagrams, draining its
// socket with recvmmsg() in batches so that it is not the bottleneck of the
// figure it serves (the bench measures its ceiling and prints it).
//
// Driven over stdin: each line asks for a report and starts a new window;
// it answers with one JSON line {"received", "drops"}: datagrams read since
// the last report, and datagrams the kernel dropped at this socket (a full
// receive queue, SK_MEMINFO_DROPS) in the same window. A non-zero drops
// count means the receiver, not the path, bounded the figure.
//
// Prints "ready" once bound. Exits when stdin closes, or after MAX_SECONDS
// whatever happens (a bound, in case its owner dies without closing stdin).
//
// Build: gcc -O2 -o build/udpsink bench/udpsink.c
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 256, SLOT = 2048 };

static unsigned socket_drops(int fd) {
  unsigned mem[SK_MEMINFO_VARS] = {0};
  socklen_t len = sizeof(mem);
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0) return 0;
  return mem[SK_MEMINFO_DROPS];
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: udpsink PORT MAX_SECONDS\n");
    return 2;
  }
  int max_seconds = atoi(argv[2]);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_ANY)};
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  // A deep queue absorbs bursts while this process is not scheduled (root: FORCE beats rmem_max).
  int rcvbuf = 64 << 20;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0 ||
      bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    fprintf(stderr, "udpsink: bind port %s: %s\n", argv[1], strerror(errno));
    return 1;
  }

  static char bufs[BATCH][SLOT];
  static struct iovec iovs[BATCH];
  static struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iovs[i] = (struct iovec){.iov_base = bufs[i], .iov_len = SLOT};
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  printf("ready\n");
  fflush(stdout);
  unsigned long long received = 0;
  unsigned drops_before = socket_drops(fd);
  time_t deadline = time(NULL) + max_seconds;
  char line[64];
  while (time(NULL) < deadline) {
    struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    if (poll(pfd, 2, 200) < 0 && errno != EINTR) return 1;
    if (pfd[0].revents & POLLIN) {
      int n;
      while ((n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) received += (unsigned long long)n;
    }
    if (pfd[1].revents & (POLLIN | POLLHUP)) {
      if (!fgets(line, sizeof(line), stdin)) return 0;
      // Read what is queued before reporting, so the window ends now.
      int n;
      while ((n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) received += (unsigned long long)n;
      unsigned drops = socket_drops(fd);
      printf("{\"received\":%llu,\"drops\":%u}\n", received, drops - drops_before);
      fflush(stdout);
      received = 0;
      drops_before = drops;
    }
  }
  return 0;
}
