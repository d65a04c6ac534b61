/* tests/unit/test_pipeline.c — loading and validating pipeline files: the
 * corpus of bad files (JSON and YAML) with their exact messages, several
 * errors in one pass, good files down to every default, the position
 * scanner on odd layouts, templates, ${VAR} expansion. YAML on its own is in
 * test_pipeline_yaml.c.
 * Runs from BH_SOURCE_DIR so that paths in messages are the repository's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/pipeline.h"
#include "pipeline/posindex.h"
#include "pipeline/template.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

#define BAD_DIR "fixtures/pipelines/bad"
#define FULL "fixtures/pipelines/good/full.json"
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("BH_SOURCE_DIR");
    if (!src || chdir(src) != 0) {
        fprintf(stderr, "BH_SOURCE_DIR must name the source tree\n");
        return -1;
    }
    unsetenv("BULKHEAD_TEST_SURELY_UNSET");
    unsetenv("BH_TEST_LOCAL_URL");
    setenv("BH_TEST_CLOUD_URL", "https://cloud.example", 1);
    return 0;
}

static char *slurp_trimmed(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = bh_xcalloc(1, 16384);
    size_t n = fread(buf, 1, 16383, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* A corpus file: .json, .yaml or .yml; its .expected holds every error, one
 * a line, in the order pipe_load_all reports them. */
static size_t corpus_stem(const char *name)
{
    static const char *const exts[] = { ".json", ".yaml", ".yml" };
    size_t n = strlen(name);
    for (size_t i = 0; i < NELEM(exts); i++) {
        size_t k = strlen(exts[i]);
        if (n > k && strcmp(name + n - k, exts[i]) == 0)
            return n - k;
    }
    return 0;
}

static int check_bad_file(const char *name, size_t stem)
{
    char file[512], expected[512], got[16384] = "", first[1024];
    snprintf(file, sizeof(file), BAD_DIR "/%s", name);
    snprintf(expected, sizeof(expected), BAD_DIR "/%.*s.expected", (int)stem, name);
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL, one = { 0 };
    size_t n = 0, len = 0;
    int rc = pipe_load_all(&p, file, NULL, &errs, &n);
    for (size_t i = 0; i < n; i++) {
        bh_err_format(&errs[i], got + len, sizeof(got) - len);
        len += strlen(got + len);
        if (i + 1 < n && len + 1 < sizeof(got))
            got[len++] = '\n';
    }
    /* pipe_load reports the first of them, as before */
    int rc1 = pipe_load(&p, file, NULL, &one);
    bh_err_format(&one, first, sizeof(first));
    char *want = slurp_trimmed(expected);
    int ok = rc == BH_EINVAL && rc1 == rc && p == NULL && n >= 1 && strcmp(got, want) == 0 &&
             strncmp(want, first, strlen(first)) == 0 && (n > 1 || strcmp(want, first) == 0);
    if (!ok)
        fprintf(stderr, "%s: rc %d, %zu errors\n  got:  %s\n  want: %s\n", file, rc, n, got, want);
    free(want);
    free(errs);
    pipe_free(p);
    return ok;
}

static void corpus_every_bad_file_fails_with_its_expected_messages(void **state)
{
    (void)state;
    DIR *d = opendir(BAD_DIR);
    assert_non_null(d);
    int files = 0, yaml = 0, failures = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t stem = corpus_stem(e->d_name);
        if (stem == 0)
            continue;
        files++;
        yaml += e->d_name[stem + 1] == 'y';
        failures += !check_bad_file(e->d_name, stem);
    }
    closedir(d);
    assert_int_equal(failures, 0);
    assert_true(files >= 14);
    assert_true(yaml >= 6);
}

static void three_independent_errors_are_all_reported_in_file_order(void **state)
{
    (void)state;
    static const struct {
        int line, col;
        const char *path, *msg;
    } want[] = {
        { 8, 15, "stages.plan", "unknown key \"clearence\" — did you mean \"clearance\"?" },
        { 9, 49, "stages.review.model", "expected a string, found a number — the model name as "
                                        "the endpoint knows it, e.g. \"qwen2.5-coder:7b\"" },
        { 11, 33, "stages.summarize.clearance",
          "unknown label \"secret\" (known: public, internal, confidential, restricted) — labels "
          "are declared in \"labels\", lowest first" },
    };
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n = 0;
    assert_int_equal(pipe_load_all(&p, BAD_DIR "/three-errors.json", NULL, &errs, &n),
                     BH_EINVAL);
    assert_null(p);
    assert_int_equal(n, NELEM(want));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(errs[i].code, BH_EINVAL);
        assert_string_equal(errs[i].file, BAD_DIR "/three-errors.json");
        assert_int_equal(errs[i].line, want[i].line);
        assert_int_equal(errs[i].col, want[i].col);
        assert_string_equal(errs[i].path, want[i].path);
        assert_string_equal(errs[i].msg, want[i].msg);
    }
    free(errs);
}

