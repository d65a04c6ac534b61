/* tests/unit/test_label.c — labels of actual values (policy/label.c) and the
 * per-item plan built on them (policy/plan.c), over hand-built pipelines and
 * items: path rules per file of a diff, detector hits placed in their file
 * with the right line, allowlists, custom regexes, unknown means top; then
 * on_sensitive (reroute, skip, fail), declassify, for_each over files and
 * batch joins as plan predicts them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "detect/detect.h"
#include "policy/label.h"
#include "policy/plan.h"
#include "policy/policy.h"
#include "sources/src_git.h"
#include "util/bh_util.h"

enum { PUB, INT, CONF, RESTR };

static char *labels[] = {"public", "internal", "confidential", "restricted"};
/* pr.ref last: item keys are labelled like it (a batch prompt names items). */
static char *fields[] = {"pr.title", "pr.files", "pr.diff", "pr.ref"};

/* The AWS example key format the detector knows, split so that this file
 * does not trip secret scanners. */
#define AWS_KEY                                                                                    \
    "AK"                                                                                           \
    "IAQW7B3PDKHX4PY8GP"

struct fx {
    struct pipeline p;
    int field_labels[4];
    struct pipe_rule rules[2];
    struct pipe_stage st[6];
    struct pipe_endpoint ep[1];
    size_t order[6];
    char *reads[6][3];
    size_t deps[6][3];
    struct pol_labeller *lab;
};

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    f->p.labels = labels;
    f->p.n_labels = 4;
    f->p.name = "t";
    f->p.file = "t.json";
    f->p.source.kind = "git";
    f->p.source.label = CONF;
    f->p.source.fields = fields;
    f->p.source.n_fields = 4;
    f->field_labels[0] = INT;
    f->field_labels[1] = INT;
    f->field_labels[2] = CONF;
    f->field_labels[3] = INT;
    f->p.source.field_labels = f->field_labels;
    f->rules[0] = (struct pipe_rule){"docs/**", INT, 1, 1};
    f->rules[1] = (struct pipe_rule){"**/*.pem", RESTR, 2, 1};
    f->p.source.rules = f->rules;
    f->p.source.n_rules = 2;
    f->p.endpoints = f->ep;
    f->p.n_endpoints = 1;
    f->p.stages = f->st;
}

/* Adds stage `name` reading the NULL-terminated reads, after deps. */
static size_t fx_stage(struct fx *f, char *name, char **reads, const size_t *deps, size_t n_deps)
{
    size_t i = f->p.n_stages++;
    struct pipe_stage *s = &f->st[i];
    s->name = name;
    s->model = "m";
    s->clearance = -1;
    s->reroute = -1;
    s->for_each_stage = -1;
    while (reads[s->n_reads])
        f->reads[i][s->n_reads] = reads[s->n_reads], s->n_reads++;
    s->reads = f->reads[i];
    for (size_t k = 0; k < n_deps; k++)
        f->deps[i][k] = deps[k];
    s->deps = f->deps[i];
    s->n_deps = n_deps;
    f->order[i] = i;
    f->p.order = f->order;
    return i;
}

static void fx_labeller(struct fx *f)
{
    assert_int_equal(pol_labeller_new(&f->lab, &f->p, NULL), 0);
}

/* A diff over files, parts as a source makes them. */
struct diff {
    char text[2048];
    struct src_part parts[4];
    size_t n;
};

static void diff_add(struct diff *d, char *path, const char *body)
{
    size_t off = strlen(d->text);
    snprintf(d->text + off, sizeof(d->text) - off, "diff --git a/%s b/%s\n%s", path, path, body);
    d->parts[d->n++] =
        (struct src_part){.path = path, .offset = off, .length = strlen(d->text) - off};
}

struct item {
    struct src_item it;
    struct src_field f[3];
    struct diff d;
    char files[512];
};

