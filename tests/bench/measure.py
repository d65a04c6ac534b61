#!/usr/bin/env python3
"""tests/bench/measure.py STATS_URL -- COMMAND...: runs COMMAND and prints one
line "wall=S cpu=S maxrss_kb=K first_request=S" — wall and CPU time (user +
system) of the command, its peak resident set (getrusage of the child), and
the seconds from its start until the fixture server at STATS_URL had counted
a request beyond those it had at the start (-1 when none came). Measures,
asserts nothing."""
import json
import resource
import subprocess
import sys
import threading
import time
import urllib.request


def requests(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["requests"]


def main():
    url, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    base = requests(url)
    first = [-1.0]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def watch():
        while proc.poll() is None and first[0] < 0:
            if requests(url) > base:
                first[0] = time.monotonic() - t0
                return
            time.sleep(0.01)

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    proc.wait()
    wall = time.monotonic() - t0
    w.join(timeout=1)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("wall=%.3f cpu=%.3f maxrss_kb=%d first_request=%.3f rc=%d"
          % (wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, first[0], proc.returncode))


if __name__ == "__main__":
    main()