static void errors_sort_by_position_and_a_template_error_sorts_at_its_prompt(void **state)
{
    (void)state;
    /* stages come first in this file but are checked last; the template's
     * error is positioned in the template and sorted where review names it */
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n = 0;
    assert_int_equal(pipe_load_all(&p, BAD_DIR "/many-errors.json", NULL, &errs, &n), BH_EINVAL);
    assert_int_equal(n, 5);
    assert_string_equal(errs[0].file, BAD_DIR "/prompts/unknown-field.md");
    const int lines[] = { 5, 6, 10, 12 };
    for (size_t i = 1; i < n; i++)
        assert_int_equal(errs[i].line, lines[i - 1]);
    assert_non_null(strstr(errs[2].msg, "stages form a cycle")); /* the graph still ran */
    free(errs);
}

static void load_all_on_success_gives_no_errors_and_accepts_null(void **state)
{
    (void)state;
    struct pipeline *p = NULL;
    static struct bh_err sentinel;
    struct bh_err *errs = &sentinel; /* must be overwritten */
    size_t n = 99;
    assert_int_equal(pipe_load_all(&p, FULL, NULL, &errs, &n), 0);
    assert_non_null(p);
    assert_null(errs);
    assert_int_equal(n, 0);
    pipe_free(p);
    p = NULL;
    assert_int_equal(pipe_load_all(&p, BAD_DIR "/three-errors.json", NULL, NULL, NULL),
                     BH_EINVAL);
    assert_null(p);
}

static struct pipeline *load_ok(const char *path, const struct pipe_load_opts *opts)
{
    struct pipeline *p = NULL;
    struct bh_err err = { 0 };
    char buf[1024];
    int rc = pipe_load(&p, path, opts, &err);
    if (rc)
        fprintf(stderr, "%s\n", bh_err_format(&err, buf, sizeof(buf)));
    assert_int_equal(rc, 0);
    assert_non_null(p);
    return p;
}

static void full_pipeline_keeps_declaration_order_and_every_value(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(FULL, NULL);
    assert_string_equal(p->name, "full");
    assert_int_equal(p->version, 1);
    assert_string_equal(p->dir, "fixtures/pipelines/good");
    assert_int_equal(p->n_stages, 4);
    const char *names[] = { "summarize", "plan", "review", "lint" };
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(p->stages[i].name, names[i]);
        assert_int_equal(pipe_stage_find(p, names[i]), (long)i);
    }
    assert_int_equal(pipe_stage_find(p, "nope"), -1);
    assert_string_equal(p->stages[2].model, "qwen2.5-coder:14b");
    assert_string_equal(p->stages[2].prompt_path, "prompts/review.md");
    assert_string_equal(p->stages[2].tpl.file, "fixtures/pipelines/good/prompts/review.md");
    assert_int_equal(p->stages[0].endpoint, 1);
    assert_int_equal(p->stages[2].endpoint, 0);
    assert_int_equal(p->stages[1].clearance, 1);
    assert_int_equal(p->stages[2].clearance, -1);
    assert_int_equal(p->stages[0].line, 26);
    assert_int_equal(p->stages[0].col, 18);
    assert_int_equal(p->n_outputs, 2);
    assert_string_equal(p->outputs[0].format, "md");
    assert_string_equal(p->outputs[1].format, "jsonl");
    assert_string_equal(p->outputs[1].path, "review.jsonl");
    assert_int_equal(strlen(p->hash), 64);
    pipe_free(p);
}

static void deps_join_after_and_template_reads_without_duplicates(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(FULL, NULL);
    /* summarize: after [review, review] and reads review.output */
    assert_int_equal(p->stages[0].n_deps, 1);
    assert_int_equal(p->stages[0].deps[0], 2);
    assert_int_equal(p->stages[1].n_deps, 0);
    /* review: after [lint, plan] and reads plan.output */
    assert_int_equal(p->stages[2].n_deps, 2);
    assert_int_equal(p->stages[2].deps[0], 3);
    assert_int_equal(p->stages[2].deps[1], 1);
    assert_int_equal(p->stages[3].n_deps, 0);
    pipe_free(p);
}

static void order_is_topological_with_ties_broken_by_declaration(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(FULL, NULL);
    /* plan and lint are ready first: plan is declared first; review then
     * still waits for lint; summarize comes last. */
    const size_t want[] = { 1, 3, 2, 0 };
    for (size_t i = 0; i < NELEM(want); i++)
        assert_int_equal(p->order[i], want[i]);
    pipe_free(p);
}

