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
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/pipeline.h"
#include "pipeline/posindex.h"
#include "pipeline/template.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define BAD_DIR "fixtures/pipelines/bad"
#define FULL "fixtures/pipelines/good/full.json"
#define LANG "fixtures/pipelines/good/language.json"
#define FILES "fixtures/pipelines/good/files.json"

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
    unsetenv("BH_TEST_CF_ID");
    unsetenv("BH_TEST_POOL");
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
    static const char *const exts[] = {".json", ".yaml", ".yml"};
    size_t n = strlen(name);
    for (size_t i = 0; i < BH_NELEM(exts); i++) {
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
    struct bh_err *errs = NULL, one = {0};
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
    assert_true(files - yaml >= 40);
    assert_true(yaml >= 6);
}

static void three_independent_errors_are_all_reported_in_file_order(void **state)
{
    (void)state;
    static const struct {
        int line, col;
        const char *path, *msg;
    } want[] = {
        {8, 15, "stages.plan", "unknown key \"clearence\" — did you mean \"clearance\"?"},
        {9, 49, "stages.review.model",
         "expected a string, found a number — the model name as "
         "the endpoint knows it, e.g. \"qwen2.5-coder:7b\""},
        {11, 33, "stages.summarize.clearance",
         "unknown label \"secret\" (known: public, internal, confidential, restricted) — labels "
         "are declared in \"labels\", lowest first"},
    };
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n = 0;
    assert_int_equal(pipe_load_all(&p, BAD_DIR "/three-errors.json", NULL, &errs, &n), BH_EINVAL);
    assert_null(p);
    assert_int_equal(n, BH_NELEM(want));
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
    const int lines[] = {5, 6, 10, 12};
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
    assert_int_equal(pipe_load_all(&p, BAD_DIR "/three-errors.json", NULL, NULL, NULL), BH_EINVAL);
    assert_null(p);
}

static struct pipeline *load_ok(const char *path, const struct pipe_load_opts *opts)
{
    struct pipeline *p = NULL;
    struct bh_err err = {0};
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
    const char *names[] = {"summarize", "plan", "review", "lint"};
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
    const size_t want[] = {1, 3, 2, 0};
    for (size_t i = 0; i < BH_NELEM(want); i++)
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
    assert_int_equal(p->source.n_fields, 10); /* with the forge's pr.body .. pr.draft */
    assert_int_equal(pipe_source_field_label(p, "pr.title"), 1);
    assert_int_equal(pipe_source_field_label(p, "pr.body"), 2); /* undeclared: source.label */
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
    assert_int_equal(e->max_loaded_models, 0);       /* learnt from the server at run time */
    assert_int_equal(e->max_requests_per_minute, 0); /* no limit */
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

/* Every key of the full language, absent: its documented default. */
static void minimal_pipeline_gets_every_default_of_the_full_language(void **state)
{
    (void)state;
    struct pipeline *p = load_ok("fixtures/pipelines/good/minimal.json", NULL);
    assert_int_equal(p->n_includes, 0);
    const struct pipe_endpoint *e = &p->endpoints[0];
    assert_int_equal(e->n_headers, 0);
    assert_int_equal(e->n_trusted_hosts, 0);
    assert_null(e->included_from);
    assert_null(e->ca_file);        /* the system store */
    assert_null(e->basic_auth_env); /* no login */
    const struct pipe_source *src = &p->source;
    assert_int_equal(src->n_rules, 0);
    assert_int_equal(src->detectors_set, 0); /* every built-in detector */
    assert_int_equal(src->n_detectors, 0);
    assert_int_equal(src->n_custom, 0);
    assert_int_equal(src->n_allow_paths + src->n_allow_values, 0);
    assert_int_equal(src->n_include + src->n_exclude, 0);
    assert_int_equal(src->max_bytes, 1048576);
    const struct pipe_stage *s = &p->stages[0];
    assert_int_equal(s->kind, PIPE_KIND_CHAT);
    assert_int_equal(s->scope, PIPE_SCOPE_ITEM);
    assert_null(s->for_each);
    assert_int_equal(s->for_each_stage, -1);
    assert_int_equal(s->n_tools, 0);
    assert_int_equal(s->max_steps, 8);
    assert_int_equal(s->max_items, 20);
    assert_int_equal(s->out_format, PIPE_OUT_TEXT);
    assert_null(s->out_schema_path);
    assert_null(s->out_schema_json);
    assert_int_equal(s->on_sensitive, PIPE_ONS_FAIL);
    assert_int_equal(s->reroute, -1);
    assert_int_equal(s->standby, 0);
    assert_int_equal(s->declassify.enabled, 0);
    assert_int_equal(s->system.n_parts, 0);
    assert_int_equal(s->n_reads, 0);
    assert_non_null(s->prompt_path);
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
    assert_int_equal(gpu->max_loaded_models, 2);
    assert_int_equal(cloud->max_requests_per_minute, 600);
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
    struct bh_err err = {0};
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
    const char *ov[] = {"gpu-box=http://192.168.1.5:11434", "cloud=https://first",
                        "cloud=https://second"};
    struct pipe_load_opts opts = {ov, BH_NELEM(ov)};
    unsetenv("BH_TEST_CLOUD_URL"); /* overridden: its variable need not be set */
    struct pipeline *p = load_ok(FULL, &opts);
    setenv("BH_TEST_CLOUD_URL", "https://cloud.example", 1);
    assert_string_equal(p->endpoints[0].url, "http://192.168.1.5:11434");
    assert_string_equal(p->endpoints[1].url, "https://second"); /* the later one wins */
    pipe_free(p);
}

static void load_error(const char *path, const char *const *ov, size_t n, const char *want)
{
    struct pipe_load_opts opts = {ov, n};
    struct pipeline *p = NULL;
    struct bh_err err = {0};
    char buf[1024];
    assert_int_equal(pipe_load(&p, path, &opts, &err), BH_EINVAL);
    assert_null(p);
    assert_string_equal(bh_err_format(&err, buf, sizeof(buf)), want);
}

static void endpoint_override_errors_name_the_option(void **state)
{
    (void)state;
    const char *unknown[] = {"gpu-bx=http://127.0.0.1:1"};
    load_error(FULL, unknown, 1,
               FULL ": --endpoint: unknown endpoint \"gpu-bx\" (known: gpu-box, cloud) — did "
                    "you mean \"gpu-box\"?");
    const char *far[] = {"elsewhere=http://127.0.0.1:1"};
    load_error(FULL, far, 1,
               FULL ": --endpoint: unknown endpoint \"elsewhere\" (known: gpu-box, cloud) — "
                    "--endpoint takes NAME=URL, NAME one of the pipeline's endpoints");
    const char *noeq[] = {"http://127.0.0.1:1"};
    load_error(FULL, noeq, 1,
               FULL ": --endpoint takes NAME=URL, NAME one of the pipeline's endpoints");
    const char *scheme[] = {"cloud=ftp://secret@host"};
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
        {0, "Résumé: ", 1, 1},   {1, "pr.title", 1, 9}, /* é is one column */
        {0, "\nFiles: ", 1, 21}, {1, "pr.files", 2, 8}, {0, "\n", 2, 22},
    };
    assert_parts(&p->stages[1].tpl, plan, BH_NELEM(plan));
    const struct want_part review[] = {
        {0, "Review this change.\nPlan: ", 1, 1},
        {1, "plan.output", 2, 7},
        {0, "\n\nDiff:\n  ", 2, 22},
        {1, "pr.diff", 5, 3},
        {0, "\n", 5, 18},
    };
    assert_parts(&p->stages[2].tpl, review, BH_NELEM(review));
    const struct want_part summary[] = {
        {0, "Summarize for #", 1, 1},
        {1, "pr.number", 1, 16},
        {0, ":\n", 1, 29},
        {1, "review.output", 2, 1}, /* tabs trimmed */
        {0, "\n", 2, 20},
    };
    assert_parts(&p->stages[0].tpl, summary, BH_NELEM(summary));
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
    const char *ov[] = {"cloud=https://cloud.example/api/"};
    struct pipe_load_opts opts = {ov, 1};
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
    struct bh_err err = {0};
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
    struct bh_err err = {0};
    char buf[1024];
    assert_int_equal(pipe_load(&p, BAD_DIR "/api-key-literal.json", NULL, &err), BH_EINVAL);
    assert_null(strstr(bh_err_format(&err, buf, sizeof(buf)), "sk-"));
    assert_null(strstr(buf, "0123456789"));
}

