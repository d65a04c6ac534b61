/* tests/unit/test_canary_prop.c — no canary reaches a stage whose clearance
 * is below its label.
 *
 * Random pipelines (seeded per case: a failure prints the seed, the case, the
 * pipeline and the item, and BH_PROP_SEED / BH_PROP_CASE replay it) over
 * random pull requests in which unique strings "CANARY-nnn" are planted: in
 * the title, in file paths (so in pr.files, each.path and the diff's headers)
 * and in the diff's lines, often on the same line as a detector trigger (an
 * e-mail address, an AWS key id, a PEM header, a private IPv4 address).
 * pol_plan_item decides every task; the reference then follows each canary
 * through what the tasks that run (allow at the stage, reroute at the
 * target) read — the item's fields, each.* of the element, and upstream
 * outputs, which carry every canary their task read — and asserts that its
 * label is within the clearance of the stage that runs the task. Tasks that
 * are skipped, refused or withheld send nothing: their canaries are never
 * collected, they have no output, and their dependants are withheld.
 *
 * The reference labels canaries from pipelines/README.md ("source", "Labels
 * and clearances", "bulkhead plan") and label.h/plan.h alone, never from
 * label.c or plan.c: a value's declared label (its field's, else the source
 * default); for diff content the highest path rule matching the canary's
 * file, else the declared label; raised by every enabled detector whose
 * trigger is in the same value (anywhere in pr.diff; only the element's part
 * for each.diff), unless allow.paths (the trigger's file) or allow.values
 * drop it. A declassify is assumed to pass, as a plan does ("if its guards
 * pass"): past it a canary counts at most declassify.to, yet it is still in
 * the output. The five globs are matched by hand-written predicates, and the
 * detectors' behaviour on the planted texts is checked against
 * det_scan first, so a generator mistake is not read as a plan bug.
 *
 * Where the docs leave a choice the generator avoids it: a standby target
 * copies its origin's declassify (which of the two applies to a rerouted
 * output is not written down), stages wait only for what they read (whether
 * `after` alone withholds is not either), and no for_each over an output. */
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

enum {
    MAX_MAIN = 6,
    MAX_ST = 2 * MAX_MAIN,
    MAX_READS = 8,
    MAX_FILES = 5,
    MAX_LINES = 3,
    MAX_CAN = 1 + MAX_FILES * (1 + MAX_LINES),
    MAX_ITEMS = 3,
    N_CASES = 1500,
    MAX_REPORTS = 12,
    N_DECISIONS = 5,
};
enum { F_TITLE, F_FILES, F_DIFF, N_FIELDS };
enum { G_DOCS, G_PEM, G_SRC, G_MD, G_SECRETS, N_GLOBS };
enum { T_EMAIL, T_AWS, T_PEM, T_IPV4, N_TRIG };
#define NONE (-1) /* no canary, no detector: below every label */

static char *label_pool[] = {"public", "internal", "confidential", "restricted"};
static char *field_names[N_FIELDS] = {"pr.title", "pr.files", "pr.diff"};
static char *globs[N_GLOBS] = {"docs/**", "**/*.pem", "src/*.c", "*.md", "secrets/**"};
static char *stage_names[MAX_ST] = {"s0", "s1", "s2", "s3", "s4",  "s5",
                                    "s6", "s7", "s8", "s9", "s10", "s11"};
static char *output_names[MAX_ST] = {"s0.output", "s1.output", "s2.output",  "s3.output",
                                     "s4.output", "s5.output", "s6.output",  "s7.output",
                                     "s8.output", "s9.output", "s10.output", "s11.output"};
/* Folder and extension of a file: every glob matches some, none matches all. */
static const char *const path_dirs[][2] = {
    {"docs/", ".md"},     {"docs/api/", ".txt"}, {"keys/", ".pem"},  {"secrets/", ".env"},
    {"secrets/", ".pem"}, {"src/", ".c"},        {"src/lib/", ".c"}, {"", ".md"},
    {"lib/", ".md"},      {"app/", ".py"},
};
static const char *const ons_names[] = {"fail", "skip", "reroute"};

/* The AWS example key format the detector knows, split so that this file
 * does not trip secret scanners. */
#define AWS_KEY                                                                                    \
    "AK"                                                                                           \
    "IAQW7B3PDKHX4PY8GP"

/* Planted texts and the built-in detector each must trip (and nothing else:
 * checked). A PEM header's span would run into a key body, so every planted
 * line goes on after it ("end"). */
struct trigger {
    const char *text;
    const char *id;
};
static const struct trigger triggers[N_TRIG] = {
    [T_EMAIL] = {"jane.roe@acme-corp.com", "email"},
    [T_AWS] = {AWS_KEY, "aws-access-key"},
    [T_PEM] = {"-----BEGIN RSA PRIVATE KEY-----", "private-key"},
    [T_IPV4] = {"10.20.30.40", "private-ipv4"},
};

/* --- rng and reporting state ---------------------------------------------------------- */