static void labels_default_and_source_fields_take_their_declared_labels(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(FULL, NULL);
    assert_int_equal(p->n_labels, 4);
    assert_string_equal(p->labels[0], "public");
    assert_string_equal(p->labels[3], "restricted");
    assert_int_equal(pipe_label_find(p, "confidential"), 2);
    assert_int_equal(pipe_label_find(p, "secret"), -1);
    assert_string_equal(p->source.kind, "git");
    assert_int_equal(p->source.label, 2);
    assert_int_equal(p->source.n_fields, 6);
    assert_int_equal(pipe_source_field_label(p, "pr.title"), 1);
    assert_int_equal(pipe_source_field_label(p, "pr.files"), 0);
    assert_int_equal(pipe_source_field_label(p, "pr.diff"), 2);
    assert_int_equal(pipe_source_field_label(p, "pr.number"), 2);
    assert_int_equal(pipe_source_field_label(p, "pr.nope"), -1);
    pipe_free(p);
}

static void minimal_pipeline_gets_every_default(void **state)
{
    (void)state;
    struct pipeline *p = load_ok("fixtures/pipelines/good/minimal.json", NULL);
    assert_int_equal(p->n_labels, 4);
    assert_int_equal(p->source.label, 3); /* unknown means top */
    assert_int_equal(pipe_source_field_label(p, "pr.title"), 3);
    const struct pipe_endpoint *e = &p->endpoints[0];
    assert_string_equal(e->name, "e");
    assert_string_equal(e->provider, "ollama");
    assert_string_equal(e->url, "http://h:1");
    assert_int_equal(e->declared_local, 0); /* a missing locality means cloud */
    assert_int_equal(e->clearance, -1);
    assert_int_equal(e->max_concurrency, 1);
    assert_int_equal(e->timeout_s, 600);
    assert_null(e->api_key_env);
    assert_int_equal(e->line, 1);
    assert_int_equal(e->col, 48);
    assert_int_equal(p->n_outputs, 0);
    assert_int_equal(p->stages[0].clearance, -1);
    assert_int_equal(p->stages[0].tpl.n_parts, 1);
    assert_string_equal(p->dir, "fixtures/pipelines/good");
    pipe_free(p);
}

static void endpoints_expand_variables_and_defaults(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(FULL, NULL);
    const struct pipe_endpoint *gpu = &p->endpoints[0], *cloud = &p->endpoints[1];
    assert_string_equal(gpu->url, "http://127.0.0.1:11434");
    assert_int_equal(gpu->declared_local, 1);
    assert_int_equal(gpu->max_concurrency, 3);
    assert_int_equal(gpu->timeout_s, 120);
    assert_int_equal(gpu->line, 5);
    assert_int_equal(gpu->col, 16);
    assert_string_equal(cloud->url, "https://cloud.example/api");
    assert_int_equal(cloud->declared_local, 0);
    assert_int_equal(cloud->clearance, 1);
    assert_string_equal(cloud->api_key_env, "OLLAMA_API_KEY");
    char old[65];
    memcpy(old, p->hash, sizeof(old));
    pipe_free(p);

    setenv("BH_TEST_LOCAL_URL", "http://10.1.2.3:9", 1);
    p = load_ok(FULL, NULL);
    unsetenv("BH_TEST_LOCAL_URL");
    assert_string_equal(p->endpoints[0].url, "http://10.1.2.3:9");
    assert_string_not_equal(p->hash, old); /* the URL is part of a run's identity */
    pipe_free(p);
}

static void unset_variable_without_default_is_an_error(void **state)
{
    (void)state;
    unsetenv("BH_TEST_CLOUD_URL");
    struct pipeline *p = NULL;
    struct bh_err err = { 0 };
    char buf[1024];
    assert_int_equal(pipe_load(&p, FULL, NULL, &err), BH_EINVAL);
    setenv("BH_TEST_CLOUD_URL", "https://cloud.example", 1);
    assert_null(p);
    assert_string_equal(bh_err_format(&err, buf, sizeof(buf)),
                        FULL ":14:14: endpoints.cloud.url: environment variable "
                             "\"BH_TEST_CLOUD_URL\" is not set — set it, or give a default: "
                             "${BH_TEST_CLOUD_URL:-value}");
}

static void endpoint_overrides_replace_urls_after_expansion(void **state)
{
    (void)state;
    const char *ov[] = { "gpu-box=http://192.168.1.5:11434", "cloud=https://first",
                         "cloud=https://second" };
    struct pipe_load_opts opts = { ov, NELEM(ov) };
    unsetenv("BH_TEST_CLOUD_URL"); /* overridden: its variable need not be set */
    struct pipeline *p = load_ok(FULL, &opts);
    setenv("BH_TEST_CLOUD_URL", "https://cloud.example", 1);
    assert_string_equal(p->endpoints[0].url, "http://192.168.1.5:11434");
    assert_string_equal(p->endpoints[1].url, "https://second"); /* the later one wins */
    pipe_free(p);
}

static void load_error(const char *path, const char *const *ov, size_t n, const char *want)
{
    struct pipe_load_opts opts = { ov, n };
    struct pipeline *p = NULL;
    struct bh_err err = { 0 };
    char buf[1024];
    assert_int_equal(pipe_load(&p, path, &opts, &err), BH_EINVAL);
    assert_null(p);
    assert_string_equal(bh_err_format(&err, buf, sizeof(buf)), want);
}