static void source_kind_fields_lists_git_and_files(void **state)
{
    (void)state;
    size_t n = 99;
    const char *const *f = pipe_source_kind_fields("git", &n);
    assert_int_equal(n, 10);
    assert_string_equal(f[0], "pr.number");
    assert_string_equal(f[5], "pr.diff");
    assert_string_equal(f[6], "pr.body"); /* the forge's fields (--pulls-from) follow */
    assert_string_equal(f[9], "pr.draft");
    f = pipe_source_kind_fields("files", &n);
    assert_int_equal(n, 3);
    assert_string_equal(f[0], "doc.path");
    assert_string_equal(f[1], "doc.text");
    assert_string_equal(f[2], "doc.size");
    assert_null(pipe_source_kind_fields("svn", &n));
    assert_int_equal(n, 0);
}

/* ---- the full language: every key parses ---- */

static void include_merges_endpoints_after_the_files_own(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    assert_int_equal(p->n_includes, 1);
    assert_string_equal(p->includes[0], "fixtures/pipelines/good/shared/endpoints.json");
    assert_int_equal(p->n_endpoints, 2);
    const struct pipe_endpoint *cloud = &p->endpoints[0], *gpu = &p->endpoints[1];
    assert_string_equal(cloud->name, "cloud");
    assert_null(cloud->included_from);
    assert_string_equal(gpu->name, "gpu-box");
    assert_string_equal(gpu->included_from, "fixtures/pipelines/good/shared/endpoints.json");
    assert_int_equal(gpu->line, 6); /* in the included file */
    assert_int_equal(gpu->col, 16);
    assert_int_equal(gpu->max_concurrency, 2);
    assert_int_equal(p->stages[2].endpoint, 1); /* review runs on the included gpu-box */
    pipe_free(p);
}

static void endpoint_headers_expand_and_trusted_hosts_parse(void **state)
{
    (void)state;
    setenv("BH_TEST_CF_ID", "from-the-environment", 1);
    struct pipeline *p = load_ok(LANG, NULL);
    unsetenv("BH_TEST_CF_ID");
    const struct pipe_endpoint *cloud = &p->endpoints[0], *gpu = &p->endpoints[1];
    assert_int_equal(cloud->n_headers, 2);
    assert_string_equal(cloud->headers[0].name, "CF-Access-Client-Id");
    assert_string_equal(cloud->headers[0].value, "from-the-environment");
    assert_string_equal(cloud->headers[1].name, "X-Team");
    assert_string_equal(cloud->headers[1].value, "review");
    assert_int_equal(cloud->n_trusted_hosts, 0);
    assert_int_equal(gpu->n_headers, 1);
    assert_string_equal(gpu->headers[0].value, "a100"); /* the ${VAR:-default} */
    const char *hosts[] = {"gpu.vpn.example", "10.8.0.0/16", "fd00::/8", "192.168.7.3", "fd00::5"};
    assert_int_equal(gpu->n_trusted_hosts, BH_NELEM(hosts));
    for (size_t i = 0; i < BH_NELEM(hosts); i++)
        assert_string_equal(gpu->trusted_hosts[i], hosts[i]);
    assert_int_equal(p->n_trusted_networks, 2); /* the top level's, for every local endpoint */
    assert_string_equal(p->trusted_networks[0], "10.8.0.0/16");
    assert_string_equal(p->trusted_networks[1], "fd00::/8");
    pipe_free(p);
}

static void enforce_local_is_read_and_defaults_to_auto(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    assert_int_equal(p->endpoints[0].enforce_local, PIPE_ENFORCE_AUTO); /* not written */
    assert_int_equal(p->endpoints[1].enforce_local, PIPE_ENFORCE_REQUIRE);
    pipe_free(p);
    p = load_ok("fixtures/pipelines/good/minimal.json", NULL);
    for (size_t i = 0; i < p->n_endpoints; i++)
        assert_int_equal(p->endpoints[i].enforce_local, PIPE_ENFORCE_AUTO);
    pipe_free(p);
}

static void source_rules_detectors_and_allow_parse(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    const struct pipe_source *s = &p->source;
    assert_int_equal(s->n_rules, 2);
    assert_string_equal(s->rules[0].glob, "docs/**");
    assert_int_equal(s->rules[0].label, 1);
    assert_int_equal(s->rules[0].line, 24);
    assert_int_equal(s->rules[0].col, 7);
    assert_string_equal(s->rules[1].glob, "**/*.pem");
    assert_int_equal(s->rules[1].label, 3);
    assert_int_equal(s->detectors_set, 1);
    assert_int_equal(s->n_detectors, 2); /* as written, groups not expanded */
    assert_string_equal(s->detectors[0], "cloud-keys");
    assert_string_equal(s->detectors[1], "email");
    assert_int_equal(s->n_custom, 1);
    assert_string_equal(s->custom[0].id, "acme-ticket");
    assert_string_equal(s->custom[0].regex, "ACME-[0-9]{6}");
    assert_int_equal(s->custom[0].label, 2);
    assert_int_equal(s->n_allow_paths, 1);
    assert_string_equal(s->allow_paths[0], "tests/fixtures/**");
    assert_int_equal(s->n_allow_values, 1);
    assert_string_equal(s->allow_values[0], "AKIAIOSFODNN7EXAMPLE");
    pipe_free(p);
}

static void files_source_has_document_fields_and_keys(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(FILES, NULL);
    const struct pipe_source *s = &p->source;
    assert_string_equal(s->kind, "files");
    assert_int_equal(pipe_source_field_label(p, "doc.path"), 1);
    assert_int_equal(pipe_source_field_label(p, "doc.size"), 0);
    assert_int_equal(pipe_source_field_label(p, "doc.text"), 2);
    assert_int_equal(pipe_source_field_label(p, "pr.diff"), -1);
    assert_int_equal(s->n_include, 2);
    assert_string_equal(s->include[1], "notes/*.txt");
    assert_int_equal(s->n_exclude, 1);
    assert_string_equal(s->exclude[0], "drafts/**");
    assert_int_equal(s->max_bytes, 262144);
    assert_int_equal(s->detectors_set, 1); /* [] turns every detector off */
    assert_int_equal(s->n_detectors + s->n_custom, 0);
    assert_int_equal(p->stages[1].scope, PIPE_SCOPE_BATCH);
    assert_int_equal(p->stages[1].kind, PIPE_KIND_CHAT);
    pipe_free(p);
}

static void inline_messages_are_templates_positioned_at_their_value(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    const struct pipe_stage *plan = &p->stages[0];
    assert_null(plan->prompt_path);
    assert_string_equal(plan->tpl.file, LANG);
    const struct want_part user[] = {
        {0, "Title: ", 39, 15},
        {1, "pr.title", 39, 15},
        {0, "\nFiles: ", 39, 15},
        {1, "pr.files", 39, 15},
    };
    assert_parts(&plan->tpl, user, BH_NELEM(user));
    assert_int_equal(plan->system.n_parts, 1);
    assert_string_equal(plan->system.parts[0].text,
                        "You plan code reviews. Reply with a JSON array of paths.");
    assert_int_equal(plan->system.parts[0].line, 38);
    assert_string_equal(p->stages[2].prompt_path, "prompts/each-file.md");
    assert_int_equal(p->stages[2].system.n_parts, 0);
    pipe_free(p);
}

static void reads_list_distinct_fields_system_first(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    const struct {
        size_t stage;
        const char *reads[4];
        size_t n;
    } want[] = {
        {0, {"pr.title", "pr.files"}, 2},
        {2, {"each.path", "each.status", "plan.output", "each.diff"}, 4},
        {3, {"each", "pr.diff"}, 2},
        {4, {"review.output"}, 1},
    };
    for (size_t i = 0; i < BH_NELEM(want); i++) {
        const struct pipe_stage *s = &p->stages[want[i].stage];
        assert_int_equal(s->n_reads, want[i].n);
        for (size_t k = 0; k < want[i].n; k++)
            assert_string_equal(s->reads[k], want[i].reads[k]);
    }
    pipe_free(p);
    /* a system message's reads come first, each field once */
    p = load_ok("fixtures/pipelines/good/reads.json", NULL);
    const char *order[] = {"pr.title", "pr.files", "pr.diff"};
    assert_int_equal(p->stages[0].n_reads, BH_NELEM(order));
    for (size_t k = 0; k < BH_NELEM(order); k++)
        assert_string_equal(p->stages[0].reads[k], order[k]);
    pipe_free(p);
}