static void item_make(struct item *x, char *key, char *title, struct diff *d)
{
    memset(x, 0, sizeof(*x));
    x->d = *d;
    x->files[0] = '\0';
    for (size_t i = 0; i < d->n; i++) {
        strcat(x->files, "M\t");
        strcat(x->files, d->parts[i].path);
        strcat(x->files, i + 1 < d->n ? "\n" : "");
    }
    x->f[0] = (struct src_field){"pr.title", title, strlen(title), NULL, NULL, 0};
    x->f[1] = (struct src_field){"pr.files", x->files, strlen(x->files), NULL, NULL, 0};
    x->f[2] = (struct src_field){"pr.diff", x->d.text, strlen(x->d.text), NULL, x->d.parts, x->d.n};
    x->it = (struct src_item){.key = key, .version = "v", .fields = x->f, .n_fields = 3};
}

static int field_of(const struct pol_value *v, enum pol_lbl_by by, const char *path)
{
    for (size_t i = 0; i < v->n_reasons; i++)
        if (v->reasons[i].by == by &&
            (!path || (v->reasons[i].path && strcmp(v->reasons[i].path, path) == 0)))
            return (int)i;
    return -1;
}

/* ---- labels ---- */

static void rules_label_each_file_and_may_lower(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_labeller(&f);
    struct diff docs = {0}, mixed = {0};
    diff_add(&docs, "docs/usage.md", "+more words\n");
    diff_add(&mixed, "docs/usage.md", "+more words\n");
    diff_add(&mixed, "src/main.c", "+int x;\n");
    diff_add(&mixed, "deploy/staging.pem", "+not really a key\n");
    struct src_field fd = {"pr.diff", docs.text, strlen(docs.text), NULL, docs.parts, docs.n};
    struct pol_value v;
    assert_int_equal(pol_label_field(f.lab, &fd, &v), 0);
    assert_int_equal(v.label, INT); /* docs only: the rule lowers confidential to internal */
    assert_int_equal(v.declared, INT);
    assert_true(field_of(&v, POL_LBL_RULE, "docs/usage.md") >= 0);
    pol_value_release(&v);
    struct src_field fm = {"pr.diff", mixed.text, strlen(mixed.text), NULL, mixed.parts, mixed.n};
    assert_int_equal(pol_label_field(f.lab, &fm, &v), 0);
    assert_int_equal(v.label, RESTR); /* the .pem file decides */
    int r = field_of(&v, POL_LBL_RULE, "deploy/staging.pem");
    assert_true(r >= 0);
    assert_string_equal(v.reasons[r].what, "**/*.pem");
    assert_int_equal(field_of(&v, POL_LBL_RULE, "src/main.c"), -1); /* no rule: declared */
    pol_value_release(&v);
    /* Rules are for contents: a title that names a .pem file keeps its label. */
    struct src_part tp = {.path = "deploy/staging.pem", .offset = 0, .length = 5};
    struct src_field ft = {"pr.title", "title", 5, NULL, &tp, 1};
    assert_int_equal(pol_label_field(f.lab, &ft, &v), 0);
    assert_int_equal(v.label, INT);
    pol_value_release(&v);
    pol_labeller_free(f.lab);
}

static void detector_hits_are_placed_in_their_file_with_its_line(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_labeller(&f);
    struct diff d = {0};
    diff_add(&d, "docs/a.md", "+one\n+two\n+three\n");
    diff_add(&d, "src/cfg.py", "+x = 1\n+key = \"" AWS_KEY "\"\n");
    struct src_field fd = {"pr.diff", d.text, strlen(d.text), NULL, d.parts, d.n};
    struct pol_value v;
    assert_int_equal(pol_label_field(f.lab, &fd, &v), 0);
    assert_int_equal(v.declared, CONF);
    assert_int_equal(v.label, RESTR);
    assert_true(v.secret);
    int r = field_of(&v, POL_LBL_DETECTOR, "src/cfg.py");
    assert_true(r >= 0);
    assert_string_equal(v.reasons[r].what, "aws-access-key");
    assert_int_equal(v.reasons[r].line, 3); /* header, "+x = 1", then the key */
    char buf[256];
    pol_reason_format(&f.p, &v.reasons[r], buf, sizeof(buf));
    assert_string_equal(buf,
                        "detector aws-access-key (restricted) at line 3 of the diff of src/cfg.py");
    assert_null(strstr(buf, "AKIA")); /* never the matched text */
    pol_value_release(&v);
    pol_labeller_free(f.lab);
}