static void endpoint_override_errors_name_the_option(void **state)
{
    (void)state;
    const char *unknown[] = { "gpu-bx=http://127.0.0.1:1" };
    load_error(FULL, unknown, 1,
               FULL ": --endpoint: unknown endpoint \"gpu-bx\" (known: gpu-box, cloud) — did "
                    "you mean \"gpu-box\"?");
    const char *far[] = { "elsewhere=http://127.0.0.1:1" };
    load_error(FULL, far, 1,
               FULL ": --endpoint: unknown endpoint \"elsewhere\" (known: gpu-box, cloud) — "
                    "--endpoint takes NAME=URL, NAME one of the pipeline's endpoints");
    const char *noeq[] = { "http://127.0.0.1:1" };
    load_error(FULL, noeq, 1,
               FULL ": --endpoint takes NAME=URL, NAME one of the pipeline's endpoints");
    const char *scheme[] = { "cloud=ftp://secret@host" };
    load_error(FULL, scheme, 1,
               FULL ": --endpoint cloud=...: expected a url starting with http:// or https://, "
                    "e.g. \"http://127.0.0.1:11434\"");
}

struct want_part {
    int is_field;
    const char *text;
    int line, col;
};

static void assert_parts(const struct pipe_tpl *t, const struct want_part *w, size_t n)
{
    assert_int_equal(t->n_parts, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t->parts[i].is_field, w[i].is_field);
        assert_string_equal(t->parts[i].text, w[i].text);
        assert_int_equal(t->parts[i].line, w[i].line);
        assert_int_equal(t->parts[i].col, w[i].col);
    }
}

static void templates_split_into_parts_with_character_positions(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(FULL, NULL);
    const struct want_part plan[] = {
        { 0, "Résumé: ", 1, 1 },   { 1, "pr.title", 1, 9 }, /* é is one column */
        { 0, "\nFiles: ", 1, 21 }, { 1, "pr.files", 2, 8 },
        { 0, "\n", 2, 22 },
    };
    assert_parts(&p->stages[1].tpl, plan, NELEM(plan));
    const struct want_part review[] = {
        { 0, "Review this change.\nPlan: ", 1, 1 }, { 1, "plan.output", 2, 7 },
        { 0, "\n\nDiff:\n  ", 2, 22 },             { 1, "pr.diff", 5, 3 },
        { 0, "\n", 5, 18 },
    };
    assert_parts(&p->stages[2].tpl, review, NELEM(review));
    const struct want_part summary[] = {
        { 0, "Summarize for #", 1, 1 }, { 1, "pr.number", 1, 16 },
        { 0, ":\n", 1, 29 },            { 1, "review.output", 2, 1 }, /* tabs trimmed */
        { 0, "\n", 2, 20 },
    };
    assert_parts(&p->stages[0].tpl, summary, NELEM(summary));
    pipe_free(p);
}

static void custom_labels_and_crlf_file_load(void **state)
{
    (void)state;
    struct pipeline *p = load_ok("fixtures/pipelines/good/custom-labels.json", NULL);
    assert_string_equal(p->name, "custom \"labels\" {{x}}");
    assert_int_equal(p->n_labels, 3);
    assert_string_equal(p->labels[2], "high");
    assert_int_equal(p->source.label, 1);
    assert_int_equal(pipe_source_field_label(p, "pr.diff"), 2);
    assert_int_equal(pipe_source_field_label(p, "pr.title"), 1);
    assert_int_equal(p->endpoints[0].clearance, 1);
    assert_int_equal(p->stages[0].clearance, 0);
    assert_int_equal(p->endpoints[0].line, 6);
    assert_int_equal(p->endpoints[0].col, 10);
    pipe_free(p);
}

static void hash_is_stable_and_covers_the_final_urls(void **state)
{
    (void)state;
    struct pipeline *a = load_ok(FULL, NULL), *b = load_ok(FULL, NULL);
    assert_string_equal(a->hash, b->hash);
    const char *ov[] = { "cloud=https://cloud.example/api/" };
    struct pipe_load_opts opts = { ov, 1 };
    struct pipeline *c = load_ok(FULL, &opts);
    assert_string_not_equal(a->hash, c->hash);
    struct pipeline *m = load_ok("fixtures/pipelines/good/minimal.json", NULL);
    assert_string_not_equal(a->hash, m->hash);
    pipe_free(a);
    pipe_free(b);
    pipe_free(c);
    pipe_free(m);
}

static void missing_pipeline_file_is_an_io_error(void **state)
{
    (void)state;
    struct pipeline *p = NULL;
    struct bh_err err = { 0 };
    char buf[1024];
    assert_int_equal(pipe_load(&p, "fixtures/pipelines/none.json", NULL, &err), BH_EIO);
    assert_null(p);
    assert_string_equal(bh_err_format(&err, buf, sizeof(buf)),
                        "fixtures/pipelines/none.json: cannot read the pipeline file: No such "
                        "file or directory");
}