static void for_each_scope_kind_and_limits_parse(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    const struct pipe_stage *review = &p->stages[2], *check = &p->stages[3];
    const struct pipe_stage *digest = &p->stages[4];
    assert_string_equal(review->for_each, "pr.files");
    assert_int_equal(review->for_each_stage, -1);
    assert_int_equal(review->kind, PIPE_KIND_AGENT);
    assert_int_equal(review->scope, PIPE_SCOPE_ITEM);
    assert_int_equal(review->n_tools, 3);
    assert_string_equal(review->tools[0], "read_file");
    assert_string_equal(review->tools[2], "git_log");
    assert_int_equal(review->max_steps, 12);
    assert_string_equal(check->for_each, "plan.output");
    assert_int_equal(check->for_each_stage, 0);
    assert_int_equal(check->n_deps, 1); /* the for_each list's stage is waited for */
    assert_int_equal(check->deps[0], 0);
    assert_int_equal(digest->kind, PIPE_KIND_REDUCE);
    assert_int_equal(digest->scope, PIPE_SCOPE_BATCH); /* reduce implies batch */
    assert_int_equal(digest->max_items, 50);
    pipe_free(p);
}

static void output_schema_is_read_compact_and_implies_json(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    const struct pipe_stage *plan = &p->stages[0], *review = &p->stages[2];
    assert_int_equal(plan->out_format, PIPE_OUT_JSON); /* no format: the schema says json */
    assert_string_equal(plan->out_schema_path, "schemas/plan.json");
    assert_string_equal(plan->out_schema_json,
                        "{\"description\":\"the files worth a closer look\",\"items\":"
                        "{\"type\":\"string\"},\"type\":\"array\"}");
    assert_int_equal(review->out_format, PIPE_OUT_TEXT);
    assert_null(review->out_schema_json);
    pipe_free(p);
}

static void on_sensitive_reroute_makes_the_target_standby(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    assert_int_equal(p->stages[0].on_sensitive, PIPE_ONS_REROUTE);
    assert_int_equal(p->stages[0].reroute, 1);
    assert_int_equal(p->stages[0].standby, 0);
    assert_int_equal(p->stages[1].standby, 1);
    assert_int_equal(p->stages[1].on_sensitive, PIPE_ONS_FAIL);
    assert_int_equal(p->stages[1].reroute, -1);
    assert_int_equal(p->stages[2].on_sensitive, PIPE_ONS_SKIP);
    assert_int_equal(p->stages[2].reroute, -1);
    pipe_free(p);
}

static void declassify_parses_guards_and_defaults(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(LANG, NULL);
    const struct pipe_declassify *d = &p->stages[2].declassify, *dd = &p->stages[4].declassify;
    assert_int_equal(d->enabled, 1);
    assert_int_equal(d->to, 1);
    assert_int_equal(d->no_verbatim_tokens, 12);
    assert_int_equal(d->no_rare_tokens, 0);
    assert_int_equal(d->detectors, 0);
    assert_int_equal(d->redact_code, 1);
    assert_int_equal(d->redact_paths, 1);
    assert_int_equal(d->max_chars, 4000);
    assert_int_equal(d->line, 59);
    assert_int_equal(d->col, 21);
    assert_int_equal(dd->enabled, 1); /* only "to": every default */
    assert_int_equal(dd->to, 1);
    assert_int_equal(dd->no_verbatim_tokens, 8);
    assert_int_equal(dd->no_rare_tokens, 1);
    assert_int_equal(dd->detectors, 1);
    assert_int_equal(dd->redact_code + dd->redact_paths, 0);
    assert_int_equal(dd->max_chars, 0);
    assert_int_equal(p->stages[0].declassify.enabled, 0);
    pipe_free(p);
}

static void endpoint_override_reaches_an_included_endpoint(void **state)
{
    (void)state;
    const char *ov[] = {"gpu-box=http://10.8.0.9:11434"};
    struct pipe_load_opts opts = {ov, 1};
    struct pipeline *p = load_ok(LANG, &opts);
    assert_string_equal(p->endpoints[1].url, "http://10.8.0.9:11434");
    pipe_free(p);
}

static void language_helpers_name_for_each_fields_tools_and_content(void **state)
{
    (void)state;
    size_t n = 99;
    const char *const *f = pipe_for_each_fields("pr.files", &n);
    assert_int_equal(n, 3);
    assert_string_equal(f[0], "each.path");
    assert_string_equal(f[1], "each.status");
    assert_string_equal(f[2], "each.diff");
    f = pipe_for_each_fields("plan.output", &n);
    assert_int_equal(n, 1);
    assert_string_equal(f[0], "each");
    assert_null(pipe_for_each_fields(NULL, &n));
    assert_int_equal(n, 0);
    const char *const *t = pipe_tool_names(&n);
    const char *tools[] = {"read_file", "list_files", "grep", "git_log", "diff"};
    assert_int_equal(n, BH_NELEM(tools));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(t[i], tools[i]);
    assert_true(pipe_field_is_content("pr.diff"));
    assert_true(pipe_field_is_content("each.diff"));
    assert_true(pipe_field_is_content("doc.text"));
    assert_false(pipe_field_is_content("pr.files"));
    assert_false(pipe_field_is_content("each.path"));
    assert_false(pipe_field_is_content("doc.path"));
    assert_false(pipe_field_is_content(NULL));
}

/* ---- the full language: hashing included bytes ---- */

static void copy_file(const char *from, const char *to, const char *append)
{
    size_t n = 0;
    char *buf = bh_xcalloc(1, 65536);
    FILE *f = fopen(from, "rb");
    assert_non_null(f);
    n = fread(buf, 1, 65535, f);
    fclose(f);
    f = fopen(to, "wb");
    assert_non_null(f);
    fwrite(buf, 1, n, f);
    if (append)
        fputs(append, f);
    fclose(f);
    free(buf);
}

/* A copy of language.json and what it reads in dir; the included file and
 * the schema get extra (harmless) bytes when asked. */
static void language_copy(const char *dir, const char *inc_extra, const char *schema_extra)
{
    static const char *const sub[] = {"shared", "schemas", "prompts"};
    char a[512], b[512];
    for (size_t i = 0; i < BH_NELEM(sub); i++) {
        snprintf(a, sizeof(a), "%s/%s", dir, sub[i]);
        mkdir(a, 0700);
    }
    snprintf(b, sizeof(b), "%s/language.json", dir);
    copy_file(LANG, b, NULL);
    snprintf(b, sizeof(b), "%s/shared/endpoints.json", dir);
    copy_file("fixtures/pipelines/good/shared/endpoints.json", b, inc_extra);
    snprintf(b, sizeof(b), "%s/schemas/plan.json", dir);
    copy_file("fixtures/pipelines/good/schemas/plan.json", b, schema_extra);
    snprintf(b, sizeof(b), "%s/prompts/each-file.md", dir);
    copy_file("fixtures/pipelines/good/prompts/each-file.md", b, NULL);
}

static void language_remove(const char *dir)
{
    static const char *const files[] = {"language.json",
                                        "shared/endpoints.json",
                                        "schemas/plan.json",
                                        "prompts/each-file.md",
                                        "shared",
                                        "schemas",
                                        "prompts",
                                        ""};
    char path[512];
    for (size_t i = 0; i < BH_NELEM(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        remove(path);
    }
}

static void hash_covers_included_files_and_output_schemas(void **state)
{
    (void)state;
    char dir[] = "/tmp/bh-lang.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/language.json", dir);
    char hashes[3][65];
    const char *inc[] = {NULL, "\n", NULL}, *schema[] = {NULL, NULL, "\n"};
    for (size_t i = 0; i < 3; i++) {
        language_copy(dir, inc[i], schema[i]);
        struct pipeline *p = load_ok(path, NULL);
        memcpy(hashes[i], p->hash, sizeof(hashes[i]));
        pipe_free(p);
    }
    language_remove(dir);
    assert_string_not_equal(hashes[0], hashes[1]); /* one more byte in the included file */
    assert_string_not_equal(hashes[0], hashes[2]); /* one more byte in the schema */
    assert_string_not_equal(hashes[1], hashes[2]);
}

/* ---- the full language: errors ---- */

