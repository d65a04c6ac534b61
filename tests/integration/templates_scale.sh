#!/usr/bin/env bash
# The templates that run bulkhead at scale (README "At scale"), linted offline:
# - ci/templates/k8s-indexed-job.yaml: yamllint (strict, the templates'
#   .yamllint); each Job checked with python3-jsonschema against
#   fixtures/k8s/batch-v1-job.schema.json, a schema of the batch/v1 Job fields
#   the template uses written from the Kubernetes API reference (kubectl's
#   client dry-run is no offline check: it asks an API server for its API
#   groups first, so it is not used); the schema is shown to refuse a broken
#   Job; then the rules no schema says: an Indexed Job whose completions,
#   parallelism and BULKHEAD_SHARDS agree, `--shard auto` with a state per
#   index, a podFailurePolicy only with restartPolicy Never, every mount
#   naming a volume of its pod, a merge Job that merges every shard;
# - ci/templates/github-nightly-shards.yml: yamllint; every step runs or uses
#   something; the shard matrix lists 0..SHARDS-1 and each shard job runs
#   `--shard I/$SHARDS`; the merge job needs the shard jobs and merges.
# Then the shard pods' and the merge pod's commands, as the template writes
# them (paths moved into a temporary folder), run against fixture servers:
# 4 pods, then the merge pod, whose audit verify passes.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"
PY=/usr/bin/python3
K="$BH_SOURCE_DIR/ci/templates/k8s-indexed-job.yaml"
G="$BH_SOURCE_DIR/ci/templates/github-nightly-shards.yml"
S="$BH_SOURCE_DIR/fixtures/k8s/batch-v1-job.schema.json"

set +e
yamllint --strict -c "$BH_SOURCE_DIR/ci/templates/.yamllint" "$K" "$G" >"$T/lint.out" 2>&1
rc=$?
set -e
expect_eq "yamllint passes both templates" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$T/lint.out"

