#!/usr/bin/env python3
"""tests/helpers/conformance.py — replay and compare recorded HTTP exchanges.

A recording (see shared/conformance/*/README.md) is a text file:

    ### REQUEST
    METHOD PATH
    <blank>
    BODY (absent for a GET)
    <blank>
    ### RESPONSE
    HTTP/1.1 STATUS REASON
    Header: value ...
    <blank>
    BODY as received (JSON, or SSE "data:" events)
    ### curl exit: N

Subcommands:
  request REC DIR        write DIR/method, DIR/path, DIR/request_body (as sent)
  split REC DIR          write the recorded response as DIR/status, DIR/headers,
                         DIR/body, as `curl -D headers -o body -w %{http_code}`
                         would (for the self-check: a recording must match itself)
  compare REC DIR        compare DIR/status, DIR/headers, DIR/body (a live answer)
                         with the recording; print every difference; exit 1 if any

What is compared: the status code; the Content-Type and Server headers; the
JSON shape of the body: the same keys at every level (none missing, none
extra) with the same JSON type (null, boolean, number, string, object, array;
an integer and a real are both "number"); an array empty in both or non-empty
in both, every item shaped like the recording's first item. For an SSE body:
the sequence of events by kind (role chunk, deltas, finish chunk, usage
chunk, error, [DONE]; a run of deltas counts as one), then each event's shape
against the recording's first event of its kind; a line that is neither a
"data:" event nor blank is a difference (a keep-alive comment the real server
does not send). Lines of the recording that are not events (a note where a
long stream was cut by hand) are skipped.

Compared by value, wherever they occur (they are what a client acts on):
finish_reason, object, model (the server's alias), n_ctx, and the "type" and
"code" of an error object. Everything else that changes per run (id,
created, timings, generated text, token counts) is compared by type only.
"""
import json
import os
import sys

VALUE_KEYS = {"finish_reason", "object", "model", "n_ctx"}
ERROR_VALUE_KEYS = {"type", "code"}


def read_recording(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    req, resp = text.split("### RESPONSE\n", 1)
    req = req.split("### REQUEST\n", 1)[1]
    first, _, rest = req.partition("\n")
    method, _, target = first.partition(" ")
    body = rest.strip("\n")
    resp = resp.rsplit("### curl exit", 1)[0]
    head, _, rbody = resp.partition("\n\n")
    lines = head.split("\n")
    status = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return {"method": method, "path": target, "body": body, "status": status,
            "headers": headers, "rbody": rbody.rstrip("\n") + "\n" if rbody.strip() else ""}


def read_live(d):
    with open(os.path.join(d, "status"), encoding="utf-8") as f:
        status = f.read().strip()
    headers = {}
    with open(os.path.join(d, "headers"), encoding="utf-8", errors="replace") as f:
        for line in f.read().replace("\r", "").split("\n")[1:]:
            k, sep, v = line.partition(":")
            if sep:
                headers[k.strip().lower()] = v.strip()
    with open(os.path.join(d, "body"), encoding="utf-8", errors="replace") as f:
        body = f.read().replace("\r", "")
    return {"status": status, "headers": headers, "rbody": body}


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def shape_diff(exp, got, path, out, in_error=False):
    te, tg = jtype(exp), jtype(got)
    if te != tg:
        out.append("%s: expected %s, got %s" % (path or "$", te, tg))
        return
    if te == "object":
        for k in exp:
            if k not in got:
                out.append("%s.%s: missing" % (path, k))
        for k in got:
            if k not in exp:
                out.append("%s.%s: not in the recording" % (path, k))
        for k in exp:
            if k not in got:
                continue
            sub = "%s.%s" % (path, k)
            by_value = k in VALUE_KEYS or (in_error and k in ERROR_VALUE_KEYS)
            same_type = jtype(exp[k]) == jtype(got[k])
            if by_value and same_type and jtype(exp[k]) not in ("object", "array") and exp[k] != got[k]:
                out.append("%s: expected %s, got %s" % (sub, json.dumps(exp[k]), json.dumps(got[k])))
            shape_diff(exp[k], got[k], sub, out, k == "error")
    elif te == "array":
        if bool(exp) != bool(got):
            out.append("%s: expected %s array, got %d items" % (path, "a non-empty" if exp else "an empty", len(got)))
            return
        for i, item in enumerate(got):
            shape_diff(exp[0], item, "%s[%d]" % (path, i), out)


def event_kind(ev):
    if ev == "[DONE]":
        return "done"
    if not isinstance(ev, dict):
        return "other"
    if "error" in ev:
        return "error"
    choices = ev.get("choices")
    if choices == []:
        return "usage"
    c = choices[0] if isinstance(choices, list) and choices else {}
    delta = c.get("delta") or {}
    if "role" in delta:
        return "role"
    return "finish" if c.get("finish_reason") is not None else "delta"


def sse_events(body, live, out):
    events = []
    for n, line in enumerate(body.split("\n"), 1):
        if line.startswith("data: "):
            data = line[6:]
            try:
                events.append("[DONE]" if data == "[DONE]" else json.loads(data))
            except ValueError:
                out.append("line %d: an event that is not JSON: %s" % (n, data[:80]))
        elif line and live:
            out.append("line %d: neither an event nor blank: %s" % (n, line[:80]))
    return events


def collapse(kinds):
    seq = []
    for k in kinds:
        k = "deltas" if k == "delta" else k
        if not (seq and seq[-1] == "deltas" and k == "deltas"):
            seq.append(k)
    return seq


def compare_sse(rec, live, out):
    exp = sse_events(rec["rbody"], False, out)
    got = sse_events(live["rbody"], True, out)
    se, sg = collapse(map(event_kind, exp)), collapse(map(event_kind, got))
    if se != sg:
        out.append("event sequence: expected %s, got %s" % (" ".join(se), " ".join(sg)))
        return
    first = {}
    for ev in exp:
        first.setdefault(event_kind(ev), ev)
    for i, ev in enumerate(got):
        shape_diff(first[event_kind(ev)], ev, "event[%d]" % i, out)


def compare(rec, live):
    out = []
    if rec["status"] != live["status"]:
        out.append("status: expected %s, got %s" % (rec["status"], live["status"]))
    for h in ("content-type", "server"):
        e, g = rec["headers"].get(h), live["headers"].get(h)
        if (e or "").lower() != (g or "").lower():
            out.append("header %s: expected %r, got %r" % (h, e, g))
    if rec["headers"].get("content-type", "").startswith("text/event-stream"):
        compare_sse(rec, live, out)
        return out
    try:
        exp = json.loads(rec["rbody"])
        got = json.loads(live["rbody"])
    except ValueError as e:
        out.append("body: not JSON (%s): %s" % (e, live["rbody"][:120]))
        return out
    shape_diff(exp, got, "", out)
    return out


def main(argv):
    if len(argv) != 4 or argv[1] not in ("request", "split", "compare"):
        sys.stderr.write("usage: conformance.py request|split|compare RECORDING DIR\n")
        return 2
    cmd, path, d = argv[1:]
    rec = read_recording(path)
    if cmd in ("request", "split"):
        os.makedirs(d, exist_ok=True)
        files = {"method": rec["method"], "path": rec["path"], "request_body": rec["body"]} if cmd == "request" else {
            "status": rec["status"] + "\n", "body": rec["rbody"],
            "headers": "HTTP/1.1 %s\n" % rec["status"] + "".join("%s: %s\n" % kv for kv in rec["headers"].items())}
        for name, text in files.items():
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        return 0
    diffs = compare(rec, read_live(d))
    for line in diffs:
        print("  " + line)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