static void allowlists_drop_hits_by_path_and_by_value(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *allow_paths[] = {"tests/fixtures/**"};
    char *allow_values[] = {AWS_KEY};
    struct diff d = {0};
    diff_add(&d, "tests/fixtures/keys.txt", "+jane.roe@acme-corp.com\n");
    diff_add(&d, "src/a.c", "+/* " AWS_KEY " */\n");
    struct src_field fd = {"pr.diff", d.text, strlen(d.text), NULL, d.parts, d.n};
    struct pol_value v;
    fx_labeller(&f);
    pol_label_field(f.lab, &fd, &v);
    assert_int_equal(v.label, RESTR); /* without allowlists both count */
    pol_value_release(&v);
    pol_labeller_free(f.lab);
    f.p.source.allow_paths = allow_paths;
    f.p.source.n_allow_paths = 1;
    f.p.source.allow_values = allow_values;
    f.p.source.n_allow_values = 1;
    fx_labeller(&f);
    pol_label_field(f.lab, &fd, &v);
    assert_int_equal(v.label, CONF);
    assert_int_equal(field_of(&v, POL_LBL_DETECTOR, NULL), -1);
    pol_value_release(&v);
    pol_labeller_free(f.lab);
}

static void detector_selection_and_custom_regexes(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *only_email[] = {"email"};
    struct pipe_custom_detector ticket = {"ticket", "TICKET-[0-9]{3,}", RESTR};
    f.p.source.detectors = only_email;
    f.p.source.n_detectors = 1;
    f.p.source.detectors_set = 1;
    f.p.source.custom = &ticket;
    f.p.source.n_custom = 1;
    fx_labeller(&f);
    const char *text = "fix " AWS_KEY "\nsee TICKET-12 and\nTICKET-4711 here";
    struct pol_value v;
    pol_label_value(f.lab, "pr.title", PUB, text, strlen(text), NULL, 0, NULL, &v);
    assert_int_equal(v.label, RESTR); /* the ticket, not the key: aws is not selected */
    assert_int_equal(v.n_reasons, 1);
    assert_string_equal(v.reasons[0].what, "ticket");
    assert_int_equal(v.reasons[0].line, 3);
    pol_value_release(&v);
    pol_labeller_free(f.lab);
    f.p.source.n_detectors = 0; /* "detectors": [] */
    f.p.source.n_custom = 0;
    fx_labeller(&f);
    pol_label_value(f.lab, "pr.title", PUB, text, strlen(text), NULL, 0, NULL, &v);
    assert_int_equal(v.label, PUB);
    pol_value_release(&v);
    pol_labeller_free(f.lab);
}

static void unread_and_unscannable_values_are_top(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_labeller(&f);
    struct src_field none = {"pr.diff", NULL, 0, "the diff is over the 4 MiB cap", NULL, 0};
    struct pol_value v;
    pol_label_field(f.lab, &none, &v);
    assert_int_equal(v.label, RESTR);
    assert_int_equal(v.reasons[0].by, POL_LBL_UNSCANNED);
    assert_string_equal(v.reasons[0].what, "the diff is over the 4 MiB cap");
    pol_value_release(&v);
    size_t big = DET_MAX_BYTES;
    char *huge = calloc(1, big + 2);
    memset(huge, 'a', big + 1);
    pol_label_value(f.lab, "pr.title", PUB, huge, big + 1, NULL, 0, NULL, &v);
    assert_int_equal(v.label, RESTR);
    assert_int_equal(v.reasons[0].by, POL_LBL_UNSCANNED);
    pol_value_release(&v);
    free(huge);
    pol_labeller_free(f.lab);
}

