#!/usr/bin/python3
"""Writes sysctls inside lab network namespaces: /proc/sys/net belongs to the
namespace of the process that opens it. One process for every namespace of a
lab, instead of an nsenter per namespace.

argv[1] is JSON: [{"netns": "/var/run/netns/NAME", "values": [["net/ipv4/ip_forward", "1"], ...]}, ...]
"""
import json
import sys

from netns import entered


def main():
    for item in json.loads(sys.argv[1]):
        with entered(item["netns"]):
            for key, value in item["values"]:
                try:
                    with open(f"/proc/sys/{key}", "w") as f:
                        f.write(f"{value}\n")
                except OSError as e:
                    sys.exit(f"sysctl: {item['netns']}: {key}={value}: {e.strerror}")


if __name__ == "__main__":
    main()