static uint64_t rng_state, run_seed;
static int cur_case, cur_item, cur_dumped;
static size_t n_mismatch, next_canary;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static uint64_t case_seed(uint64_t seed, int n) /* splitmix64: cases independent */
{
    uint64_t z = seed + 0x9e3779b97f4a7c15u * (uint64_t)(n + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return z ? z : 1;
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

/* 1 when s[0..len) contains needle. */
static int contains(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(s + i, needle, n) == 0)
            return 1;
    return 0;
}

/* --- the five globs, by hand (README "Globs") ----------------------------------------- */

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static int ends(const char *s, const char *p)
{
    size_t n = strlen(s), k = strlen(p);
    return n >= k && strcmp(s + n - k, p) == 0;
}

/* Base names never hold '/', so a suffix test is a last-segment test. */
static int glob_matches(int glob, const char *path)
{
    switch (glob) {
    case G_DOCS: return starts(path, "docs/");
    case G_PEM: /* `**` may be any number of segments, none included */ return ends(path, ".pem");
    case G_SRC: /* `*` stays within one segment */
        return starts(path, "src/") && !strchr(path + 4, '/') && ends(path, ".c");
    case G_MD: /* no '/': the last segment at any depth */ return ends(path, ".md");
    case G_SECRETS: return starts(path, "secrets/");
    }
    return 0;
}

/* --- the pipeline ------------------------------------------------------------------- */

struct gen {
    struct pipeline p;
    char *labels[4];
    int field_labels[N_FIELDS];
    struct pipe_rule rules[N_GLOBS];
    int rule_glob[N_GLOBS];
    char *det_names[N_TRIG + 1];
    char *allow_paths[2];
    int allow_glob[2];
    char *allow_values[2];
    struct pipe_endpoint ep;
    struct pipe_stage st[MAX_ST];
    char *reads[MAX_ST][MAX_READS];
    size_t deps[MAX_ST][MAX_ST];
    size_t order[MAX_ST];
    int clr[MAX_ST];           /* what the test passes as effective clearances */
    int det_label[N_TRIG];     /* the label the trigger's detector raises to; NONE: off */
    int value_allowed[N_TRIG]; /* its text is in allow.values */
};

static int top_of(const struct gen *g)
{
    return (int)g->p.n_labels - 1;
}

static int any_label(const struct gen *g)
{
    return (int)rnd((uint32_t)g->p.n_labels);
}

/* 2..4 of the four names, in their order: built-in detector labels map by
 * name when present, else to the top (README "The static bounds"). */
static void gen_labels(struct gen *g)
{
    size_t want = 2 + rnd(3), n = 0;
    for (size_t i = 0; i < 4; i++)
        if (rnd((uint32_t)(4 - i)) < want - n)
            g->labels[n++] = label_pool[i];
    g->p.labels = g->labels;
    g->p.n_labels = n;
}

/* The label a trigger's detector raises a value to: its default name's. */
static int detector_label(const struct gen *g, size_t t)
{
    const struct det_detector *d = det_find(triggers[t].id);
    assert_non_null(d);
    for (size_t i = 0; i < g->p.n_labels; i++)
        if (strcmp(g->labels[i], d->label) == 0)
            return (int)i;
    return top_of(g);
}

/* All (not given), none ([]) or some, each named by its id or its group;
 * "tokens" now and then, which trips none of the planted texts. */
static void gen_detectors(struct gen *g)
{
    struct pipe_source *src = &g->p.source;
    uint32_t how = rnd(3);
    src->detectors = how == 0 ? NULL : g->det_names;
    src->detectors_set = how != 0;
    for (size_t t = 0; t < N_TRIG; t++) {
        int on = how == 0 || (how == 2 && rnd(2) == 0);
        g->det_label[t] = on ? detector_label(g, t) : NONE;
        if (on && how == 2) {
            const struct det_detector *d = det_find(triggers[t].id);
            g->det_names[src->n_detectors++] = (char *)(rnd(2) ? d->id : d->group);
        }
    }
    if (how == 2 && rnd(3) == 0)
        g->det_names[src->n_detectors++] = "tokens";
}

/* allow.paths over some globs, allow.values with the e-mail or the key. */
static void gen_allow(struct gen *g)
{
    struct pipe_source *src = &g->p.source;
    memset(g->value_allowed, 0, sizeof(g->value_allowed));
    if (rnd(3) == 0)
        for (size_t k = 0, n = 1 + rnd(2); k < n; k++) {
            g->allow_glob[k] = (int)rnd(N_GLOBS);
            g->allow_paths[src->n_allow_paths++] = globs[g->allow_glob[k]];
        }
    if (rnd(3) == 0) {
        size_t t = rnd(2) ? T_EMAIL : T_AWS;
        g->value_allowed[t] = 1;
        g->allow_values[src->n_allow_values++] = (char *)triggers[t].text;
    }
    src->allow_paths = g->allow_paths;
    src->allow_values = g->allow_values;
}

static void gen_source(struct gen *g)
{
    struct pipe_source *src = &g->p.source;
    *src = (struct pipe_source){.kind = "git",
                                .label = any_label(g),
                                .fields = field_names,
                                .field_labels = g->field_labels,
                                .n_fields = N_FIELDS,
                                .rules = g->rules};
    for (size_t i = 0; i < N_FIELDS; i++) /* unlisted fields take the source default */
        g->field_labels[i] = rnd(3) == 0 ? src->label : any_label(g);
    int used[N_GLOBS] = {0};
    for (size_t n = rnd(4); src->n_rules < n;) {
        int glob = (int)rnd(N_GLOBS);
        if (used[glob]++)
            continue;
        g->rule_glob[src->n_rules] = glob;
        g->rules[src->n_rules++] = (struct pipe_rule){globs[glob], any_label(g), 1, 1};
    }
    gen_detectors(g);
    gen_allow(g);
}

static void add_read(struct gen *g, size_t s, char *name)
{
    struct pipe_stage *st = &g->st[s];
    for (size_t k = 0; k < st->n_reads; k++)
        if (strcmp(st->reads[k], name) == 0)
            return;
    st->reads[st->n_reads++] = name;
}

static void add_dep(struct gen *g, size_t s, size_t d)
{
    for (size_t k = 0; k < g->st[s].n_deps; k++)
        if (g->deps[s][k] == d)
            return;
    g->deps[s][g->st[s].n_deps++] = d;
}

/* One read for stage s: a source field, an upstream output (ups: the stages
 * before it that are not standby) or an element field. */
static void gen_read(struct gen *g, size_t s, const size_t *ups, size_t n_up)
{
    uint32_t what = rnd(10);
    if (what >= 5 && what < 8 && n_up > 0) {
        size_t up = ups[rnd((uint32_t)n_up)];
        add_read(g, s, output_names[up]);
        add_dep(g, s, up);
    } else if (what >= 8 && g->st[s].for_each) {
        static char *each[] = {"each.path", "each.diff", "each.diff", "each.status"};
        add_read(g, s, each[rnd(4)]);
    } else {
        static char *src[] = {"pr.title", "pr.title", "pr.files", "pr.diff", "pr.diff"};
        add_read(g, s, src[what % 5]);
    }
}

static void stage_init(struct gen *g, size_t s)
{
    g->st[s] = (struct pipe_stage){.name = stage_names[s],
                                   .model = "m",
                                   .clearance = -1,
                                   .reroute = -1,
                                   .for_each_stage = -1,
                                   .reads = g->reads[s],
                                   .deps = g->deps[s],
                                   .line = 1,
                                   .col = 1};
}

/* Mostly a label, now and then nothing at all (a local claim that failed). */
static int gen_clearance(struct gen *g)
{
    return rnd(16) == 0 ? POL_NOTHING : any_label(g);
}

static void gen_main(struct gen *g, size_t s, const size_t *ups, size_t n_up, uint32_t ons)
{
    struct pipe_stage *st = &g->st[s];
    stage_init(g, s);
    st->for_each = rnd(3) == 0 ? "pr.files" : NULL;
    for (size_t k = 0, n = rnd(10) == 0 ? 0 : 1 + rnd(3); k < n; k++)
        gen_read(g, s, ups, n_up);
    st->on_sensitive = (enum pipe_on_sensitive)ons;
    if (rnd(3) == 0)
        st->declassify = (struct pipe_declassify){
            .enabled = 1, .to = any_label(g), .no_verbatim_tokens = 8, .detectors = 1};
    g->clr[s] = gen_clearance(g);
}

/* The target reads what its origin reads, sometimes a source field more;
 * its clearance is mostly higher (toward more privacy). */
static void gen_standby(struct gen *g, size_t origin, size_t t)
{
    struct pipe_stage *o = &g->st[origin], *st = &g->st[t];
    stage_init(g, t);
    st->standby = 1;
    st->for_each = o->for_each;
    st->declassify = o->declassify;
    for (size_t k = 0; k < o->n_reads; k++)
        add_read(g, t, o->reads[k]);
    for (size_t k = 0; k < o->n_deps; k++)
        add_dep(g, t, o->deps[k]);
    if (rnd(3) == 0)
        add_read(g, t, rnd(2) ? "pr.diff" : "pr.title");
    o->reroute = (long)t;
    g->clr[t] = rnd(2) ? top_of(g) : gen_clearance(g);
}

/* 1..6 stages in a random DAG; a standby runs right after its origin in the
 * order; stage indices are a random permutation of the order. */
static void gen_stages(struct gen *g)
{
    size_t n_main = 1 + rnd(MAX_MAIN), total = n_main, perm[MAX_ST], mains[MAX_MAIN];
    uint32_t ons[MAX_MAIN];
    for (size_t k = 0; k < n_main; k++) {
        ons[k] = rnd(3);
        total += ons[k] == PIPE_ONS_REROUTE;
    }
    for (size_t i = 0; i < total; i++)
        perm[i] = i;
    for (size_t i = total; i > 1; i--) {
        size_t j = rnd((uint32_t)i), tmp = perm[i - 1];
        perm[i - 1] = perm[j], perm[j] = tmp;
    }
    for (size_t k = 0, pos = 0; k < n_main; k++) {
        size_t s = perm[pos];
        g->order[pos++] = s;
        gen_main(g, s, mains, k, ons[k]);
        mains[k] = s;
        if (ons[k] == PIPE_ONS_REROUTE) {
            g->order[pos] = perm[pos];
            gen_standby(g, s, perm[pos++]);
        }
    }
    g->p.n_stages = total;
}

static void gen_pipeline(struct gen *g)
{
    memset(g, 0, sizeof(*g));
    g->p.name = "canary";
    g->p.file = "canary.json";
    g->p.version = 1;
    g->ep = (struct pipe_endpoint){
        .name = "e", .provider = "ollama", .url = "http://127.0.0.1:1", .clearance = -1};
    g->p.endpoints = &g->ep;
    g->p.n_endpoints = 1;
    g->p.stages = g->st;
    g->p.order = g->order;
    gen_labels(g);
    gen_source(g);
    gen_stages(g);
}

/* --- the items ---------------------------------------------------------------------- */

struct item {
    struct src_item it;
    struct src_field f[N_FIELDS];
    struct src_part parts[MAX_FILES];
    char title[160];
    char files[MAX_FILES * 48];
    char diff[4096];
    char paths[MAX_FILES][48];
    char can[MAX_CAN][16];
    size_t n_can, n_files;
};

static const char *new_canary(struct item *x)
{
    assert_true(x->n_can < MAX_CAN);
    snprintf(x->can[x->n_can], sizeof(x->can[0]), "CANARY-%03zu", next_canary++ % 1000);
    return x->can[x->n_can++];
}

/* "note CANARY-nnn TRIGGER end" with either, both or neither, in either order. */
static void gen_text(struct item *x, char *out, size_t size, uint32_t can_odds, uint32_t trig_odds)
{
    const char *can = rnd(can_odds) == 0 ? new_canary(x) : "";
    const char *trig = rnd(trig_odds) == 0 ? triggers[rnd(N_TRIG)].text : "";
    int n = rnd(2) ? snprintf(out, size, "note %s %s end", can, trig)
                   : snprintf(out, size, "note %s %s end", trig, can);
    assert_true(n > 0 && (size_t)n < size);
}

static void gen_paths(struct item *x)
{
    x->n_files = 1 + rnd(MAX_FILES);
    size_t off = 0;
    for (size_t i = 0; i < x->n_files; i++) {
        char base[24];
        const char *const *dir = path_dirs[rnd(BH_NELEM(path_dirs))];
        if (rnd(4) == 0)
            snprintf(base, sizeof(base), "%s", new_canary(x));
        else
            snprintf(base, sizeof(base), "f%d", (int)i); /* i keeps the paths distinct */
        snprintf(x->paths[i], sizeof(x->paths[i]), "%s%s%s", dir[0], base, dir[1]);
        off += (size_t)snprintf(x->files + off, sizeof(x->files) - off, "%sM\t%s", i ? "\n" : "",
                                x->paths[i]);
    }
    assert_true(off < sizeof(x->files));
}

static void gen_diff(struct item *x)
{
    size_t off = 0;
    for (size_t i = 0; i < x->n_files; i++) {
        size_t start = off;
        off += (size_t)snprintf(x->diff + off, sizeof(x->diff) - off, "diff --git a/%s b/%s\n",
                                x->paths[i], x->paths[i]);
        for (size_t l = 0, n = 1 + rnd(MAX_LINES); l < n; l++) {
            char line[128];
            gen_text(x, line, sizeof(line), 2, 3);
            off += (size_t)snprintf(x->diff + off, sizeof(x->diff) - off, "+%s\n", line);
        }
        assert_true(off < sizeof(x->diff));
        x->parts[i] =
            (struct src_part){.path = x->paths[i], .offset = start, .length = off - start};
    }
}

static void gen_item(struct item *x)
{
    memset(x, 0, sizeof(*x));
    gen_text(x, x->title, sizeof(x->title), 2, 2);
    gen_paths(x);
    gen_diff(x);
    x->f[F_TITLE] = (struct src_field){"pr.title", x->title, strlen(x->title), NULL, NULL, 0};
    x->f[F_FILES] = (struct src_field){"pr.files", x->files, strlen(x->files), NULL, NULL, 0};
    x->f[F_DIFF] =
        (struct src_field){"pr.diff", x->diff, strlen(x->diff), NULL, x->parts, x->n_files};
    x->it = (struct src_item){
        .key = "refs/pull/1/head", .version = "a..b", .fields = x->f, .n_fields = N_FIELDS};
}

/* The generator's own check: every detector hit in text[0..len) is a planted
 * trigger found by its own detector, and every planted trigger is hit. */
static void check_triggers_exact(const char *text, size_t len)
{
    struct det_hit *hits = NULL;
    size_t n = 0;
    assert_int_equal(det_scan(text, len, NULL, 0, &hits, &n, 0), 0);
    int seen[N_TRIG] = {0};
    for (size_t h = 0; h < n; h++) {
        size_t t = 0;
        while (t < N_TRIG &&
               !(strcmp(hits[h].detector->id, triggers[t].id) == 0 &&
                 hits[h].length == strlen(triggers[t].text) &&
                 memcmp(text + hits[h].offset, triggers[t].text, hits[h].length) == 0))
            t++;
        if (t == N_TRIG)
            fail_msg("generator: unexpected %s hit at line %zu of \"%.*s\"", hits[h].detector->id,
                     hits[h].line, (int)len, text);
        seen[t] = 1;
    }
    for (size_t t = 0; t < N_TRIG; t++)
        if (!seen[t] && contains(text, len, triggers[t].text))
            fail_msg("generator: planted %s not found by its detector", triggers[t].id);
    det_hits_free(hits);
}

static void check_item_triggers(const struct item *x)
{
    check_triggers_exact(x->title, strlen(x->title));
    check_triggers_exact(x->files, strlen(x->files));
    for (size_t i = 0; i < x->n_files; i++)
        check_triggers_exact(x->diff + x->parts[i].offset, x->parts[i].length);
}

/* --- the reference: canary labels per value ------------------------------------------ */

struct stats {
    size_t dec[N_DECISIONS];
    size_t checked;      /* canaries checked against a clearance */
    size_t lowered;      /* canaries that crossed a declassify below their label */
    size_t raised;       /* canaries a detector raised above their declared label */
    size_t allow_paths;  /* enabled triggers dropped because their file is allowed */
    size_t allow_values; /* enabled triggers dropped by allow.values */
    size_t partial;      /* for_each stages some of whose elements ran, without an output */
};

/* Per canary of the item: its label in a value, NONE when it is not there. */
struct cmap {
    int lab[MAX_CAN];
};

static void cmap_clear(struct cmap *m)
{
    for (size_t c = 0; c < MAX_CAN; c++)
        m->lab[c] = NONE;
}

static void cmap_merge(struct cmap *into, const struct cmap *m)
{
    for (size_t c = 0; c < MAX_CAN; c++)
        into->lab[c] = imax(into->lab[c], m->lab[c]);
}

/* Every canary in s[0..len) gets label (the highest when it is there twice). */
static void cmap_find(struct cmap *m, const struct item *x, const char *s, size_t len, int label,
                      int declared, struct stats *stats)
{
    for (size_t c = 0; c < x->n_can; c++)
        if (contains(s, len, x->can[c])) {
            m->lab[c] = imax(m->lab[c], label);
            stats->raised += label > declared;
        }
}

/* The highest label the enabled, not allowlisted triggers in s[0..len) raise
 * to; NONE when none. */
static int det_raise(const struct gen *g, const char *s, size_t len, struct stats *stats)
{
    int r = NONE;
    for (size_t t = 0; t < N_TRIG; t++) {
        if (g->det_label[t] == NONE || !contains(s, len, triggers[t].text))
            continue;
        if (g->value_allowed[t]) {
            stats->allow_values++;
            continue;
        }
        r = imax(r, g->det_label[t]);
    }
    return r;
}

static int path_allowed(const struct gen *g, const char *path)
{
    for (size_t k = 0; k < g->p.source.n_allow_paths; k++)
        if (glob_matches(g->allow_glob[k], path))
            return 1;
    return 0;
}

/* A file's content label: the highest matching rule, else the declared one. */
static int rule_label(const struct gen *g, const char *path, int declared)
{
    int best = NONE;
    for (size_t r = 0; r < g->p.source.n_rules; r++)
        if (glob_matches(g->rule_glob[r], path))
            best = imax(best, g->rules[r].label);
    return best != NONE ? best : declared;
}

/* What part i's detectors raise to, nothing when its file is allowed. */
static int part_raise(const struct gen *g, const struct item *x, size_t i, struct stats *stats)
{
    const char *s = x->diff + x->parts[i].offset;
    size_t len = x->parts[i].length;
    if (!path_allowed(g, x->paths[i]))
        return det_raise(g, s, len, stats);
    struct stats scratch = {0};
    stats->allow_paths += det_raise(g, s, len, &scratch) != NONE;
    return NONE;
}

struct ref_item {
    struct cmap title, files, diff, each_path[MAX_FILES], each_diff[MAX_FILES], nothing;
};

static void ref_diff(const struct gen *g, const struct item *x, struct ref_item *r,
                     struct stats *stats)
{
    int decl = g->field_labels[F_DIFF], raise[MAX_FILES], whole = NONE;
    for (size_t i = 0; i < x->n_files; i++) {
        raise[i] = part_raise(g, x, i, stats);
        whole = imax(whole, raise[i]); /* a hit raises the whole pr.diff */
    }
    for (size_t i = 0; i < x->n_files; i++) {
        const char *s = x->diff + x->parts[i].offset;
        size_t len = x->parts[i].length;
        int file = rule_label(g, x->paths[i], decl);
        cmap_find(&r->diff, x, s, len, imax(file, whole), file, stats);
        cmap_find(&r->each_diff[i], x, s, len, imax(file, raise[i]), file, stats);
    }
}

static void ref_item_build(const struct gen *g, const struct item *x, struct ref_item *r,
                           struct stats *stats)
{
    struct cmap *all[] = {&r->title, &r->files, &r->diff, &r->nothing};
    for (size_t k = 0; k < BH_NELEM(all); k++)
        cmap_clear(all[k]);
    for (size_t i = 0; i < MAX_FILES; i++)
        cmap_clear(&r->each_path[i]), cmap_clear(&r->each_diff[i]);
    int t = g->field_labels[F_TITLE], f = g->field_labels[F_FILES];
    cmap_find(&r->title, x, x->title, strlen(x->title),
              imax(t, det_raise(g, x->title, strlen(x->title), stats)), t, stats);
    cmap_find(&r->files, x, x->files, strlen(x->files),
              imax(f, det_raise(g, x->files, strlen(x->files), stats)), f, stats);
    for (size_t i = 0; i < x->n_files; i++) /* each.path: as pr.files */
        cmap_find(&r->each_path[i], x, x->paths[i], strlen(x->paths[i]),
                  imax(f, det_raise(g, x->paths[i], strlen(x->paths[i]), stats)), f, stats);
    ref_diff(g, x, r, stats);
}

/* --- reporting ---------------------------------------------------------------------- */

static const char *lbl(const struct gen *g, int l)
{
    if (l == POL_NOTHING)
        return "nothing";
    if (l == NONE)
        return "none";
    return l >= 0 && (size_t)l < g->p.n_labels ? g->labels[l] : "?";
}

/* Text with every planted trigger shown as <its detector>: no key in a log. */
static void print_redacted(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t t = 0, n = 0;
        for (; t < N_TRIG; t++) {
            n = strlen(triggers[t].text);
            if (i + n <= len && memcmp(s + i, triggers[t].text, n) == 0)
                break;
        }
        if (t < N_TRIG) {
            print_message("<%s>", triggers[t].id);
            i += n;
        } else {
            print_message("%c", s[i++]);
        }
    }
}