/* ---- plans ---- */

/* plan (cloud, internal) reads the diff and reroutes to plan-local (local,
 * restricted, standby); review (local) reads the diff; summarize (cloud,
 * internal) reads review.output, which declassifies to internal. */
static void reroute_fx(struct fx *f, int *clr)
{
    fx_init(f);
    char *plan_reads[] = {"pr.title", "pr.diff", NULL};
    char *review_reads[] = {"pr.diff", "plan.output", NULL};
    char *sum_reads[] = {"review.output", NULL};
    size_t d0[] = {0}, d2[] = {2};
    fx_stage(f, "plan", plan_reads, NULL, 0);
    fx_stage(f, "plan-local", plan_reads, NULL, 0);
    fx_stage(f, "review", review_reads, d0, 1);
    fx_stage(f, "summarize", sum_reads, d2, 1);
    f->st[0].on_sensitive = PIPE_ONS_REROUTE;
    f->st[0].reroute = 1;
    f->st[1].standby = 1;
    f->st[2].declassify = (struct pipe_declassify){.enabled = 1, .to = INT};
    clr[0] = INT, clr[1] = RESTR, clr[2] = RESTR, clr[3] = INT;
    fx_labeller(f);
}

static void plan_reroutes_only_the_items_above_the_clearance(void **state)
{
    (void)state;
    struct fx f;
    int clr[4];
    reroute_fx(&f, clr);
    struct diff docs = {0}, pem = {0};
    diff_add(&docs, "docs/usage.md", "+words\n");
    diff_add(&pem, "deploy/staging.pem", "+data\n");
    struct item a, b;
    item_make(&a, "refs/pull/2/head", "docs", &docs);
    item_make(&b, "refs/pull/3/head", "pem", &pem);
    struct pol_item_plan pa, pb;
    pol_plan_item(f.lab, clr, &a.it, &pa);
    pol_plan_item(f.lab, clr, &b.it, &pb);
    assert_int_equal(pa.n_tasks, 3); /* plan-local is standby: not a task of its own */
    assert_int_equal(pa.tasks[0].stage, 0);
    assert_int_equal(pa.tasks[0].label, INT); /* docs-only: the planner input is lower */
    assert_int_equal(pa.tasks[0].decision, POL_ALLOW);
    assert_int_equal(pb.tasks[0].label, RESTR);
    assert_int_equal(pb.tasks[0].decision, POL_REROUTE);
    assert_int_equal(pb.tasks[0].ran, 1);
    assert_int_equal(pb.outputs[0], RESTR); /* what plan-local wrote */
    assert_int_equal(pb.tasks[1].stage, 2);
    assert_int_equal(pb.tasks[1].label, RESTR); /* the reviewer reads the .pem */
    assert_int_equal(pb.tasks[1].decision, POL_ALLOW);
    assert_true(pb.tasks[1].declassified);
    assert_int_equal(pb.tasks[1].output, INT);
    assert_int_equal(pb.tasks[2].label, INT); /* the declassified review goes to the cloud */
    assert_int_equal(pb.tasks[2].decision, POL_ALLOW);
    pol_item_plan_release(&pa);
    pol_item_plan_release(&pb);
    pol_labeller_free(f.lab);
}