static void api_key_pasted_into_api_key_env_is_never_echoed(void **state)
{
    (void)state;
    struct pipeline *p = NULL;
    struct bh_err err = { 0 };
    char buf[1024];
    assert_int_equal(pipe_load(&p, BAD_DIR "/api-key-literal.json", NULL, &err), BH_EINVAL);
    assert_null(strstr(bh_err_format(&err, buf, sizeof(buf)), "sk-"));
    assert_null(strstr(buf, "0123456789"));
}

static void source_kind_fields_lists_git_and_nothing_else(void **state)
{
    (void)state;
    size_t n = 99;
    const char *const *f = pipe_source_kind_fields("git", &n);
    assert_int_equal(n, 6);
    assert_string_equal(f[0], "pr.number");
    assert_string_equal(f[5], "pr.diff");
    assert_null(pipe_source_kind_fields("svn", &n));
    assert_int_equal(n, 0);
}

/* ---- the position scanner ---- */

struct want_pos {
    const char *path;
    int line, col, key_line, key_col;
};

static void assert_positions(const char *text, const struct want_pos *w, size_t n)
{
    struct pipe_posindex *ix = pipe_posindex_build(text, strlen(text));
    assert_true(pipe_posindex_complete(ix));
    for (size_t i = 0; i < n; i++) {
        const struct pipe_pos *p = pipe_posindex_get(ix, w[i].path);
        if (!p)
            fprintf(stderr, "no position for '%s'\n", w[i].path);
        assert_non_null(p);
        if (p->line != w[i].line || p->col != w[i].col || p->key_line != w[i].key_line ||
            p->key_col != w[i].key_col)
            fprintf(stderr, "'%s': %d:%d key %d:%d\n", w[i].path, p->line, p->col, p->key_line,
                    p->key_col);
        assert_int_equal(p->line, w[i].line);
        assert_int_equal(p->col, w[i].col);
        assert_int_equal(p->key_line, w[i].key_line);
        assert_int_equal(p->key_col, w[i].key_col);
    }
    pipe_posindex_free(ix);
}

static void posindex_everything_on_one_line(void **state)
{
    (void)state;
    /*                 1234567890123456789012345678901234 */
    const char *text = "{\"a\":{\"b\":[1,{\"c\":\"x\"}]},\"d\":true}";
    const struct want_pos w[] = {
        { "", 1, 1, 0, 0 },          { "a", 1, 6, 1, 2 },     { "a.b", 1, 11, 1, 7 },
        { "a.b[0]", 1, 12, 0, 0 },   { "a.b[1]", 1, 14, 0, 0 }, { "a.b[1].c", 1, 19, 1, 15 },
        { "d", 1, 30, 1, 26 },
    };
    assert_positions(text, w, NELEM(w));
    struct pipe_posindex *ix = pipe_posindex_build(text, strlen(text));
    assert_int_equal(pipe_posindex_count(ix), NELEM(w));
    assert_null(pipe_posindex_get(ix, "a.c"));
    pipe_posindex_free(ix);
}

static void posindex_crlf_line_endings(void **state)
{
    (void)state;
    const char *text = "{\r\n  \"k\": \"v\",\r\n  \"n\": [\r\n    2\r\n  ]\r\n}\r\n";
    const struct want_pos w[] = {
        { "k", 2, 8, 2, 3 },
        { "n", 3, 8, 3, 3 },
        { "n[0]", 4, 5, 0, 0 },
    };
    assert_positions(text, w, NELEM(w));
}

static void posindex_strings_with_escaped_quotes_and_braces(void **state)
{
    (void)state;
    /*                  1 2345 678 9 0 1 2 3 4 5678 9 */
    const char *text = "{\"s\": \"a \\\"}\\\" {[\", \"t\": [\"]\\\\\", 5],\n"
                       " \"we\\\"ird\": {\"x.y\": 1}}";
    /* line 1: {"s": "a \"}\" {[", "t": ["]\\", 5], */
    const struct want_pos w[] = {
        { "s", 1, 7, 1, 2 },
        { "t", 1, 26, 1, 21 },
        { "t[0]", 1, 27, 0, 0 },
        { "t[1]", 1, 34, 0, 0 },
        { "[\"we\"ird\"]", 2, 13, 2, 2 },
        { "[\"we\"ird\"][\"x.y\"]", 2, 21, 2, 14 },
    };
    assert_positions(text, w, NELEM(w));
}

