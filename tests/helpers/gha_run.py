#!/usr/bin/python3
# tests/helpers/gha_run.py — runs the `run:` steps of a GitHub Actions
# workflow job exactly as written, the way a runner would: each with
# `bash -e`, in order, in the working directory, with the job's and the
# step's env on top of the environment given, `${{ ... }}` expressions
# replaced from a table (an expression not in the table is an error, so a
# template that starts using a new one makes the test say so), and `if:`
# conditions of the forms the templates use (always(), hashFiles('F') != '',
# joined by &&; none means "only if every step so far succeeded").
# `uses:` steps are not run; they are listed as skipped.
#
# usage: gha_run.py WORKFLOW JOB EXPRS_JSON RESULT_JSON
#   EXPRS_JSON: {"github.base_ref": "main", ...}
#   RESULT_JSON: written: [{"name", "run", "rc" (null when not run), "skipped"}]
import json
import os
import re
import subprocess
import sys

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def substitute(text, exprs):
    def one(m):
        if m.group(1) not in exprs:
            sys.exit(f"gha_run: no value for the expression '{m.group(1)}'")
        return exprs[m.group(1)]
    return EXPR.sub(one, str(text))


def should_run(cond, failed):
    if cond is None:
        return not failed
    ok = True
    for part in (p.strip() for p in str(cond).split("&&")):
        if part == "always()":
            continue
        if part == "success()":
            ok = ok and not failed
            continue
        m = re.fullmatch(r"hashFiles\('([^']+)'\)\s*!=\s*''", part)
        if not m:
            sys.exit(f"gha_run: cannot evaluate the condition '{part}'")
        ok = ok and os.path.exists(m.group(1))
    if "always()" not in str(cond):
        ok = ok and not failed
    return ok


def main():
    workflow, job, exprs_file, result_file = sys.argv[1:5]
    with open(workflow) as f:
        wf = yaml.safe_load(f)
    with open(exprs_file) as f:
        exprs = json.load(f)
    j = wf["jobs"][job]
    env = dict(os.environ)
    job_env = {k: substitute(v, exprs) for k, v in (j.get("env") or {}).items()}
    overrides = json.loads(os.environ.get("GHA_ENV_OVERRIDES", "{}"))
    results, failed = [], False
    for step in j["steps"]:
        name = step.get("name") or step.get("uses") or step.get("run")
        if "run" not in step or not should_run(step.get("if"), failed):
            results.append({"name": name, "run": step.get("run"), "rc": None, "skipped": True})
            continue
        step_env = {k: substitute(v, exprs) for k, v in (step.get("env") or {}).items()}
        cmd = substitute(step["run"], exprs)
        rc = subprocess.run(["bash", "-e", "-c", cmd],
                            env={**env, **job_env, **step_env, **overrides}).returncode
        failed = failed or rc != 0
        results.append({"name": name, "run": cmd, "rc": rc, "skipped": False})
    with open(result_file, "w") as f:
        json.dump(results, f, indent=1)


main()