/* The first error of a corpus file, exactly: one per new key. */
/* The integer keys' range rows: each key refuses one below its minimum and
 * one above its maximum with the same message, its hint (on a value of the
 * wrong type) states the same bounds, and its maximum loads. A row whose
 * bounds moved without this table fails here. */
struct range_case {
    const char *path, *key, *stem; /* stem: the hint without its bounds */
    long min, max;
    int stage; /* 0 an endpoint's key, 1 a stage's, 2 a declassify's, 3 the source's */
};

static const struct range_case range_cases[] = {
    {"endpoints.gpu-box.max_concurrency", "max_concurrency", "parallel requests", 1, 64, 0},
    {"endpoints.gpu-box.timeout_s", "timeout_s", "seconds per request", 1, 86400, 0},
    {"endpoints.gpu-box.connect_timeout_s", "connect_timeout_s", "seconds to open a connection", 1,
     600, 0},
    {"endpoints.gpu-box.first_byte_timeout_s", "first_byte_timeout_s",
     "seconds until the reply's first byte", 1, 86400, 0},
    {"endpoints.gpu-box.idle_timeout_s", "idle_timeout_s", "seconds between two chunks of a reply",
     1, 86400, 0},
    {"endpoints.gpu-box.max_attempts", "max_attempts", "tries of a request that fails transiently",
     1, 10, 0},
    {"endpoints.gpu-box.max_loaded_models", "max_loaded_models", "models the server holds at once",
     1, 64, 0},
    {"endpoints.gpu-box.max_requests_per_minute", "max_requests_per_minute",
     "requests started per minute", 1, 100000, 0},
    {"stages.s.max_steps", "max_steps", "model requests per agent task", 1, 64, 1},
    {"stages.s.declassify.no_verbatim_tokens", "no_verbatim_tokens",
     "the shortest run of input tokens the output may not repeat (0: off)", 0, 1000, 2},
    {"stages.s.declassify.max_chars", "max_chars",
     "the longest output that may be declassified, in characters", 1, 10000000, 2},
    {"source.max_bytes", "max_bytes", "the largest document read, in bytes", 1, 1073741824, 3},
};

/* Loads a one-stage pipeline with KEY: VALUE where c puts it; NULL when it
 * loads (freed), else the formatted error in buf. */
static const char *range_load(const struct range_case *c, const char *value, char *buf, size_t n)
{
    char path[] = "/tmp/bh-range-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    char ep[128] = "", st[128] = "", dc[128] = "", src[128] = "", decl[192] = "";
    char *at = c->stage == 0 ? ep : c->stage == 1 ? st : c->stage == 2 ? dc : src;
    snprintf(at, 128, ", \"%s\": %s", c->key, value);
    if (c->stage == 2)
        snprintf(decl, sizeof(decl), ", \"declassify\": {\"to\": \"internal\"%s}", dc);
    fprintf(f,
            "{\"version\": 1, \"name\": \"r\", \"endpoints\": {\"gpu-box\": {\"provider\": "
            "\"ollama\", \"url\": \"http://127.0.0.1:11434\", \"locality\": \"local\"%s}},\n"
            "\"source\": {\"kind\": \"%s\"%s},\n"
            "\"stages\": {\"s\": {\"endpoint\": \"gpu-box\", \"model\": \"m\", \"user\": \"%s\"%s%s"
            "%s}}}\n",
            ep, c->stage == 3 ? "files" : "git", src,
            c->stage == 3 ? "{{doc.text}}" : "{{pr.diff}}",
            c->stage == 1 ? ", \"kind\": \"agent\"" : "", st, decl);
    fclose(f);
    struct pipeline *p = NULL;
    struct bh_err err = {0};
    int rc = pipe_load(&p, path, NULL, &err);
    unlink(path);
    pipe_free(p);
    if (rc == 0)
        return NULL;
    return strstr(bh_err_format(&err, buf, n), c->path);
}

static void integer_keys_refuse_values_outside_their_range_row(void **state)
{
    (void)state;
    char buf[1024], want[512], v[32];
    for (size_t i = 0; i < BH_NELEM(range_cases); i++) {
        const struct range_case *c = &range_cases[i];
        const long out[] = {c->min - 1, c->max + 1};
        for (size_t k = 0; k < 2; k++) {
            snprintf(v, sizeof(v), "%ld", out[k]);
            snprintf(want, sizeof(want), "%s: expected an integer from %ld to %ld, found %ld",
                     c->path, c->min, c->max, out[k]);
            const char *got = range_load(c, v, buf, sizeof(buf));
            assert_non_null(got);
            assert_string_equal(got, want);
        }
        snprintf(want, sizeof(want), "%s: expected an integer, found a string — %s, %ld to %ld",
                 c->path, c->stem, c->min, c->max);
        const char *got = range_load(c, "\"8\"", buf, sizeof(buf));
        assert_non_null(got);
        assert_string_equal(got, want);
        snprintf(v, sizeof(v), "%ld", c->max);
        assert_null(range_load(c, v, buf, sizeof(buf)));
    }
}