static void plan_skip_withholds_dependants_and_fail_refuses(void **state)
{
    (void)state;
    struct fx f;
    int clr[4];
    reroute_fx(&f, clr);
    struct diff pem = {0};
    diff_add(&pem, "deploy/staging.pem", "+data\n");
    struct item b;
    item_make(&b, "refs/pull/3/head", "pem", &pem);
    struct pol_item_plan pb;
    f.st[0].on_sensitive = PIPE_ONS_SKIP;
    pol_plan_item(f.lab, clr, &b.it, &pb);
    assert_int_equal(pb.tasks[0].decision, POL_SKIP);
    assert_int_equal(pb.outputs[0], -1);
    assert_int_equal(pb.tasks[1].decision, POL_WITHHELD);
    assert_non_null(strstr(pb.tasks[1].why, "plan"));
    assert_int_equal(pb.tasks[2].decision, POL_WITHHELD);
    pol_item_plan_release(&pb);
    f.st[0].on_sensitive = PIPE_ONS_FAIL;
    pol_plan_item(f.lab, clr, &b.it, &pb);
    assert_int_equal(pb.tasks[0].decision, POL_REFUSE);
    assert_non_null(strstr(pb.tasks[0].why, "pr.diff is restricted"));
    pol_item_plan_release(&pb);
    /* A reroute target that cannot take it either is a refusal too. */
    f.st[0].on_sensitive = PIPE_ONS_REROUTE;
    clr[1] = CONF;
    pol_plan_item(f.lab, clr, &b.it, &pb);
    assert_int_equal(pb.tasks[0].decision, POL_REFUSE);
    assert_non_null(strstr(pb.tasks[0].why, "plan-local"));
    pol_item_plan_release(&pb);
    pol_labeller_free(f.lab);
}

static void plan_for_each_file_labels_each_part_and_batch_joins(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *per_file[] = {"each.path", "each.diff", NULL};
    char *digest[] = {"files.output", NULL};
    size_t d0[] = {0};
    fx_stage(&f, "files", per_file, NULL, 0);
    fx_stage(&f, "digest", digest, d0, 1);
    f.st[0].for_each = "pr.files";
    f.st[1].scope = PIPE_SCOPE_BATCH;
    int clr[2] = {RESTR, CONF};
    fx_labeller(&f);
    struct diff d = {0}, e = {0};
    diff_add(&d, "docs/a.md", "+a\n");
    diff_add(&d, "src/b.c", "+b\n");
    diff_add(&d, "k/c.pem", "+c\n");
    diff_add(&e, "docs/z.md", "+z\n");
    struct item a, b;
    item_make(&a, "1", "t", &d);
    item_make(&b, "2", "t", &e);
    struct pol_item_plan pl[2];
    pol_plan_item(f.lab, clr, &a.it, &pl[0]);
    pol_plan_item(f.lab, clr, &b.it, &pl[1]);
    assert_int_equal(pl[0].n_tasks, 3);
    assert_string_equal(pl[0].tasks[0].element, "docs/a.md");
    assert_int_equal(pl[0].tasks[0].label, INT);
    assert_string_equal(pl[0].tasks[1].element, "src/b.c");
    assert_int_equal(pl[0].tasks[1].label, CONF);
    assert_string_equal(pl[0].tasks[2].element, "k/c.pem");
    assert_int_equal(pl[0].tasks[2].label, RESTR);
    assert_int_equal(pl[0].outputs[0], RESTR); /* the stage's output joins its elements' */
    assert_int_equal(pl[1].outputs[0], INT);
    struct pol_task_plan bt[2];
    size_t nb = 0;
    pol_plan_batch(f.lab, clr, pl, 2, bt, &nb);
    assert_int_equal(nb, 1);
    assert_int_equal(bt[0].stage, 1);
    assert_int_equal(bt[0].label, RESTR); /* the join over both items */
    assert_int_equal(bt[0].decision, POL_REFUSE);
    pol_plan_batch(f.lab, clr, &pl[1], 1, bt, &nb); /* the docs item alone */
    assert_int_equal(bt[0].label, INT);
    assert_int_equal(bt[0].decision, POL_ALLOW);
    pol_item_plan_release(&pl[0]);
    pol_item_plan_release(&pl[1]);
    pol_labeller_free(f.lab);
}

/* An item's key is labelled like pr.ref: declared internal here, raised by a
 * detector over the key's text; a kind without a key field: top. A batch
 * stage reading a per-item value joins the keys of the items it reads. */
