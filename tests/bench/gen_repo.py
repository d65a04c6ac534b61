#!/usr/bin/env python3
"""tests/bench/gen_repo.py DIR N — a repository with N pull requests, made in
one `git fast-import` stream (fixtures/make-repo.sh makes realistic ones, but
at about a second per pull request; the benchmarks need thousands). main holds
50 source files; refs/pull/K/head changes one of them in a commit of its own."""
import subprocess
import sys


def blob(out, mark, text):
    data = text.encode()
    out.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen_repo.py DIR N")
    repo, n = sys.argv[1], int(sys.argv[2])
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    out = []
    files = 50
    for f in range(files):
        body = "".join("int f%d_%d(int x) { return x + %d; }\n" % (f, i, i) for i in range(40))
        blob(out, f + 1, body)
    who = b"Bench <bench@example.invalid> 1700000000 +0000"
    out.append(b"commit refs/heads/main\nmark :%d\ncommitter %s\ndata 5\nbase\n" % (files + 1, who))
    for f in range(files):
        out.append(b"M 100644 :%d src/mod%d.c\n" % (f + 1, f))
    out.append(b"\n")
    mark = files + 2
    for k in range(1, n + 1):
        f = k % files
        body = "".join("int f%d_%d(int x) { return x + %d; }\n" % (f, i, i + (k if i == 7 else 0))
                       for i in range(40))
        blob(out, mark, body)
        msg = b"Change %d" % k
        out.append(b"commit refs/pull/%d/head\nmark :%d\ncommitter %s\ndata %d\n%s\nfrom :%d\n"
                   b"M 100644 :%d src/mod%d.c\n\n" % (k, mark + 1, who, len(msg), msg, files + 1, mark, f))
        mark += 2
    subprocess.run(["git", "-C", repo, "fast-import", "--quiet"], input=b"".join(out), check=True)


if __name__ == "__main__":
    main()