static void posindex_counts_unicode_characters_not_bytes(void **state)
{
    (void)state;
    /* "é" and "日本" are one column per character; \u escapes in keys are decoded. */
    const char *text = "{\"é\": \"ü\", \"x\": \"日本\", \"y\": 1,\n"
                       "\"\\u00e9t\\u00e9\": 2, \"\\ud83d\\ude00\": 3}";
    const struct want_pos w[] = {
        { "[\"é\"]", 1, 7, 1, 2 },
        { "x", 1, 17, 1, 12 },
        { "y", 1, 28, 1, 23 },
        { "[\"été\"]", 2, 18, 2, 1 },
        { "[\"😀\"]", 2, 37, 2, 21 },
    };
    assert_positions(text, w, NELEM(w));
}

static void posindex_keeps_what_it_saw_of_broken_text(void **state)
{
    (void)state;
    const char *text = "{\"a\": 1, \"b\": [1, ";
    struct pipe_posindex *ix = pipe_posindex_build(text, strlen(text));
    assert_false(pipe_posindex_complete(ix));
    assert_non_null(pipe_posindex_get(ix, "a"));
    assert_non_null(pipe_posindex_get(ix, "b[0]"));
    pipe_posindex_free(ix);
    ix = pipe_posindex_build("", 0);
    assert_false(pipe_posindex_complete(ix));
    pipe_posindex_free(ix);
    assert_null(pipe_posindex_get(NULL, "a"));
}

static void path_helpers_quote_odd_keys_and_refuse_overflow(void **state)
{
    (void)state;
    char buf[16] = "";
    size_t n = pipe_path_key(buf, sizeof(buf), 0, "source", 6);
    n = pipe_path_key(buf, sizeof(buf), n, "pr.diff", 7);
    assert_int_equal(n, (size_t)-1); /* source["pr.diff"] needs 18 bytes */
    assert_string_equal(buf, "source");
    char big[64] = "";
    n = pipe_path_key(big, sizeof(big), 0, "source", 6);
    n = pipe_path_key(big, sizeof(big), n, "fields", 6);
    n = pipe_path_key(big, sizeof(big), n, "pr.diff", 7);
    assert_string_equal(big, "source.fields[\"pr.diff\"]");
    n = pipe_path_index(big, sizeof(big), n, 12);
    assert_string_equal(big, "source.fields[\"pr.diff\"][12]");
    assert_int_equal(n, strlen(big));
}

/* ---- ${VAR} expansion ---- */

static void expand_env_table(void **state)
{
    (void)state;
    setenv("BH_T_SET", "v", 1);
    setenv("BH_T_EMPTY", "", 1);
    unsetenv("BH_T_UNSET");
    const struct {
        const char *in, *out;
    } ok[] = {
        { "plain", "plain" },
        { "$HOME", "$HOME" },       /* a "$" not followed by "{" is literal */
        { "a$$b", "a$$b" },
        { "trailing $", "trailing $" },
        { "${BH_T_SET}", "v" },
        { "x${BH_T_SET}y${BH_T_SET}", "xvyv" },
        { "${BH_T_UNSET:-http://a:1}", "http://a:1" },
        { "${BH_T_SET:-http://a:1}", "v" },
        { "${BH_T_EMPTY:-d}", "d" }, /* empty counts as unset */
        { "${BH_T_UNSET:-}", "" },
        { "${BH_T_UNSET:-a}b}", "ab}" }, /* the default ends at the first "}" */
        { "$${BH_T_SET}", "$v" },
        /* A default may hold references, expanded only when it is used. */
        { "${BH_T_UNSET:-${BH_T_SET:-x}}", "v" },
        { "${BH_T_UNSET:-${BH_T_EMPTY:-127.0.0.1:11434}}", "127.0.0.1:11434" },
        { "${BH_T_SET:-${BH_T_UNSET}}", "v" },
        { "a${BH_T_UNSET:-[${BH_T_SET}]}b", "a[v]b" },
    };
    for (size_t i = 0; i < NELEM(ok); i++) {
        char *out = NULL;
        struct bh_err err = { 0 };
        assert_int_equal(pipe_expand_env(ok[i].in, &out, &err), 0);
        assert_string_equal(out, ok[i].out);
        free(out);
    }
}

static void expand_env_errors_name_the_variable_not_its_value(void **state)
{
    (void)state;
    setenv("BH_T_EMPTY", "", 1);
    unsetenv("BH_T_UNSET");
    const struct {
        const char *in, *msg;
    } bad[] = {
        { "http://${BH_T_SET", "unterminated \"${\" — close it with \"}\": ${NAME} or "
                               "${NAME:-default}" },
        { "${}", "invalid variable reference \"${}\" — write ${NAME} or ${NAME:-default}, NAME "
                 "made of letters, digits and '_'" },
        { "${1X}", "invalid variable reference \"${1X}\" — write ${NAME} or ${NAME:-default}, "
                   "NAME made of letters, digits and '_'" },
        { "${X-d}", "invalid variable reference \"${X-d}\" — write ${NAME} or ${NAME:-default}, "
                    "NAME made of letters, digits and '_'" },
        { "${BH_T_UNSET}", "environment variable \"BH_T_UNSET\" is not set — set it, or give a "
                           "default: ${BH_T_UNSET:-value}" },
        { "${BH_T_EMPTY}", "environment variable \"BH_T_EMPTY\" is not set — set it, or give a "
                           "default: ${BH_T_EMPTY:-value}" },
    };
    for (size_t i = 0; i < NELEM(bad); i++) {
        char *out = (char *)"untouched";
        struct bh_err err = { 0 };
        assert_int_equal(pipe_expand_env(bad[i].in, &out, &err), BH_EINVAL);
        assert_string_equal(out, "untouched");
        assert_string_equal(err.msg, bad[i].msg);
    }
}