static void item_keys_are_labelled_like_their_field_and_batch_joins_them(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *title[] = {"pr.title", NULL};
    char *sums[] = {"s.output", NULL};
    size_t d0[] = {0};
    fx_stage(&f, "s", title, NULL, 0);
    fx_stage(&f, "digest", sums, d0, 1);
    f.st[1].scope = PIPE_SCOPE_BATCH;
    int clr[2] = {INT, INT};
    fx_labeller(&f);
    struct diff d = {0};
    diff_add(&d, "docs/a.md", "+a\n");
    struct item a, b;
    item_make(&a, "refs/pull/1/head", "t", &d);
    item_make(&b, "refs/heads/" AWS_KEY "/fix", "t", &d);
    struct pol_value v;
    assert_int_equal(pol_label_key(f.lab, &a.it, &v), 0);
    assert_int_equal(v.label, INT);
    pol_value_release(&v);
    assert_int_equal(pol_label_key(f.lab, &b.it, &v), 0);
    assert_int_equal(v.label, RESTR);
    assert_true(v.secret);
    pol_value_release(&v);
    struct pol_item_plan pl[2];
    pol_plan_item(f.lab, clr, &a.it, &pl[0]);
    pol_plan_item(f.lab, clr, &b.it, &pl[1]);
    assert_int_equal(pl[1].tasks[0].decision, POL_ALLOW); /* s reads only the title */
    struct pol_task_plan bt[2];
    size_t nb = 0;
    pol_plan_batch(f.lab, clr, pl, 1, bt, &nb);
    assert_int_equal(bt[0].label, INT);
    pol_plan_batch(f.lab, clr, pl, 2, bt, &nb);
    assert_int_equal(bt[0].label, RESTR);
    assert_int_equal(bt[0].decision, POL_REFUSE);
    f.p.source.kind = "svn"; /* no key field: unknown means top */
    assert_int_equal(pol_label_key(f.lab, &a.it, &v), 0);
    assert_int_equal(v.label, RESTR);
    pol_value_release(&v);
    pol_item_plan_release(&pl[0]);
    pol_item_plan_release(&pl[1]);
    pol_labeller_free(f.lab);
}

/* A template's words are scanned; placeholders are not, and two literals
 * around a placeholder do not make one key. */
static void template_text_is_labelled_by_the_detectors(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_labeller(&f);
    struct pipe_tpl_part clean[] = {
        {0, "Review {{", 1, 1}, {1, "pr.diff", 1, 8}, {0, " briefly.", 1, 19}};
    struct pipe_tpl_part keyed[] = {{0, "Use " AWS_KEY " to look.", 1, 1}};
    struct pipe_tpl_part split[] = {
        {0, "AKIA", 1, 1}, {1, "pr.title", 1, 5}, {0, "QW7B3PDKHX4PY8GP", 1, 17}};
    struct pipe_tpl t = {"t.md", clean, 3}, none = {NULL, NULL, 0};
    struct pol_value v;
    assert_int_equal(pol_label_template(f.lab, &t, &v), 0);
    assert_int_equal(v.label, PUB);
    pol_value_release(&v);
    t.parts = keyed;
    t.n_parts = 1;
    pol_label_template(f.lab, &t, &v);
    assert_int_equal(v.label, RESTR);
    pol_value_release(&v);
    t.parts = split;
    t.n_parts = 3;
    pol_label_template(f.lab, &t, &v);
    assert_int_equal(v.label, PUB);
    pol_value_release(&v);
    pol_label_template(f.lab, &none, &v); /* no system message */
    assert_int_equal(v.label, PUB);
    pol_value_release(&v);
    pol_labeller_free(f.lab);
}

/* A part that is a rename or copy is about both paths: each path gives its
 * rule's label, else the declared one, and the part gets the highest. */