static void dump_source(const struct gen *g)
{
    const struct pipe_source *src = &g->p.source;
    print_message("  labels:");
    for (size_t i = 0; i < g->p.n_labels; i++)
        print_message(" %s", g->labels[i]);
    print_message("\n  source label %s; fields:", lbl(g, src->label));
    for (size_t f = 0; f < N_FIELDS; f++)
        print_message(" %s=%s", field_names[f], lbl(g, g->field_labels[f]));
    print_message("\n  rules:");
    for (size_t i = 0; i < src->n_rules; i++)
        print_message(" %s=%s", src->rules[i].glob, lbl(g, src->rules[i].label));
    print_message("\n  detectors: %s", src->detectors_set ? "[" : "all built-in");
    for (size_t i = 0; src->detectors_set && i < src->n_detectors; i++)
        print_message(" %s", src->detectors[i]);
    print_message("%s; allow.paths:", src->detectors_set ? " ]" : "");
    for (size_t i = 0; i < src->n_allow_paths; i++)
        print_message(" %s", src->allow_paths[i]);
    print_message("; allow.values:");
    for (size_t t = 0; t < N_TRIG; t++)
        if (g->value_allowed[t])
            print_message(" <%s>", triggers[t].id);
    print_message("\n");
}

static void dump_stage(const struct gen *g, size_t s)
{
    const struct pipe_stage *st = &g->st[s];
    print_message("  %s: clearance %s%s for_each %s on_sensitive %s", st->name, lbl(g, g->clr[s]),
                  st->standby ? " standby" : "", st->for_each ? st->for_each : "-",
                  ons_names[st->on_sensitive]);
    if (st->reroute >= 0)
        print_message(":%s", stage_names[st->reroute]);
    print_message(" declassify %s; reads:",
                  st->declassify.enabled ? lbl(g, st->declassify.to) : "-");
    for (size_t k = 0; k < st->n_reads; k++)
        print_message(" %s", st->reads[k]);
    print_message("\n");
}

