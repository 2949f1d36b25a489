"""Entering network namespaces from Python 3.11 (os.setns arrived in 3.12)."""
import ctypes
import os

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class entered:
    """`with entered(path):` runs the block inside the network namespace at path
    (/var/run/netns/NAME) and comes back to the current one after it."""

    def __init__(self, path):
        self.path = path
        self.home = None

    def __enter__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            setns(fd)
        except OSError:
            os.close(self.home)
            raise
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        try:
            setns(self.home)
        finally:
            os.close(self.home)
        return False