static void rename_parts_are_labelled_by_the_join_over_both_paths(void **state)
{
    (void)state;
    static const struct {
        char *path, *old;
        int label;
        enum pol_lbl_by by;
        const char *decider, *reason;
    } cases[] = {
        {"docs/notes.md", "deploy/prod.pem", RESTR, POL_LBL_RULE, "deploy/prod.pem",
         "rule \"**/*.pem\" (restricted) for deploy/prod.pem"},
        {"deploy/new.pem", "docs/x.md", RESTR, POL_LBL_RULE, "deploy/new.pem",
         "rule \"**/*.pem\" (restricted) for deploy/new.pem"},
        {"docs/x.c", "src/x.c", CONF, POL_LBL_DECLARED, "src/x.c",
         "declared confidential for src/x.c, which the file was renamed or copied from"},
        {"docs/b.md", "docs/a.md", INT, POL_LBL_RULE, "docs/b.md",
         "rule \"docs/**\" (internal) for docs/b.md"},
    };
    struct fx f;
    fx_init(&f);
    fx_labeller(&f);
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct diff d = {0};
        diff_add(&d, cases[i].path, "-a removed line\n");
        d.parts[0].old_path = cases[i].old;
        struct src_field fd = {"pr.diff", d.text, strlen(d.text), NULL, d.parts, d.n};
        struct pol_value v;
        char buf[256];
        assert_int_equal(pol_label_field(f.lab, &fd, &v), 0);
        assert_int_equal(v.label, cases[i].label);
        assert_int_equal(v.declared, cases[i].label);
        assert_int_equal(v.n_reasons, 1); /* the path that decided, only */
        assert_int_equal(v.reasons[0].by, cases[i].by);
        assert_string_equal(v.reasons[0].path, cases[i].decider);
        pol_reason_format(&f.p, &v.reasons[0], buf, sizeof(buf));
        assert_string_equal(buf, cases[i].reason);
        pol_value_release(&v);
    }
    pol_labeller_free(f.lab);
}

/* The whole files behind a part that shows only hunks: a key outside every
 * hunk raises the part; files that could not be read make it top. */
static void whole_files_are_scanned_and_unread_ones_are_top(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *allow_paths[] = {"tests/fixtures/**"};
    f.p.source.allow_paths = allow_paths;
    f.p.source.n_allow_paths = 1;
    fx_labeller(&f);
    char old_text[] = "# ops\n\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                      "-----END PRIVATE KEY-----\nRotate yearly.\n";
    char new_text[] = "# ops\n\nRotate quarterly.\n";
    struct src_whole w = {old_text, new_text, strlen(old_text), strlen(new_text), NULL};
    struct diff d = {0};
    diff_add(&d, "docs/ops.md", "-Rotate yearly.\n+Rotate quarterly.\n");
    d.parts[0].whole = &w;
    struct src_field fd = {"pr.diff", d.text, strlen(d.text), NULL, d.parts, d.n};
    struct pol_value v;
    char buf[256];
    pol_label_field(f.lab, &fd, &v);
    assert_int_equal(v.declared, INT); /* the docs rule */
    assert_int_equal(v.label, RESTR);
    assert_true(v.secret);
    int r = field_of(&v, POL_LBL_DETECTOR, "docs/ops.md");
    assert_true(r >= 0);
    assert_int_equal(v.reasons[r].line, 3);
    assert_int_equal(v.reasons[r].in_diff, POL_IN_OLD);
    pol_reason_format(&f.p, &v.reasons[r], buf, sizeof(buf));
    assert_string_equal(buf, "detector private-key (restricted) at line 3 of docs/ops.md before "
                             "the change (the whole file)");
    pol_value_release(&v);
    /* A rename: the old file's hits are about the old path. */
    d.parts[0].old_path = "ops/keys.md";
    pol_label_field(f.lab, &fd, &v);
    assert_int_equal(v.label, RESTR);
    assert_true(field_of(&v, POL_LBL_DETECTOR, "ops/keys.md") >= 0);
    pol_value_release(&v);
    /* allow.paths exempt a whole file by its own path... */
    struct diff fxd = {0};
    diff_add(&fxd, "tests/fixtures/ops.md", "-Rotate yearly.\n+Rotate quarterly.\n");
    fxd.parts[0].whole = &w;
    struct src_field ff = {"pr.diff", fxd.text, strlen(fxd.text), NULL, fxd.parts, fxd.n};
    pol_label_field(f.lab, &ff, &v);
    assert_int_equal(v.label, CONF);
    pol_value_release(&v);
    /* ...but a part moved in from elsewhere only when every path is covered. */
    fxd.parts[0].old_path = "ops/keys.md";
    pol_label_field(f.lab, &ff, &v);
    assert_int_equal(v.label, RESTR);
    assert_true(field_of(&v, POL_LBL_DETECTOR, "ops/keys.md") >= 0);
    pol_value_release(&v);
    /* Whole files that could not be read: unknown means top. */
    struct src_whole unread = {NULL, NULL, 0, 0, "the whole of 'docs/ops.md' is past the cap"};
    d.parts[0].whole = &unread;
    d.parts[0].old_path = NULL;
    pol_label_field(f.lab, &fd, &v);
    assert_int_equal(v.label, RESTR);
    r = field_of(&v, POL_LBL_UNSCANNED, "docs/ops.md");
    assert_true(r >= 0);
    assert_string_equal(v.reasons[r].what, "the whole of 'docs/ops.md' is past the cap");
    pol_value_release(&v);
    pol_labeller_free(f.lab);
}