/* OLLAMA_HOST's forms, read as Ollama reads them, for ollama endpoints. */
static void ollama_host_forms_become_urls(void **state)
{
    (void)state;
    static const struct {
        const char *host, *url;
    } cases[] = {
        { "", "http://127.0.0.1:11434" },
        { "gpu-box", "http://gpu-box:11434" },
        { "10.0.0.5:11500", "http://10.0.0.5:11500" },
        { "[::1]", "http://[::1]:11434" },
        { "::1", "http://[::1]:11434" },
        { "[::1]:9", "http://[::1]:9" },
        { "http://gpu-box", "http://gpu-box" }, /* a scheme: left as it is (port 80) */
        { "https://ollama.example:8443/x", "https://ollama.example:8443/x" },
    };
    char dir[] = "/tmp/bh-ohost.XXXXXX", path[64], prompt[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.json", dir);
    snprintf(prompt, sizeof(prompt), "%s/p.md", dir);
    FILE *f = fopen(prompt, "w");
    fputs("{{pr.title}}", f);
    fclose(f);
    f = fopen(path, "w");
    fputs("{\"version\":1,\"name\":\"h\",\"endpoints\":{\"e\":{\"provider\":\"ollama\","
          "\"url\":\"${BH_T_OHOST:-}\",\"locality\":\"local\"}},\"source\":{\"kind\":\"git\"},"
          "\"stages\":{\"s\":{\"endpoint\":\"e\",\"model\":\"m\",\"prompt\":\"p.md\"}}}",
          f);
    fclose(f);
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct pipeline *p = NULL;
        struct bh_err err = { 0 };
        setenv("BH_T_OHOST", cases[i].host, 1);
        if (pipe_load(&p, path, NULL, &err) != 0)
            fail_msg("OLLAMA_HOST '%s': %s", cases[i].host, err.msg);
        assert_string_equal(p->endpoints[0].url, cases[i].url);
        pipe_free(p);
    }
    unsetenv("BH_T_OHOST");
    remove(path);
    remove(prompt);
    rmdir(dir);
}

/* ---- templates on their own ---- */

static int tpl_parse(const char *text, size_t len, struct pipe_tpl *t, struct bh_err *err)
{
    memset(t, 0, sizeof(*t));
    return pipe_tpl_parse(t, "t.md", text, len, err);
}

static void template_syntax_errors_point_into_the_template(void **state)
{
    (void)state;
    const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        { "a\nb {{", "t.md:2:3: unterminated \"{{\" — close the placeholder with \"}}\"" },
        { "x{{ \t }}", "t.md:1:2: empty placeholder — write a field name between the braces, "
                        "e.g. {{ pr.diff }} or {{ plan.output }}" },
        { "é\n  {{ a b }}", "t.md:2:3: invalid placeholder \"{{ a b }}\" — a field name has "
                            "letters, digits, '_', '-' and dots, e.g. {{ pr.diff }}; \"{{\" "
                            "cannot be escaped" },
    };
    for (size_t i = 0; i < NELEM(bad); i++) {
        struct pipe_tpl t;
        struct bh_err err = { 0 };
        char buf[1024];
        assert_int_equal(tpl_parse(bad[i].text, strlen(bad[i].text), &t, &err), BH_EINVAL);
        assert_null(t.parts);
        assert_null(t.file);
        assert_string_equal(bh_err_format(&err, buf, sizeof(buf)), bad[i].msg);
    }
    struct pipe_tpl t;
    struct bh_err err = { 0 };
    char buf[1024];
    assert_int_equal(tpl_parse("ab\ncd\0e", 7, &t, &err), BH_EINVAL);
    assert_string_equal(bh_err_format(&err, buf, sizeof(buf)),
                        "t.md:2:3: the template contains a NUL byte — prompt templates are text "
                        "files");
}

static void template_without_placeholders_is_one_literal(void **state)
{
    (void)state;
    struct pipe_tpl t;
    struct bh_err err = { 0 };
    assert_int_equal(tpl_parse("}} { single } braces", 20, &t, &err), 0);
    assert_int_equal(t.n_parts, 1);
    assert_string_equal(t.parts[0].text, "}} { single } braces");
    assert_string_equal(t.file, "t.md");
    pipe_tpl_release(&t);
    assert_int_equal(tpl_parse("", 0, &t, &err), 0);
    assert_int_equal(t.n_parts, 0);
    pipe_tpl_release(&t);
    assert_int_equal(tpl_parse("{{a}}{{b}}", 10, &t, &err), 0);
    assert_int_equal(t.n_parts, 2); /* no empty literal between */
    assert_int_equal(t.parts[1].col, 6);
    pipe_tpl_release(&t);
}