static void every_new_key_fails_with_its_exact_message(void **state)
{
    (void)state;
    static const struct {
        const char *file, *msg;
    } cases[] = {
        {"include-nested.json", BAD_DIR
         "/shared/nested.json:2:3: an included file cannot include "
         "other files: include is one level deep — list those files in the including file's "
         "\"include\" instead"},
        {"header-reserved.json",
         BAD_DIR "/header-reserved.json:5:56: endpoints.gpu-box.headers: "
                 "header \"content-type\" is set by bulkhead itself — remove it"},
        {"header-api-key-conflict.json", BAD_DIR
         "/header-api-key-conflict.json:5:76: "
         "endpoints.gpu-box.headers: header \"authorization\" conflicts with \"api_key_env\": "
         "bulkhead sends the key from OLLAMA_API_KEY itself (as Authorization: Bearer, or "
         "x-api-key for anthropic) — remove the header or \"api_key_env\""},
        {"trusted-hosts-cloud.json", BAD_DIR
         "/trusted-hosts-cloud.json:4:97: "
         "endpoints.cloud.trusted_hosts: \"trusted_hosts\" has no effect on an endpoint that is "
         "not declared local — add \"locality\": \"local\", or remove \"trusted_hosts\""},
        {"enforce-local-bad.json", BAD_DIR
         "/enforce-local-bad.json:5:111: "
         "endpoints.gpu-box.enforce_local: unknown enforce_local value \"requir\" (valid: auto, "
         "require, off) — did you mean \"require\"?"},
        {"enforce-local-cloud.json", BAD_DIR
         "/enforce-local-cloud.json:5:84: "
         "endpoints.cloud.enforce_local: \"enforce_local\" has no effect on an endpoint that is "
         "not declared local — add \"locality\": \"local\", or remove \"enforce_local\""},
        {"enforce-local-provider.json", BAD_DIR
         "/enforce-local-provider.json:5:108: "
         "endpoints.llama.enforce_local: \"enforce_local\" is for \"ollama\" endpoints (this one "
         "speaks \"openai\") — remove it"},
        {"trusted-hosts-invalid.json", BAD_DIR
         "/trusted-hosts-invalid.json:5:48: "
         "endpoints.gpu-box.trusted_hosts[0]: invalid CIDR block \"10.8.0.0/33\": the prefix of "
         "an IPv4 block is 1 to 32"},
        {"files-only-keys.json",
         BAD_DIR "/files-only-keys.json:5:41: source.include: \"include\" "
                 "is only for kind \"files\" (this source is kind \"git\") — remove it"},
        {"max-bytes-range.json",
         BAD_DIR "/max-bytes-range.json:5:43: source.include: expected "
                 "at least one glob, found none — leave \"include\" out to read every file"},
        {"rule-bad-glob.json",
         BAD_DIR "/rule-bad-glob.json:8:17: source.rules[0].path: invalid "
                 "path glob \"docs/[a\": unclosed '[' — write \"\\[\" for a literal bracket"},
        {"detector-unknown.json", BAD_DIR
         "/detector-unknown.json:5:44: source.detectors[0]: "
         "unknown detector \"emial\" (known groups: private-key, cloud-keys, tokens, email, "
         "card, iban, ssn, internal-ip; or a detector id such as \"aws-access-key\") — did you "
         "mean \"email\"?"},
        {"detector-custom.json",
         BAD_DIR "/detector-custom.json:9:15: source.detectors[1].id: "
                 "detector id \"email\" is the name of a built-in detector — choose another, e.g. "
                 "\"acme-email\""},
        {"allow-empty.json", BAD_DIR
         "/allow-empty.json:5:39: source.allow: expected \"paths\" or "
         "\"values\", found neither — e.g. { \"paths\": [\"tests/fixtures/**\"] }, or remove "
         "\"allow\""},
        {"prompt-and-user.json",
         BAD_DIR "/prompt-and-user.json:7:89: stages.review.user: give "
                 "either \"prompt\" (a template file) or \"user\" (the message inline), not both"},
        {"prompt-or-user-missing.json",
         BAD_DIR "/prompt-or-user-missing.json:7:15: "
                 "stages.review: missing required key \"prompt\" or \"user\" — the user message: "
                 "\"prompt\" names a template file, relative to the pipeline file (e.g. "
                 "\"prompts/review.md\"); \"user\" holds it inline"},
        {"each-outside-for-each.json", BAD_DIR
         "/each-outside-for-each.json:7:62: "
         "stages.review.user: field \"each.path\" is only defined in a stage with for_each — add "
         "\"for_each\": \"pr.files\" (each.path, each.status, each.diff) or \"for_each\": "
         "\"STAGE.output\" (each) to the stage"},
        {"for-each-text-output.json", BAD_DIR
         "/for-each-text-output.json:8:65: "
         "stages.check.for_each: for_each reads a list: give \"plan\" an output of format json — "
         "add \"output\": { \"format\": \"json\" } to stage \"plan\", and have its prompt ask "
         "for a JSON array"},
        {"for-each-batch.json", BAD_DIR
         "/for-each-batch.json:7:87: stages.review.scope: "
         "\"scope\": \"batch\" makes one task over every item, for_each a task per element — "
         "remove one of them"},
        {"reduce-scope-item.json", BAD_DIR
         "/reduce-scope-item.json:7:79: stages.digest.kind: "
         "kind \"reduce\" folds every item of the run: it always has \"scope\": \"batch\" — "
         "remove \"scope\": \"item\""},
        {"tools-without-agent.json",
         BAD_DIR "/tools-without-agent.json:7:86: "
                 "stages.review.tools: \"tools\" is only for kind \"agent\" (this stage is kind "
                 "\"chat\") — add \"kind\": \"agent\", or remove \"tools\""},
        {"max-steps-range.json", BAD_DIR "/max-steps-range.json:7:84: stages.review.max_steps: "
                                         "expected an integer from 1 to 64, found 65"},
        {"output-text-with-schema.json", BAD_DIR
         "/output-text-with-schema.json:7:116: "
         "stages.plan.output.schema: a schema describes JSON: \"format\": \"text\" cannot have "
         "one — write \"format\": \"json\", or remove \"schema\""},
        {"output-schema-syntax.json", BAD_DIR
         "/schemas/broken.json:4:1: invalid JSON: string or "
         "'}' expected near '}' — is there a comma before the \"}\"? JSON allows no trailing "
         "comma"},
        {"on-sensitive-unknown.json",
         BAD_DIR "/on-sensitive-unknown.json:10:90: "
                 "stages.plan.on_sensitive: unknown on_sensitive \"skipp\" (valid: fail, skip, "
                 "reroute:STAGE) — did you mean \"skip\"?"},
        {"reroute-chain.json",
         BAD_DIR "/reroute-chain.json:10:90: stages.plan.on_sensitive: "
                 "\"plan-2\" reroutes to \"plan-local\" itself, and reroutes do not chain — write "
                 "\"reroute:plan-local\" for \"plan\""},
        {"reroute-standby-read.json", BAD_DIR
         "/reroute-standby-read.json:13:64: "
         "stages.review.system: \"plan-local\" runs only in place of \"plan\"; read plan.output "
         "— it holds what \"plan-local\" wrote when \"plan\" was rerouted"},
        {"declassify-bad.json", BAD_DIR
         "/declassify-bad.json:9:29: stages.review.declassify.to: "
         "unknown label \"publik\" (known: public, internal, confidential, restricted) — did "
         "you mean \"public\"?"},
        {"cycle-for-each.json",
         BAD_DIR "/cycle-for-each.json:8:65: stages.check.for_each: "
                 "stages form a cycle: plan -> check -> plan — stage \"check\" runs for_each over "
                 "plan.output; a stage can only read stages that run before it"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        char path[256], buf[1024];
        struct pipeline *p = NULL;
        struct bh_err err = {0};
        snprintf(path, sizeof(path), BAD_DIR "/%s", cases[i].file);
        assert_int_equal(pipe_load(&p, path, NULL, &err), BH_EINVAL);
        assert_null(p);
        assert_string_equal(bh_err_format(&err, buf, sizeof(buf)), cases[i].msg);
    }
}

static void include_error_is_positioned_in_the_included_file(void **state)
{
    (void)state;
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n = 0;
    assert_int_equal(pipe_load_all(&p, BAD_DIR "/include-error-inside.json", NULL, &errs, &n),
                     BH_EINVAL);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(errs[i].file, BAD_DIR "/shared/broken-url.json");
    assert_int_equal(errs[0].line, 5);
    assert_int_equal(errs[0].col, 19);
    assert_string_equal(errs[0].path, "endpoints.shared-box.provider");
    assert_int_equal(errs[1].line, 6);
    assert_string_equal(errs[1].path, "endpoints.shared-box.url");
    free(errs);
    /* a YAML file including a YAML file: positions in the included one */
    assert_int_equal(pipe_load_all(&p, BAD_DIR "/yaml-include-error.yaml", NULL, &errs, &n),
                     BH_EINVAL);
    assert_int_equal(n, 2);
    assert_string_equal(errs[0].file, BAD_DIR "/shared/broken.yaml");
    assert_int_equal(errs[0].line, 7);
    assert_int_equal(errs[0].col, 21);
    free(errs);
}

static void three_errors_of_new_kinds_are_all_reported(void **state)
{
    (void)state;
    static const struct {
        int line, col;
        const char *path, *msg;
    } want[] = {
        {5, 43, "endpoints.gpu-box.headers",
         "header \"Host\" is set by bulkhead itself — remove it"},
        {8, 86, "stages.review.tools",
         "\"tools\" is only for kind \"agent\" (this stage is kind "
         "\"chat\") — add \"kind\": \"agent\", or remove \"tools\""},
        {9, 117, "stages.digest.on_sensitive",
         "unknown stage \"nowhere\" (known: review, digest) — reroute names a stage of this "
         "pipeline that may take what this one turns away"},
    };
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n = 0;
    assert_int_equal(pipe_load_all(&p, BAD_DIR "/three-new-errors.json", NULL, &errs, &n),
                     BH_EINVAL);
    assert_null(p);
    assert_int_equal(n, BH_NELEM(want));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(errs[i].file, BAD_DIR "/three-new-errors.json");
        assert_int_equal(errs[i].line, want[i].line);
        assert_int_equal(errs[i].col, want[i].col);
        assert_string_equal(errs[i].path, want[i].path);
        assert_string_equal(errs[i].msg, want[i].msg);
    }
    free(errs);
}

/* Every message of a load, joined. */
static char *all_messages(const char *path)
{
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n = 0;
    assert_int_not_equal(pipe_load_all(&p, path, NULL, &errs, &n), 0);
    char *all = bh_xcalloc(1, 1);
    for (size_t i = 0; i < n; i++) {
        char buf[1024];
        char *next = bh_xasprintf("%s%s\n", all, bh_err_format(&errs[i], buf, sizeof(buf)));
        free(all);
        all = next;
    }
    free(errs);
    return all;
}