/* A for_each element of a rename line is labelled by both paths: by its part
 * (which carries the old path) or, should the part not say, by the line. */
static void plan_for_each_rename_element_is_labelled_by_both_paths(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *per_file[] = {"each.path", "each.diff", NULL};
    fx_stage(&f, "files", per_file, NULL, 0);
    f.st[0].for_each = "pr.files";
    int clr[1] = {RESTR};
    fx_labeller(&f);
    for (int part_says = 1; part_says >= 0; part_says--) {
        struct diff d = {0};
        diff_add(&d, "docs/c.md", "-c\n");
        d.parts[0].old_path = part_says ? "k/c.pem" : NULL;
        struct item a;
        struct pol_item_plan pl;
        item_make(&a, "1", "t", &d);
        snprintf(a.files, sizeof(a.files), "R\tk/c.pem -> docs/c.md\n");
        a.f[1].len = strlen(a.files);
        pol_plan_item(f.lab, clr, &a.it, &pl);
        assert_int_equal(pl.n_tasks, 1);
        assert_string_equal(pl.tasks[0].element, "docs/c.md");
        assert_int_equal(pl.tasks[0].label, RESTR);
        pol_item_plan_release(&pl);
    }
    pol_labeller_free(f.lab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rules_label_each_file_and_may_lower),
        cmocka_unit_test(detector_hits_are_placed_in_their_file_with_its_line),
        cmocka_unit_test(allowlists_drop_hits_by_path_and_by_value),
        cmocka_unit_test(detector_selection_and_custom_regexes),
        cmocka_unit_test(unread_and_unscannable_values_are_top),
        cmocka_unit_test(plan_reroutes_only_the_items_above_the_clearance),
        cmocka_unit_test(plan_skip_withholds_dependants_and_fail_refuses),
        cmocka_unit_test(plan_for_each_file_labels_each_part_and_batch_joins),
        cmocka_unit_test(item_keys_are_labelled_like_their_field_and_batch_joins_them),
        cmocka_unit_test(template_text_is_labelled_by_the_detectors),
        cmocka_unit_test(rename_parts_are_labelled_by_the_join_over_both_paths),
        cmocka_unit_test(whole_files_are_scanned_and_unread_ones_are_top),
        cmocka_unit_test(plan_for_each_rename_element_is_labelled_by_both_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
