#!/usr/bin/env python3
"""A rebinding DNS server for tests/adversarial/held_dns_rebinding.sh.

Listens on UDP 127.0.0.1:53 (in a network namespace of the test's own) and
answers A queries for NAME: FIRST on the first one, THEN on every later one,
with TTL 0; every other query gets an empty NOERROR answer. Appends one line per
A answer to LOG, and writes READY once listening.
Usage: held_dns_rebinding-dns.py NAME FIRST THEN LOG READY
"""
import socket
import struct
import sys

name, first, then, log, ready = sys.argv[1:6]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
open(ready, "w").close()
answered = 0


def qname(msg, i):
    labels = []
    while msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return ".".join(labels).lower(), i + 1


while True:
    msg, peer = sock.recvfrom(512)
    if len(msg) < 12:
        continue
    qid = msg[:2]
    qn, end = qname(msg, 12)
    qtype, _ = struct.unpack("!HH", msg[end:end + 4])
    question = msg[12:end + 4]
    answer = b""
    if qn == name and qtype == 1:
        addr = first if answered == 0 else then
        answered += 1
        answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(addr)
        with open(log, "a") as f:
            f.write(addr + "\n")
    header = qid + struct.pack("!HHHHH", 0x8180, 1, 1 if answer else 0, 0, 0)
    sock.sendto(header + question + answer, peer)