static void template_check_resolves_fields_and_stage_outputs(void **state)
{
    (void)state;
    const char *fields[] = { "pr.title", "pr.diff" };
    const char *stages[] = { "plan", "review" };
    struct pipe_tpl_scope scope = { fields, 2, stages, 2 };
    assert_int_equal(pipe_tpl_field_stage("review.output", &scope), 1);
    assert_int_equal(pipe_tpl_field_stage("plan.output", &scope), 0);
    assert_int_equal(pipe_tpl_field_stage("pr.diff", &scope), -1);
    assert_int_equal(pipe_tpl_field_stage("plan.result", &scope), -1);
    assert_int_equal(pipe_tpl_field_stage("nope.output", &scope), -1);
    const struct {
        const char *text, *msg;
    } cases[] = {
        { "{{ pr.title }} {{plan.output}}", NULL },
        { "{{ zzz }}", "t.md:1:1: unknown field \"zzz\" — a placeholder names a source field "
                       "(pr.title, pr.diff) or a stage's output (<stage>.output)" },
        { "{{ plan.outptu }}", "t.md:1:1: stage \"plan\" has no field \"outptu\" — a stage "
                               "provides only its output: {{ plan.output }}" },
        { "x {{ qqqqqq.output }}", "t.md:1:3: unknown stage \"qqqqqq\" in {{ qqqqqq.output }} "
                                   "(stages: plan, review) — add the stage or fix the name" },
        { "{{ reviw.output }}", "t.md:1:1: unknown stage \"reviw\" in {{ reviw.output }} "
                                "(stages: plan, review) — did you mean \"review\"?" },
        { "{{ pr.titel }}", "t.md:1:1: unknown field \"pr.titel\" — did you mean \"pr.title\"?" },
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct pipe_tpl t;
        struct bh_err err = { 0 };
        char buf[1024];
        assert_int_equal(tpl_parse(cases[i].text, strlen(cases[i].text), &t, &err), 0);
        int rc = pipe_tpl_check(&t, &scope, &err);
        if (!cases[i].msg) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, BH_EINVAL);
            assert_string_equal(bh_err_format(&err, buf, sizeof(buf)), cases[i].msg);
        }
        pipe_tpl_release(&t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus_every_bad_file_fails_with_its_expected_messages),
        cmocka_unit_test(three_independent_errors_are_all_reported_in_file_order),
        cmocka_unit_test(errors_sort_by_position_and_a_template_error_sorts_at_its_prompt),
        cmocka_unit_test(load_all_on_success_gives_no_errors_and_accepts_null),
        cmocka_unit_test(full_pipeline_keeps_declaration_order_and_every_value),
        cmocka_unit_test(deps_join_after_and_template_reads_without_duplicates),
        cmocka_unit_test(order_is_topological_with_ties_broken_by_declaration),
        cmocka_unit_test(labels_default_and_source_fields_take_their_declared_labels),
        cmocka_unit_test(minimal_pipeline_gets_every_default),
        cmocka_unit_test(endpoints_expand_variables_and_defaults),
        cmocka_unit_test(unset_variable_without_default_is_an_error),
        cmocka_unit_test(endpoint_overrides_replace_urls_after_expansion),
        cmocka_unit_test(endpoint_override_errors_name_the_option),
        cmocka_unit_test(templates_split_into_parts_with_character_positions),
        cmocka_unit_test(custom_labels_and_crlf_file_load),
        cmocka_unit_test(hash_is_stable_and_covers_the_final_urls),
        cmocka_unit_test(missing_pipeline_file_is_an_io_error),
        cmocka_unit_test(api_key_pasted_into_api_key_env_is_never_echoed),
        cmocka_unit_test(source_kind_fields_lists_git_and_nothing_else),
        cmocka_unit_test(posindex_everything_on_one_line),
        cmocka_unit_test(posindex_crlf_line_endings),
        cmocka_unit_test(posindex_strings_with_escaped_quotes_and_braces),
        cmocka_unit_test(posindex_counts_unicode_characters_not_bytes),
        cmocka_unit_test(posindex_keeps_what_it_saw_of_broken_text),
        cmocka_unit_test(path_helpers_quote_odd_keys_and_refuse_overflow),
        cmocka_unit_test(expand_env_table),
        cmocka_unit_test(ollama_host_forms_become_urls),
        cmocka_unit_test(expand_env_errors_name_the_variable_not_its_value),
        cmocka_unit_test(template_syntax_errors_point_into_the_template),
        cmocka_unit_test(template_without_placeholders_is_one_literal),
        cmocka_unit_test(template_check_resolves_fields_and_stage_outputs),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