static void header_values_are_never_echoed(void **state)
{
    (void)state;
    /* Literals in the file: as a value with a line break, as part of a
     * broken ${...}, pasted into the name, in an api_key_env conflict. */
    static const char *const files[] = {"header-line-break.json", "header-bad-reference.json",
                                        "header-bad-name.json", "yaml-header-reserved.yaml"};
    for (size_t i = 0; i < BH_NELEM(files); i++) {
        char path[256];
        snprintf(path, sizeof(path), BAD_DIR "/%s", files[i]);
        char *all = all_messages(path);
        assert_non_null(strstr(all, "header"));
        assert_null(strstr(all, "TOPSECRET"));
        free(all);
    }
    /* From the environment: a value that breaks the line after expansion. */
    char dir[] = "/tmp/bh-hdr.XXXXXX", path[64], prompt[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.json", dir);
    snprintf(prompt, sizeof(prompt), "%s/p.md", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"version\":1,\"name\":\"h\",\"endpoints\":{\"e\":{\"provider\":\"ollama\","
          "\"url\":\"http://h:1\",\"headers\":{\"X-Key\":\"Bearer ${BH_T_SECRET}\"}}},"
          "\"source\":{\"kind\":\"git\"},\"stages\":{\"s\":{\"endpoint\":\"e\",\"model\":\"m\","
          "\"user\":\"{{pr.title}}\"}}}",
          f);
    fclose(f);
    setenv("BH_T_SECRET", "sk-live-ENVSECRET-42\r\nX-Injected: 1", 1);
    char *all = all_messages(path);
    assert_non_null(strstr(all, "header \"X-Key\": after expansion the value has a line break"));
    assert_null(strstr(all, "ENVSECRET"));
    assert_null(strstr(all, "Bearer"));
    free(all);
    setenv("BH_T_SECRET", "sk-live-ENVSECRET-42", 1); /* the same file loads, value intact */
    struct pipeline *p = load_ok(path, NULL);
    assert_string_equal(p->endpoints[0].headers[0].value, "Bearer sk-live-ENVSECRET-42");
    pipe_free(p);
    unsetenv("BH_T_SECRET");
    remove(path);
    remove(prompt);
    rmdir(dir);
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
        {"", 1, 1, 0, 0},        {"a", 1, 6, 1, 2},       {"a.b", 1, 11, 1, 7},
        {"a.b[0]", 1, 12, 0, 0}, {"a.b[1]", 1, 14, 0, 0}, {"a.b[1].c", 1, 19, 1, 15},
        {"d", 1, 30, 1, 26},
    };
    assert_positions(text, w, BH_NELEM(w));
    struct pipe_posindex *ix = pipe_posindex_build(text, strlen(text));
    assert_int_equal(pipe_posindex_count(ix), BH_NELEM(w));
    assert_null(pipe_posindex_get(ix, "a.c"));
    pipe_posindex_free(ix);
}

static void posindex_crlf_line_endings(void **state)
{
    (void)state;
    const char *text = "{\r\n  \"k\": \"v\",\r\n  \"n\": [\r\n    2\r\n  ]\r\n}\r\n";
    const struct want_pos w[] = {
        {"k", 2, 8, 2, 3},
        {"n", 3, 8, 3, 3},
        {"n[0]", 4, 5, 0, 0},
    };
    assert_positions(text, w, BH_NELEM(w));
}

static void posindex_strings_with_escaped_quotes_and_braces(void **state)
{
    (void)state;
    /*                  1 2345 678 9 0 1 2 3 4 5678 9 */
    const char *text = "{\"s\": \"a \\\"}\\\" {[\", \"t\": [\"]\\\\\", 5],\n"
                       " \"we\\\"ird\": {\"x.y\": 1}}";
    /* line 1: {"s": "a \"}\" {[", "t": ["]\\", 5], */
    const struct want_pos w[] = {
        {"s", 1, 7, 1, 2},
        {"t", 1, 26, 1, 21},
        {"t[0]", 1, 27, 0, 0},
        {"t[1]", 1, 34, 0, 0},
        {"[\"we\"ird\"]", 2, 13, 2, 2},
        {"[\"we\"ird\"][\"x.y\"]", 2, 21, 2, 14},
    };
    assert_positions(text, w, BH_NELEM(w));
}

static void posindex_counts_unicode_characters_not_bytes(void **state)
{
    (void)state;
    /* "é" and "日本" are one column per character; \u escapes in keys are decoded. */
    const char *text = "{\"é\": \"ü\", \"x\": \"日本\", \"y\": 1,\n"
                       "\"\\u00e9t\\u00e9\": 2, \"\\ud83d\\ude00\": 3}";
    const struct want_pos w[] = {
        {"[\"é\"]", 1, 7, 1, 2},    {"x", 1, 17, 1, 12},       {"y", 1, 28, 1, 23},
        {"[\"été\"]", 2, 18, 2, 1}, {"[\"😀\"]", 2, 37, 2, 21},
    };
    assert_positions(text, w, BH_NELEM(w));
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
        {"plain", "plain"},
        {"$HOME", "$HOME"}, /* a "$" not followed by "{" is literal */
        {"a$$b", "a$$b"},
        {"trailing $", "trailing $"},
        {"${BH_T_SET}", "v"},
        {"x${BH_T_SET}y${BH_T_SET}", "xvyv"},
        {"${BH_T_UNSET:-http://a:1}", "http://a:1"},
        {"${BH_T_SET:-http://a:1}", "v"},
        {"${BH_T_EMPTY:-d}", "d"}, /* empty counts as unset */
        {"${BH_T_UNSET:-}", ""},
        {"${BH_T_UNSET:-a}b}", "ab}"}, /* the default ends at the first "}" */
        {"$${BH_T_SET}", "$v"},
        /* A default may hold references, expanded only when it is used. */
        {"${BH_T_UNSET:-${BH_T_SET:-x}}", "v"},
        {"${BH_T_UNSET:-${BH_T_EMPTY:-127.0.0.1:11434}}", "127.0.0.1:11434"},
        {"${BH_T_SET:-${BH_T_UNSET}}", "v"},
        {"a${BH_T_UNSET:-[${BH_T_SET}]}b", "a[v]b"},
    };
    for (size_t i = 0; i < BH_NELEM(ok); i++) {
        char *out = NULL;
        struct bh_err err = {0};
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
        {"http://${BH_T_SET", "unterminated \"${\" — close it with \"}\": ${NAME} or "
                              "${NAME:-default}"},
        {"${}", "invalid variable reference \"${}\" — write ${NAME} or ${NAME:-default}, NAME "
                "made of letters, digits and '_'"},
        {"${1X}", "invalid variable reference \"${1X}\" — write ${NAME} or ${NAME:-default}, "
                  "NAME made of letters, digits and '_'"},
        {"${X-d}", "invalid variable reference \"${X-d}\" — write ${NAME} or ${NAME:-default}, "
                   "NAME made of letters, digits and '_'"},
        {"${BH_T_UNSET}", "environment variable \"BH_T_UNSET\" is not set — set it, or give a "
                          "default: ${BH_T_UNSET:-value}"},
        {"${BH_T_EMPTY}", "environment variable \"BH_T_EMPTY\" is not set — set it, or give a "
                          "default: ${BH_T_EMPTY:-value}"},
    };
    for (size_t i = 0; i < BH_NELEM(bad); i++) {
        char *out = (char *)"untouched";
        struct bh_err err = {0};
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
        {"", "http://127.0.0.1:11434"},
        {"gpu-box", "http://gpu-box:11434"},
        {"10.0.0.5:11500", "http://10.0.0.5:11500"},
        {"[::1]", "http://[::1]:11434"},
        {"::1", "http://[::1]:11434"},
        {"[::1]:9", "http://[::1]:9"},
        {"http://gpu-box", "http://gpu-box"}, /* a scheme: left as it is (port 80) */
        {"https://ollama.example:8443/x", "https://ollama.example:8443/x"},
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
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct pipeline *p = NULL;
        struct bh_err err = {0};
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

/* ---- endpoint pools ---- */

/* Writes a pipeline with a pool "gpus" (urls as given, JSON) and a cloud
 * endpoint into dir; returns its path in path. */
static void pool_file(char *dir, char *path, size_t size, const char *urls)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, size, "%s/p.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"version\":1,\"name\":\"pool\",\"endpoints\":{"
            "\"gpus\":{\"provider\":\"ollama\",\"locality\":\"local\",\"max_concurrency\":2,"
            "\"max_loaded_models\":3,\"headers\":{\"X-Team\":\"ml\"},"
            "\"trusted_hosts\":[\"10.8.0.0/16\"],\"urls\":%s},"
            "\"cloud\":{\"provider\":\"ollama\",\"url\":\"https://cloud.example\"}},"
            "\"source\":{\"kind\":\"git\"},\"stages\":{"
            "\"a\":{\"endpoint\":\"cloud\",\"model\":\"m\",\"user\":\"{{pr.title}}\"},"
            "\"b\":{\"endpoint\":\"gpus\",\"model\":\"m\",\"user\":\"{{pr.title}}\"}}}",
            urls);
    fclose(f);
}