# ---- the Indexed Job ----------------------------------------------------------
cat >"$T/k8s.py" <<'PY'
import json, sys, yaml, jsonschema
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
schema = json.load(open(sys.argv[2]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
def say(ok, what):
    print(("ok - " if ok else "not ok - ") + what)
jobs = [d for d in docs if d.get("kind") == "Job"]
say(len(jobs) == 2, "the file holds two Jobs (shards and merge), got %d" % len(jobs))
for j in jobs:
    errs = sorted(v.iter_errors(j), key=lambda e: list(e.path))
    for e in errs:
        print("#   %s: %s" % ("/".join(map(str, e.path)), e.message))
    say(not errs, "Job '%s' is valid against the batch/v1 Job schema" % j["metadata"]["name"])
# The schema bites: a misspelt field, a lowercase enum value, no containers.
bad = json.loads(json.dumps(jobs[0]))
bad["spec"]["completionmode"] = bad["spec"].pop("completionMode")
bad2 = json.loads(json.dumps(jobs[0]))
bad2["spec"]["completionMode"] = "indexed"
bad3 = json.loads(json.dumps(jobs[0]))
bad3["spec"]["template"]["spec"]["containers"] = []
for b, what in ((bad, "a misspelt field"), (bad2, "a lowercase completionMode"), (bad3, "no container")):
    say(not v.is_valid(b), "the schema refuses a Job with %s" % what)
pvcs = {d["metadata"]["name"] for d in docs if d.get("kind") == "PersistentVolumeClaim"}
say(all(d["spec"]["accessModes"] == ["ReadWriteMany"] for d in docs
        if d.get("kind") == "PersistentVolumeClaim"), "the shared volume is ReadWriteMany")
def env(c, name):
    return next((e.get("value") for e in c.get("env", []) if e["name"] == name), None)
def main(j):
    return next(c for c in j["spec"]["template"]["spec"]["containers"] if c["name"] == "bulkhead")
shards, merge = jobs
sp = shards["spec"]
n = sp.get("completions")
say(sp.get("completionMode") == "Indexed", "the shard Job is an Indexed Job")
say(n == sp.get("parallelism") and n >= 2, "its completions and parallelism agree (%s)" % n)
say(env(main(shards), "BULKHEAD_SHARDS") == str(n), "BULKHEAD_SHARDS is its completions")
say(env(main(merge), "BULKHEAD_SHARDS") == str(n), "the merge Job's BULKHEAD_SHARDS too")
args = " ".join(main(shards)["args"])
say("--shard auto" in args and '--state "/shards/shard-$JOB_COMPLETION_INDEX"' in args,
    "each pod runs --shard auto with a state per index")
say("bulkhead merge --into /shards/merged" in " ".join(main(merge)["args"]),
    "the merge Job merges the shards' states")
for j in jobs:
    ps = j["spec"]["template"]["spec"]
    name = j["metadata"]["name"]
    if "podFailurePolicy" in j["spec"]:
        say(ps.get("restartPolicy") == "Never", "%s: a podFailurePolicy needs restartPolicy Never" % name)
        names = {r.get("onExitCodes", {}).get("containerName") for r in j["spec"]["podFailurePolicy"]["rules"]}
        say(names <= {c["name"] for c in ps["containers"]} | {None},
            "%s: the policy names a container of the pod" % name)
    vols = {x["name"] for x in ps.get("volumes", [])}
    mounts = {m["name"] for c in ps["containers"] + ps.get("initContainers", []) for m in c.get("volumeMounts", [])}
    say(mounts <= vols, "%s: every mount names a volume of the pod (%s)" % (name, sorted(mounts - vols)))
    claims = {x["persistentVolumeClaim"]["claimName"] for x in ps.get("volumes", []) if "persistentVolumeClaim" in x}
    say(claims <= pvcs, "%s: its claims are the file's PersistentVolumeClaims" % name)
PY
$PY "$T/k8s.py" "$K" "$S" >"$T/k8s.out" 2>&1 || echo "not ok - the Job check ran to its end" >>"$T/k8s.out"
cat "$T/k8s.out"
expect_eq "every check of the Indexed Job passes" 0 "$(grep -c '^not ok' "$T/k8s.out" || true)"
expect "and there were checks" grep -q '^ok - the shard Job is an Indexed Job' "$T/k8s.out"

# ---- the GitHub Actions matrix ---------------------------------------------------
cat >"$T/gha.py" <<'PY'
import sys, yaml
w = yaml.safe_load(open(sys.argv[1]))
def say(ok, what):
    print(("ok - " if ok else "not ok - ") + what)
jobs = w["jobs"]
n = int(w["env"]["SHARDS"])
steps = [s for j in jobs.values() for s in j["steps"]]
say(all(("run" in s) != ("uses" in s) for s in steps), "every step either runs or uses something")
say(all(isinstance(s.get("run", ""), str) for s in steps), "every run is a string")
say(jobs["shard"]["strategy"]["matrix"]["shard"] == list(range(n)), "the matrix lists shards 0..%d" % (n - 1))
say(jobs["shard"]["strategy"].get("fail-fast") is False, "one shard failing does not cancel the others")
runs = " ".join(s.get("run", "") for s in jobs["shard"]["steps"])
say("--shard ${{ matrix.shard }}/$SHARDS" in runs, "each shard job runs --shard I/$SHARDS")
needs = jobs["merge"]["needs"]
say("shard" in (needs if isinstance(needs, list) else [needs]), "the merge job needs the shard jobs")
mruns = " ".join(s.get("run", "") for s in jobs["merge"]["steps"])
say("bulkhead merge --into merged shards/bulkhead-shard-*" in mruns, "the merge job merges every shard's state")
say("bulkhead audit verify --state merged" in mruns, "and verifies the merged audit")
ups = [s["with"]["name"] for s in jobs["shard"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
say(ups == ["bulkhead-shard-${{ matrix.shard }}"], "each shard uploads its state under its own name")
PY
$PY "$T/gha.py" "$G" >"$T/gha.out" 2>&1 || echo "not ok - the workflow check ran to its end" >>"$T/gha.out"
cat "$T/gha.out"
expect_eq "every check of the shard workflow passes" 0 "$(grep -c '^not ok' "$T/gha.out" || true)"
expect "and there were checks" grep -q '^ok - the matrix lists shards' "$T/gha.out"

# ---- the pods' commands, run here ---------------------------------------------------
# A container's command line as the template writes it, with its paths moved
# under $T and the image's bulkhead the one built here.
make_repo "$T/checkout/repo" --prs 6
cp -r "$BH_SOURCE_DIR/pipelines" "$T/checkout/repo/pipelines"
mkdir -p "$T/input" "$T/shards" "$T/bin"
git -C "$T/checkout/repo" rev-parse main >"$T/input/base"
ln -s "$BULKHEAD" "$T/bin/bulkhead"
start_fake local
start_fake cloud
cat >"$T/cmd.py" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "Job"]
job = next(d for d in docs if d["metadata"]["name"] == sys.argv[2])
c = next(c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == "bulkhead")
t = sys.argv[3]
print(c["args"][0].replace("/checkout/", t + "/checkout/").replace("/shards", t + "/shards")
      .replace("/input/", t + "/input/"))
PY
# The pull requests as `gh pr list --json` lists them, made from the refs.
for ref in $(git -C "$T/checkout/repo" for-each-ref --format='%(refname)' 'refs/pull/*/head'); do
  num=${ref#refs/pull/}; num=${num%/head}
  jq -n --argjson n "$num" --arg oid "$(git -C "$T/checkout/repo" rev-parse "$ref")" \
    '{number: $n, title: "PR \($n)", body: "", author: {login: "a"}, labels: [], isDraft: false,
      headRefOid: $oid, baseRefName: "main", headRefName: "pr-\($n)"}'
done | jq -s . >"$T/input/prs.json"
$PY "$T/cmd.py" "$K" bulkhead-shards "$T" >"$T/shard.sh"
$PY "$T/cmd.py" "$K" bulkhead-merge "$T" >"$T/merge.sh"
export PATH="$T/bin:$PATH" BULKHEAD_LOCAL_URL=$local_URL BULKHEAD_CLOUD_URL=$cloud_URL
export BULKHEAD_SHARDS=4 BULKHEAD_CLEARANCE=internal
for i in 0 1 2 3; do
  set +e
  JOB_COMPLETION_INDEX=$i sh -c "$(cat "$T/shard.sh")" 2>"$T/pod$i.err"
  rc=$?
  set -e
  expect_eq "shard pod $i's command exits 0" 0 "$rc"
  expect "and marks its shard done" [ -e "$T/shards/shard-$i.done" ]
done
set +e
sh -ec "$(cat "$T/merge.sh")" >"$T/merge-pod.out" 2>"$T/merge-pod.err"
rc=$?
set -e
expect_eq "the merge pod's command exits 0" 0 "$rc"
expect_contains "it merged the 4 shards" "$T/merge-pod.err" "merged 4 shard states into"
expect_contains "its audit verify passed" "$T/merge-pod.out" "chain intact"
expect "it wrote the Markdown report" grep -q "refs/pull/" "$T/shards/nightly-review.md"
expect_eq "the merged state holds every pull request's tasks" 18 \
  "$("$BULKHEAD" report --state "$T/shards/merged" --format jsonl | jq -s 'map(select(.state == "done")) | length')"
finish