static void dump_case(const struct gen *g, const struct item *x)
{
    print_message("case %d item %d of seed %#llx (replay: BH_PROP_SEED=%#llx BH_PROP_CASE=%d):\n",
                  cur_case, cur_item, (unsigned long long)run_seed, (unsigned long long)run_seed,
                  cur_case);
    dump_source(g);
    print_message("  run order:");
    for (size_t k = 0; k < g->p.n_stages; k++)
        print_message(" %s", stage_names[g->order[k]]);
    print_message("\n");
    for (size_t k = 0; k < g->p.n_stages; k++)
        dump_stage(g, g->order[k]);
    print_message("  title: ");
    print_redacted(x->title, strlen(x->title));
    print_message("\n  diff:\n");
    print_redacted(x->diff, strlen(x->diff));
}

/* Records a broken property; the first MAX_REPORTS are printed with their case. */
static void report(const struct gen *g, const struct item *x, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(const struct gen *g, const struct item *x, const char *fmt, ...)
{
    if (n_mismatch++ >= MAX_REPORTS)
        return;
    if (!cur_dumped++)
        dump_case(g, x);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    print_message("  FAIL: %s\n", msg);
}

/* --- the walk over one item's plan --------------------------------------------------- */

struct walk {
    const struct gen *g;
    const struct item *x;
    const struct ref_item *r;
    const struct pol_item_plan *ip;
    struct stats *stats;
    struct cmap out[MAX_ST]; /* what each stage's output carries, declassified */
    size_t ran[MAX_ST];      /* tasks of the stage that sent something */
    size_t seen[MAX_ST];     /* tasks of the stage planned so far */
};

static size_t tasks_of(const struct gen *g, const struct item *x, size_t s)
{
    if (g->st[s].standby)
        return 0;
    return g->st[s].for_each ? x->n_files : 1;
}

/* The canaries of one read of a task on element e (-1: none). */
static const struct cmap *read_map(const struct walk *w, const char *name, long e)
{
    static const char *const field[] = {"pr.title", "pr.files", "pr.diff"};
    const struct cmap *fmap[] = {&w->r->title, &w->r->files, &w->r->diff};
    for (size_t f = 0; f < N_FIELDS; f++)
        if (strcmp(name, field[f]) == 0)
            return fmap[f];
    if (e >= 0 && strcmp(name, "each.path") == 0)
        return &w->r->each_path[e];
    if (e >= 0 && strcmp(name, "each.diff") == 0)
        return &w->r->each_diff[e];
    for (size_t s = 0; s < w->g->p.n_stages; s++)
        if (strcmp(name, output_names[s]) == 0)
            return &w->out[s];
    return &w->r->nothing; /* each.status: no canary */
}

/* Everything stage s's templates substitute for element e. */
static void task_input(const struct walk *w, size_t s, long e, struct cmap *in)
{
    cmap_clear(in);
    for (size_t k = 0; k < w->g->st[s].n_reads; k++)
        cmap_merge(in, read_map(w, w->g->st[s].reads[k], e));
}

/* The element's index among the item's files, -1 for none; reports a
 * mismatch with the stage's for_each. */
static long task_element(const struct walk *w, const struct pol_task_plan *t)
{
    const struct pipe_stage *st = &w->g->st[t->stage];
    if (!st->for_each || !t->element) {
        if (!st->for_each != !t->element)
            report(w->g, w->x, "%s: element %s for for_each %s", st->name,
                   t->element ? t->element : "NULL", st->for_each ? st->for_each : "-");
        return -1;
    }
    for (size_t i = 0; i < w->x->n_files; i++)
        if (strcmp(t->element, w->x->paths[i]) == 0)
            return (long)i;
    report(w->g, w->x, "%s: element \"%s\" is not a file of the item", st->name, t->element);
    return -1;
}

/* 1 when some stage s waits for has no output for this item (README "bulkhead
 * plan": withheld). Whether that output is right is check_outputs' business.
 * Reports an upstream planned after s. */
static int starved(const struct walk *w, size_t s)
{
    const struct pipe_stage *st = &w->g->st[s];
    int none = 0;
    for (size_t k = 0; k < st->n_deps; k++) {
        size_t d = st->deps[k];
        if (w->seen[d] != tasks_of(w->g, w->x, d))
            report(w->g, w->x, "%s planned before all of its upstream %s (%zu of %zu tasks)",
                   st->name, stage_names[d], w->seen[d], tasks_of(w->g, w->x, d));
        none |= w->ip->outputs[d] == -1;
    }
    return none;
}

/* What plan.h says of each decision, apart from the labels' provenance. */
static void check_decision(const struct walk *w, const struct pol_task_plan *t, int none)
{
    const struct gen *g = w->g;
    const struct pipe_stage *st = &g->st[t->stage];
    const char *name = pol_decision_name(t->decision);
    int above = t->label > g->clr[t->stage];
    int ok = t->decision == POL_WITHHELD ? none : !none;
    if (t->decision == POL_ALLOW)
        ok = ok && !above && t->ran == t->stage;
    else if (t->decision == POL_REROUTE)
        ok = ok && above && st->reroute >= 0 && t->ran == (size_t)st->reroute &&
             t->ran_label <= g->clr[t->ran];
    else if (t->decision == POL_SKIP)
        ok = ok && above && st->on_sensitive == PIPE_ONS_SKIP;
    else if (t->decision == POL_REFUSE)
        ok = ok && above && st->on_sensitive != PIPE_ONS_SKIP;
    if (!ok)
        report(g, w->x, "%s%s%s: %s at label %s (clearance %s, %s), ran %s at %s, upstream %s",
               st->name, t->element ? " " : "", t->element ? t->element : "", name,
               lbl(g, t->label), lbl(g, g->clr[t->stage]), ons_names[st->on_sensitive],
               t->ran < g->p.n_stages ? stage_names[t->ran] : "?", lbl(g, t->ran_label),
               none ? "produced nothing" : "produced");
}

/* The property: every canary a running task sends is within the clearance
 * of the stage that runs it, and within the label the plan gives the prompt. */
static void check_sent(struct walk *w, const struct pol_task_plan *t, size_t runner,
                       const struct cmap *in)
{
    const struct gen *g = w->g;
    for (size_t c = 0; c < w->x->n_can; c++) {
        if (in->lab[c] == NONE)
            continue;
        w->stats->checked++;
        if (in->lab[c] > g->clr[runner])
            report(g, w->x, "LEAK: %s (label %s) reaches %s (clearance %s) via %s%s%s (%s)",
                   w->x->can[c], lbl(g, in->lab[c]), stage_names[runner], lbl(g, g->clr[runner]),
                   stage_names[t->stage], t->element ? " " : "", t->element ? t->element : "",
                   pol_decision_name(t->decision));
        else if (in->lab[c] > t->ran_label)
            report(g, w->x, "%s (label %s) is in %s's prompt, planned at %s", w->x->can[c],
                   lbl(g, in->lab[c]), stage_names[runner], lbl(g, t->ran_label));
    }
}

/* A task that ran adds what it read to its stage's output, lowered by a
 * declassify (assumed to pass); one that did not has no output. */
static void add_output(struct walk *w, const struct pol_task_plan *t, const struct cmap *in,
                       int sent)
{
    const struct gen *g = w->g;
    const struct pipe_declassify *dc = &g->st[t->stage].declassify;
    if (!sent) {
        if (t->output != -1)
            report(g, w->x, "%s: %s yet has an output at %s", stage_names[t->stage],
                   pol_decision_name(t->decision), lbl(g, t->output));
        return;
    }
    w->ran[t->stage]++;
    for (size_t c = 0; c < w->x->n_can; c++) {
        int l = in->lab[c];
        if (l == NONE)
            continue;
        if (dc->enabled && dc->to < l)
            l = dc->to, w->stats->lowered++;
        w->out[t->stage].lab[c] = imax(w->out[t->stage].lab[c], l);
        if (l > t->output)
            report(g, w->x, "%s's output (at %s) carries %s at %s", stage_names[t->stage],
                   lbl(g, t->output), w->x->can[c], lbl(g, l));
    }
}

static void check_task(struct walk *w, const struct pol_task_plan *t)
{
    const struct gen *g = w->g;
    if (t->stage >= g->p.n_stages || g->st[t->stage].standby) {
        report(g, w->x, "a task of stage %zu, which is no task's stage", t->stage);
        return;
    }
    long e = task_element(w, t);
    int none = starved(w, t->stage);
    check_decision(w, t, none);
    int sent = t->decision == POL_ALLOW || t->decision == POL_REROUTE;
    struct cmap own, in;
    task_input(w, t->stage, e, &own);
    for (size_t c = 0; c < w->x->n_can && t->decision != POL_WITHHELD; c++)
        if (own.lab[c] > t->label)
            report(g, w->x, "%s: %s (label %s) is in the prompt, planned at %s",
                   stage_names[t->stage], w->x->can[c], lbl(g, own.lab[c]), lbl(g, t->label));
    /* Allowed: the stage runs; rerouted: its target, with the target's reads. */
    size_t runner = t->decision == POL_REROUTE ? t->ran : t->stage;
    if (runner >= g->p.n_stages) {
        report(g, w->x, "%s: rerouted to stage %zu, which does not exist", stage_names[t->stage],
               runner);
        runner = t->stage, sent = 0;
    }
    in = own;
    if (runner != t->stage)
        task_input(w, runner, e, &in);
    if (sent)
        check_sent(w, t, runner, &in);
    add_output(w, t, &in, sent);
    w->seen[t->stage]++;
    w->stats->dec[(size_t)t->decision < N_DECISIONS ? (size_t)t->decision : 0]++;
}

/* Per stage: a stage none of whose tasks ran has no output; one that has an
 * output holds every canary its tasks read. A for_each stage only some of
 * whose elements ran may have none either (its dependants are then withheld:
 * an incomplete output is not passed on, which sends less, never more). */
static void check_outputs(const struct walk *w)
{
    const struct gen *g = w->g;
    for (size_t s = 0; s < g->p.n_stages; s++) {
        if (g->st[s].standby)
            continue;
        int got = w->ip->outputs[s];
        int partial = w->ran[s] > 0 && w->ran[s] < tasks_of(g, w->x, s);
        if (got == -1) {
            if (w->ran[s] > 0 && !partial)
                report(g, w->x, "%s: every task ran, yet no output", stage_names[s]);
            w->stats->partial += partial;
            continue;
        }
        if (w->ran[s] == 0)
            report(g, w->x, "%s: no task ran, yet an output at %s", stage_names[s], lbl(g, got));
        for (size_t c = 0; c < w->x->n_can; c++)
            if (w->out[s].lab[c] > got)
                report(g, w->x, "%s's output (at %s) carries %s at %s", stage_names[s], lbl(g, got),
                       w->x->can[c], lbl(g, w->out[s].lab[c]));
    }
}

static void check_item(const struct gen *g, const struct pol_labeller *lab, const struct item *x,
                       struct stats *stats)
{
    static struct ref_item r;
    static struct walk w;
    ref_item_build(g, x, &r, stats);
    memset(&w, 0, sizeof(w));
    w = (struct walk){.g = g, .x = x, .r = &r, .stats = stats};
    for (size_t s = 0; s < MAX_ST; s++)
        cmap_clear(&w.out[s]);
    struct pol_item_plan ip;
    assert_int_equal(pol_plan_item(lab, g->clr, &x->it, &ip), 0);
    w.ip = &ip;
    size_t want = 0;
    for (size_t s = 0; s < g->p.n_stages; s++)
        want += tasks_of(g, x, s);
    if (ip.n_tasks != want)
        report(g, x, "%zu tasks planned, %zu expected", ip.n_tasks, want);
    for (size_t k = 0; k < ip.n_tasks; k++)
        check_task(&w, &ip.tasks[k]);
    check_outputs(&w);
    pol_item_plan_release(&ip);
}

static void check_case(struct gen *g, struct stats *stats)
{
    static struct item x;
    struct pol_labeller *lab = NULL;
    assert_int_equal(pol_labeller_new(&lab, &g->p, NULL), 0);
    int n_items = 1 + (int)rnd(MAX_ITEMS);
    for (cur_item = 0; cur_item < n_items; cur_item++) {
        gen_item(&x);
        check_item_triggers(&x);
        cur_dumped = 0; /* a dump per failing item: the item is part of the case */
        check_item(g, lab, &x, stats);
    }
    pol_labeller_free(lab);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void print_stats(const struct stats *st)
{
    print_message(
        "decisions: allow %zu reroute %zu skip %zu refuse %zu withheld %zu; canaries "
        "checked %zu, lowered by declassify %zu, raised by detectors %zu; triggers "
        "dropped by allow.paths %zu, allow.values %zu; partly run for_each stages without "
        "an output %zu\n",
        st->dec[POL_ALLOW], st->dec[POL_REROUTE], st->dec[POL_SKIP], st->dec[POL_REFUSE],
        st->dec[POL_WITHHELD], st->checked, st->lowered, st->raised, st->allow_paths,
        st->allow_values, st->partial);
}

static void no_canary_reaches_a_stage_cleared_below_its_label(void **state)
{
    (void)state;
    static struct gen g;
    struct stats stats = {0};
    run_seed = env_u64("BH_PROP_SEED", 0x5eed0ca7a5efu);
    int only = getenv("BH_PROP_CASE") ? (int)env_u64("BH_PROP_CASE", 0) : -1;
    for (int n = only >= 0 ? only : 0; n < (only >= 0 ? only + 1 : N_CASES); n++) {
        rng_state = case_seed(run_seed, n);
        cur_case = n;
        next_canary = 0;
        gen_pipeline(&g);
        check_case(&g, &stats);
    }
    print_stats(&stats);
    if (n_mismatch > 0)
        fail_msg("%zu broken properties (the first %d are listed above)", n_mismatch, MAX_REPORTS);
    if (only >= 0)
        return;
    /* Every decision and every labelling rule must be exercised, or the
     * property says little. */
    for (size_t d = 0; d < N_DECISIONS; d++)
        assert_true(stats.dec[d] > 50);
    assert_true(stats.checked > 1000 && stats.lowered > 50 && stats.raised > 50);
    assert_true(stats.allow_paths > 50 && stats.allow_values > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_canary_reaches_a_stage_cleared_below_its_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