static void pool_file_remove(const char *dir, const char *path)
{
    remove(path);
    rmdir(dir);
}

static void pool_splits_into_consecutive_hosts_with_the_pools_settings(void **state)
{
    (void)state;
    char dir[] = "/tmp/bh-pool.XXXXXX", path[64];
    setenv("BH_T_GPU2", "10.8.0.6", 1);
    pool_file(dir, path, sizeof(path), "[\"http://10.8.0.5:11434\",\"${BH_T_GPU2}\"]");
    struct pipeline *p = load_ok(path, NULL);
    unsetenv("BH_T_GPU2");
    assert_int_equal(p->n_endpoints, 3);
    const struct pipe_endpoint *h1 = &p->endpoints[0], *h2 = &p->endpoints[1];
    assert_string_equal(h1->name, "gpus");
    assert_string_equal(h2->name, "gpus");
    assert_string_equal(h1->host_name, "gpus#1");
    assert_string_equal(pipe_host_name(h2), "gpus#2");
    assert_string_equal(h1->url, "http://10.8.0.5:11434");
    assert_string_equal(h2->url, "http://10.8.0.6:11434"); /* expanded, Ollama's default port */
    for (size_t i = 0; i < 2; i++) {
        const struct pipe_endpoint *h = &p->endpoints[i];
        assert_int_equal(h->pool, 0);
        assert_int_equal(h->n_pool, 2);
        assert_int_equal(h->host, i);
        assert_int_equal(h->is_pool, 1);
        assert_int_equal(h->max_concurrency, 2); /* per host */
        assert_int_equal(h->max_loaded_models, 3);
        assert_int_equal(h->declared_local, 1);
        assert_int_equal(h->n_headers, 1);
        assert_string_equal(h->headers[0].value, "ml");
        assert_int_equal(h->n_trusted_hosts, 1);
        assert_null(h->urls);
    }
    assert_ptr_not_equal(h1->headers, h2->headers); /* each host owns its copy */
    const struct pipe_endpoint *cloud = &p->endpoints[2];
    assert_string_equal(pipe_host_name(cloud), "cloud"); /* a single url: its own pool of one */
    assert_int_equal(cloud->pool, 2);
    assert_int_equal(cloud->n_pool, 1);
    assert_int_equal(cloud->is_pool, 0);
    assert_int_equal(p->stages[1].endpoint, 0); /* a stage names the pool's first host */
    assert_true(pipe_stage_on(p, 1, 0) && pipe_stage_on(p, 1, 1) && !pipe_stage_on(p, 1, 2));
    assert_true(!pipe_stage_on(p, 0, 0) && pipe_stage_on(p, 0, 2));
    char old[65];
    memcpy(old, p->hash, sizeof(old));
    pipe_free(p);
    setenv("BH_T_GPU2", "10.8.0.7", 1);
    p = load_ok(path, NULL);
    unsetenv("BH_T_GPU2");
    assert_string_not_equal(p->hash, old); /* every host's url is part of a run's identity */
    pipe_free(p);
    pool_file_remove(dir, path);
}

static void pool_override_replaces_the_hosts_and_a_list_makes_a_pool(void **state)
{
    (void)state;
    char dir[] = "/tmp/bh-pool.XXXXXX", path[64];
    pool_file(dir, path, sizeof(path), "[\"http://10.8.0.5:11434\",\"http://10.8.0.6:11434\"]");
    const char *three[] = {"gpus=http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3"};
    struct pipe_load_opts opts = {three, 1};
    struct pipeline *p = load_ok(path, &opts);
    assert_int_equal(p->n_endpoints, 4);
    assert_string_equal(p->endpoints[2].url, "http://127.0.0.1:3");
    assert_string_equal(p->endpoints[2].host_name, "gpus#3");
    pipe_free(p);
    const char *one[] = {"gpus=http://127.0.0.1:1"};
    opts = (struct pipe_load_opts){one, 1};
    p = load_ok(path, &opts);
    assert_int_equal(p->n_endpoints, 2); /* a pool of one */
    assert_string_equal(p->endpoints[0].host_name, "gpus#1");
    assert_int_equal(p->endpoints[1].pool, 1);
    pipe_free(p);
    const char *dup[] = {"gpus=http://127.0.0.1:1,http://127.0.0.1:1"};
    char want[512];
    snprintf(want, sizeof(want),
             "%s: --endpoint gpus=...: the same url is given twice — list each host once", path);
    load_error(path, dup, 1, want);
    const char *cloud[] = {"cloud=https://a.example,https://b.example"};
    snprintf(want, sizeof(want),
             "%s: --endpoint cloud=...: a pool of hosts (several urls) is for endpoints "
             "declared local — a cloud service balances behind its one url: give it one "
             "\"url\", or add \"locality\": \"local\" if these hosts are your own",
             path);
    load_error(path, cloud, 1, want);
    pool_file_remove(dir, path);
}

static void pipeline_without_urls_has_pools_of_one(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(FULL, NULL);
    for (size_t i = 0; i < p->n_endpoints; i++) {
        assert_int_equal(p->endpoints[i].pool, i);
        assert_int_equal(p->endpoints[i].n_pool, 1);
        assert_int_equal(p->endpoints[i].is_pool, 0);
        assert_string_equal(pipe_host_name(&p->endpoints[i]), p->endpoints[i].name);
    }
    pipe_free(p);
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
        {"a\nb {{", "t.md:2:3: unterminated \"{{\" — close the placeholder with \"}}\""},
        {"x{{ \t }}", "t.md:1:2: empty placeholder — write a field name between the braces, "
                      "e.g. {{ pr.diff }} or {{ plan.output }}"},
        {"é\n  {{ a b }}", "t.md:2:3: invalid placeholder \"{{ a b }}\" — a field name has "
                           "letters, digits, '_', '-' and dots, e.g. {{ pr.diff }}; \"{{\" "
                           "cannot be escaped"},
    };
    for (size_t i = 0; i < BH_NELEM(bad); i++) {
        struct pipe_tpl t;
        struct bh_err err = {0};
        char buf[1024];
        assert_int_equal(tpl_parse(bad[i].text, strlen(bad[i].text), &t, &err), BH_EINVAL);
        assert_null(t.parts);
        assert_null(t.file);
        assert_string_equal(bh_err_format(&err, buf, sizeof(buf)), bad[i].msg);
    }
    struct pipe_tpl t;
    struct bh_err err = {0};
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
    struct bh_err err = {0};
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
    const char *fields[] = {"pr.title", "pr.diff"};
    const char *stages[] = {"plan", "review"};
    struct pipe_tpl_scope scope = {fields, 2, stages, 2, NULL, NULL, 0};
    assert_int_equal(pipe_tpl_field_stage("review.output", &scope), 1);
    assert_int_equal(pipe_tpl_field_stage("plan.output", &scope), 0);
    assert_int_equal(pipe_tpl_field_stage("pr.diff", &scope), -1);
    assert_int_equal(pipe_tpl_field_stage("plan.result", &scope), -1);
    assert_int_equal(pipe_tpl_field_stage("nope.output", &scope), -1);
    const struct {
        const char *text, *msg;
    } cases[] = {
        {"{{ pr.title }} {{plan.output}}", NULL},
        {"{{ zzz }}", "t.md:1:1: unknown field \"zzz\" — a placeholder names a source field "
                      "(pr.title, pr.diff) or a stage's output (<stage>.output)"},
        {"{{ plan.outptu }}", "t.md:1:1: stage \"plan\" has no field \"outptu\" — a stage "
                              "provides only its output: {{ plan.output }}"},
        {"x {{ qqqqqq.output }}", "t.md:1:3: unknown stage \"qqqqqq\" in {{ qqqqqq.output }} "
                                  "(stages: plan, review) — add the stage or fix the name"},
        {"{{ reviw.output }}", "t.md:1:1: unknown stage \"reviw\" in {{ reviw.output }} "
                               "(stages: plan, review) — did you mean \"review\"?"},
        {"{{ pr.titel }}", "t.md:1:1: unknown field \"pr.titel\" — did you mean \"pr.title\"?"},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct pipe_tpl t;
        struct bh_err err = {0};
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

/* ---- ca_file and basic_auth_env ---- */

static void put_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* dir/p.json: endpoint "own" (ca_file relative), "abs" (absolute) and,
 * from dir/shared/eps.json, "shared" (relative to the shared folder). */
static void tls_tree(const char *dir, const char *own_ca)
{
    char sub[512], json[2048];
    snprintf(sub, sizeof(sub), "%s/certs", dir);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/shared", dir);
    mkdir(sub, 0700);
    put_file(dir, "certs/ca.pem", "not parsed at load time\n");
    put_file(dir, "shared/ca.pem", "nor this\n");
    put_file(dir, "shared/eps.json",
             "{\"endpoints\":{\"shared\":{\"provider\":\"ollama\","
             "\"url\":\"https://gpu.example\",\"ca_file\":\"ca.pem\"}}}");
    snprintf(json, sizeof(json),
             "{\"version\":1,\"name\":\"t\",\"include\":[\"shared/eps.json\"],\"endpoints\":{"
             "\"own\":{\"provider\":\"ollama\",\"url\":\"https://127.0.0.1:1\",\"locality\":"
             "\"local\",\"ca_file\":\"%s\",\"basic_auth_env\":\"GPU_PROXY_AUTH\"},"
             "\"abs\":{\"provider\":\"ollama\",\"url\":\"https://h:1\",\"ca_file\":"
             "\"%s/certs/ca.pem\"}},\"source\":{\"kind\":\"git\"},\"stages\":{\"s\":{"
             "\"endpoint\":\"own\",\"model\":\"m\",\"user\":\"{{pr.title}}\"}}}",
             own_ca, dir);
    put_file(dir, "p.json", json);
}

static void tls_tree_remove(const char *dir)
{
    static const char *const files[] = {
        "p.json", "certs/ca.pem", "shared/ca.pem", "shared/eps.json", "certs", "shared", ""};
    char path[512];
    for (size_t i = 0; i < BH_NELEM(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        remove(path);
    }
}

static void ca_file_resolves_beside_the_file_that_declares_the_endpoint(void **state)
{
    (void)state;
    char dir[] = "/tmp/bh-tls.XXXXXX", path[64], want[128];
    assert_non_null(mkdtemp(dir));
    tls_tree(dir, "certs/ca.pem");
    snprintf(path, sizeof(path), "%s/p.json", dir);
    struct pipeline *p = load_ok(path, NULL);
    assert_int_equal(p->n_endpoints, 3);
    snprintf(want, sizeof(want), "%s/certs/ca.pem", dir);
    assert_string_equal(p->endpoints[0].name, "own");
    assert_string_equal(p->endpoints[0].ca_file, want);
    assert_string_equal(p->endpoints[0].basic_auth_env, "GPU_PROXY_AUTH");
    assert_string_equal(p->endpoints[1].ca_file, want); /* absolute: as written */
    assert_null(p->endpoints[1].basic_auth_env);
    snprintf(want, sizeof(want), "%s/shared/ca.pem", dir);
    assert_string_equal(p->endpoints[2].name, "shared");
    assert_string_equal(p->endpoints[2].ca_file, want); /* beside the included file */
    char before[65];
    memcpy(before, p->hash, sizeof(before));
    pipe_free(p);
    put_file(dir, "certs/ca.pem", "a renewed CA\n"); /* contents are not the run's identity */
    p = load_ok(path, NULL);
    assert_string_equal(p->hash, before);
    pipe_free(p);
    tls_tree_remove(dir);
}

static void ca_file_errors_name_the_file_or_the_scheme(void **state)
{
    (void)state;
    char dir[] = "/tmp/bh-tls.XXXXXX", path[64], want[512], buf[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.json", dir);
    tls_tree(dir, "certs");
    struct pipeline *p = NULL;
    struct bh_err err = {0};
    assert_int_equal(pipe_load(&p, path, NULL, &err), BH_EINVAL);
    assert_null(p);
    snprintf(want, sizeof(want),
             "%s:1:152: endpoints.own.ca_file: cannot read the CA file "
             "\"%s/certs\": it is a folder — ca_file names a PEM file, relative to the folder "
             "of the file that declares the endpoint (or absolute)",
             path, dir);
    assert_string_equal(bh_err_format(&err, buf, sizeof(buf)), want);
    /* --endpoint may turn the url into http: the CA file then has no use */
    tls_tree(dir, "certs/ca.pem");
    const char *ov[] = {"own=http://127.0.0.1:2"};
    struct pipe_load_opts opts = {ov, 1};
    assert_int_equal(pipe_load(&p, path, &opts, &err), BH_EINVAL);
    assert_string_equal(err.path, "endpoints.own.ca_file");
    assert_string_equal(err.msg, "ca_file is for https endpoints, and this endpoint's url is "
                                 "http — write the url as https://HOST:PORT, or remove "
                                 "\"ca_file\"");
    tls_tree_remove(dir);
}

static void basic_auth_errors_never_echo_credentials(void **state)
{
    (void)state;
    static const struct {
        const char *file, *needle;
    } cases[] = {
        {"basic-auth-literal.json", "basic_auth_env names the variable that holds "
                                    "user:password, never the credentials themselves"},
        {"basic-auth-api-key.json", "\"basic_auth_env\" and \"api_key_env\" would both send "
                                    "an Authorization header"},
        {"yaml-basic-auth-header.yaml", "header \"Authorization\" conflicts with "
                                        "\"basic_auth_env\""},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        char path[256];
        snprintf(path, sizeof(path), BAD_DIR "/%s", cases[i].file);
        char *all = all_messages(path);
        assert_non_null(strstr(all, cases[i].needle));
        assert_null(strstr(all, "TOPSECRET"));
        assert_null(strstr(all, "alice"));
        free(all);
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
        cmocka_unit_test(minimal_pipeline_gets_every_default_of_the_full_language),
        cmocka_unit_test(endpoints_expand_variables_and_defaults),
        cmocka_unit_test(unset_variable_without_default_is_an_error),
        cmocka_unit_test(endpoint_overrides_replace_urls_after_expansion),
        cmocka_unit_test(endpoint_override_errors_name_the_option),
        cmocka_unit_test(pool_splits_into_consecutive_hosts_with_the_pools_settings),
        cmocka_unit_test(pool_override_replaces_the_hosts_and_a_list_makes_a_pool),
        cmocka_unit_test(pipeline_without_urls_has_pools_of_one),
        cmocka_unit_test(templates_split_into_parts_with_character_positions),
        cmocka_unit_test(custom_labels_and_crlf_file_load),
        cmocka_unit_test(hash_is_stable_and_covers_the_final_urls),
        cmocka_unit_test(missing_pipeline_file_is_an_io_error),
        cmocka_unit_test(api_key_pasted_into_api_key_env_is_never_echoed),
        cmocka_unit_test(source_kind_fields_lists_git_and_files),
        cmocka_unit_test(include_merges_endpoints_after_the_files_own),
        cmocka_unit_test(endpoint_headers_expand_and_trusted_hosts_parse),
        cmocka_unit_test(enforce_local_is_read_and_defaults_to_auto),
        cmocka_unit_test(source_rules_detectors_and_allow_parse),
        cmocka_unit_test(files_source_has_document_fields_and_keys),
        cmocka_unit_test(inline_messages_are_templates_positioned_at_their_value),
        cmocka_unit_test(reads_list_distinct_fields_system_first),
        cmocka_unit_test(for_each_scope_kind_and_limits_parse),
        cmocka_unit_test(output_schema_is_read_compact_and_implies_json),
        cmocka_unit_test(on_sensitive_reroute_makes_the_target_standby),
        cmocka_unit_test(declassify_parses_guards_and_defaults),
        cmocka_unit_test(endpoint_override_reaches_an_included_endpoint),
        cmocka_unit_test(language_helpers_name_for_each_fields_tools_and_content),
        cmocka_unit_test(hash_covers_included_files_and_output_schemas),
        cmocka_unit_test(every_new_key_fails_with_its_exact_message),
        cmocka_unit_test(integer_keys_refuse_values_outside_their_range_row),
        cmocka_unit_test(include_error_is_positioned_in_the_included_file),
        cmocka_unit_test(three_errors_of_new_kinds_are_all_reported),
        cmocka_unit_test(header_values_are_never_echoed),
        cmocka_unit_test(ca_file_resolves_beside_the_file_that_declares_the_endpoint),
        cmocka_unit_test(ca_file_errors_name_the_file_or_the_scheme),
        cmocka_unit_test(basic_auth_errors_never_echo_credentials),
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
