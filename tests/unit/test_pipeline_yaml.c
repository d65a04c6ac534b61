/* tests/unit/test_pipeline_yaml.c — YAML pipeline files: each good YAML
 * fixture loads into the same structs as its JSON twin, scalars follow the
 * core schema (a plain 1 is a number, "1" a string), positions come from
 * libyaml's marks in characters, and every prefix of every good file loads
 * or fails cleanly (no crash, no leak under ASan). The bad YAML corpus with
 * its exact messages is walked by test_pipeline.c.
 * Runs from BH_SOURCE_DIR so that paths in messages are the repository's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>

#include "pipeline/pipeline.h"
#include "util/bh_err.h"
#include "util/bh_util.h"
#include "util/bh_xmalloc.h"

#define GOOD "fixtures/pipelines/good/"

static char src_dir[4096];

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("BH_SOURCE_DIR");
    if (!src || chdir(src) != 0 || !getcwd(src_dir, sizeof(src_dir))) {
        fprintf(stderr, "BH_SOURCE_DIR must name the source tree\n");
        return -1;
    }
    unsetenv("BH_TEST_LOCAL_URL");
    setenv("BH_TEST_CLOUD_URL", "https://cloud.example", 1);
    return 0;
}

static struct pipeline *load_ok(const char *path)
{
    struct pipeline *p = NULL;
    struct bh_err err = {0};
    char buf[1024];
    int rc = pipe_load(&p, path, NULL, &err);
    if (rc)
        fprintf(stderr, "%s\n", bh_err_format(&err, buf, sizeof(buf)));
    assert_int_equal(rc, 0);
    assert_non_null(p);
    return p;
}

/* ---- YAML twins of the JSON fixtures ---- */

static void assert_same_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_same_strv(char *const *a, size_t na, char *const *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(a[i], b[i]);
}

static void assert_same_endpoint(const struct pipe_endpoint *a, const struct pipe_endpoint *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->provider, b->provider);
    assert_string_equal(a->url, b->url);
    assert_int_equal(a->declared_local, b->declared_local);
    assert_int_equal(a->clearance, b->clearance);
    assert_int_equal(a->max_concurrency, b->max_concurrency);
    assert_int_equal(a->timeout_s, b->timeout_s);
    assert_same_str(a->api_key_env, b->api_key_env);
    assert_int_equal(a->n_headers, b->n_headers);
    for (size_t i = 0; i < a->n_headers; i++) {
        assert_string_equal(a->headers[i].name, b->headers[i].name);
        assert_string_equal(a->headers[i].value, b->headers[i].value);
    }
    assert_same_strv(a->trusted_hosts, a->n_trusted_hosts, b->trusted_hosts, b->n_trusted_hosts);
    assert_int_equal(a->enforce_local, b->enforce_local);
    assert_int_equal(!a->included_from, !b->included_from); /* the twins include twins */
}

static void assert_same_source(const struct pipe_source *a, const struct pipe_source *b)
{
    assert_string_equal(a->kind, b->kind);
    assert_int_equal(a->label, b->label);
    assert_int_equal(a->n_fields, b->n_fields);
    for (size_t i = 0; i < a->n_fields; i++) {
        assert_string_equal(a->fields[i], b->fields[i]);
        assert_int_equal(a->field_labels[i], b->field_labels[i]);
    }
    assert_int_equal(a->n_rules, b->n_rules);
    for (size_t i = 0; i < a->n_rules; i++) {
        assert_string_equal(a->rules[i].glob, b->rules[i].glob);
        assert_int_equal(a->rules[i].label, b->rules[i].label);
    }
    assert_int_equal(a->detectors_set, b->detectors_set);
    assert_same_strv(a->detectors, a->n_detectors, b->detectors, b->n_detectors);
    assert_int_equal(a->n_custom, b->n_custom);
    for (size_t i = 0; i < a->n_custom; i++) {
        assert_string_equal(a->custom[i].id, b->custom[i].id);
        assert_string_equal(a->custom[i].regex, b->custom[i].regex);
        assert_int_equal(a->custom[i].label, b->custom[i].label);
    }
    assert_same_strv(a->allow_paths, a->n_allow_paths, b->allow_paths, b->n_allow_paths);
    assert_same_strv(a->allow_values, a->n_allow_values, b->allow_values, b->n_allow_values);
    assert_same_strv(a->include, a->n_include, b->include, b->n_include);
    assert_same_strv(a->exclude, a->n_exclude, b->exclude, b->n_exclude);
    assert_int_equal(a->max_bytes, b->max_bytes);
}

/* Parts' texts; positions only for template files (an inline message's
 * parts sit where its string starts, which differs between layouts). */
static void assert_same_tpl(const struct pipe_tpl *a, const struct pipe_tpl *b, int file)
{
    if (file)
        assert_string_equal(a->file, b->file);
    assert_int_equal(a->n_parts, b->n_parts);
    for (size_t i = 0; i < a->n_parts; i++) {
        assert_int_equal(a->parts[i].is_field, b->parts[i].is_field);
        assert_string_equal(a->parts[i].text, b->parts[i].text);
        if (!file)
            continue;
        assert_int_equal(a->parts[i].line, b->parts[i].line);
        assert_int_equal(a->parts[i].col, b->parts[i].col);
    }
}

static void assert_same_declassify(const struct pipe_declassify *a, const struct pipe_declassify *b)
{
    assert_int_equal(a->enabled, b->enabled);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->no_verbatim_tokens, b->no_verbatim_tokens);
    assert_int_equal(a->no_rare_tokens, b->no_rare_tokens);
    assert_int_equal(a->detectors, b->detectors);
    assert_int_equal(a->redact_code, b->redact_code);
    assert_int_equal(a->redact_paths, b->redact_paths);
    assert_int_equal(a->max_chars, b->max_chars);
}

static void assert_same_run(const struct pipe_stage *a, const struct pipe_stage *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->scope, b->scope);
    assert_same_str(a->for_each, b->for_each);
    assert_int_equal(a->for_each_stage, b->for_each_stage);
    assert_same_strv(a->tools, a->n_tools, b->tools, b->n_tools);
    assert_int_equal(a->max_steps, b->max_steps);
    assert_int_equal(a->max_items, b->max_items);
    assert_int_equal(a->out_format, b->out_format);
    assert_same_str(a->out_schema_path, b->out_schema_path);
    assert_same_str(a->out_schema_json, b->out_schema_json);
    assert_int_equal(a->on_sensitive, b->on_sensitive);
    assert_int_equal(a->reroute, b->reroute);
    assert_int_equal(a->standby, b->standby);
    assert_same_declassify(&a->declassify, &b->declassify);
}

static void assert_same_stage(const struct pipe_stage *a, const struct pipe_stage *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->endpoint, b->endpoint);
    assert_string_equal(a->model, b->model);
    assert_same_str(a->prompt_path, b->prompt_path);
    assert_same_tpl(&a->tpl, &b->tpl, a->prompt_path != NULL);
    assert_same_tpl(&a->system, &b->system, 0);
    assert_same_strv(a->reads, a->n_reads, b->reads, b->n_reads);
    assert_int_equal(a->n_deps, b->n_deps);
    for (size_t i = 0; i < a->n_deps; i++)
        assert_int_equal(a->deps[i], b->deps[i]);
    assert_int_equal(a->clearance, b->clearance);
    assert_same_run(a, b);
}

/* Everything but file, hash (they cover different bytes) and positions in
 * the pipeline file (the layouts differ). */
static void assert_same_pipeline(const struct pipeline *a, const struct pipeline *b)
{
    assert_string_equal(a->dir, b->dir);
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->n_labels, b->n_labels);
    for (size_t i = 0; i < a->n_labels; i++)
        assert_string_equal(a->labels[i], b->labels[i]);
    assert_int_equal(a->n_endpoints, b->n_endpoints);
    for (size_t i = 0; i < a->n_endpoints; i++)
        assert_same_endpoint(&a->endpoints[i], &b->endpoints[i]);
    assert_int_equal(a->n_includes, b->n_includes);
    assert_same_strv(a->trusted_networks, a->n_trusted_networks, b->trusted_networks,
                     b->n_trusted_networks);
    assert_same_source(&a->source, &b->source);
    assert_int_equal(a->n_stages, b->n_stages);
    for (size_t i = 0; i < a->n_stages; i++) {
        assert_same_stage(&a->stages[i], &b->stages[i]);
        assert_int_equal(a->order[i], b->order[i]);
    }
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (size_t i = 0; i < a->n_outputs; i++) {
        assert_string_equal(a->outputs[i].format, b->outputs[i].format);
        assert_string_equal(a->outputs[i].path, b->outputs[i].path);
    }
}

static void yaml_twins_load_into_the_same_structs_as_json(void **state)
{
    (void)state;
    static const char *const twins[][2] = {
        {GOOD "full.json", GOOD "full.yaml"},
        {GOOD "minimal.json", GOOD "minimal.yml"},
        {GOOD "custom-labels.json", GOOD "custom-labels.yaml"}, /* CRLF, %YAML, !!int */
        {GOOD "language.json", GOOD "language.yaml"}, /* every key; includes a YAML file */
        {GOOD "files.json", GOOD "files.yaml"},
    };
    for (size_t i = 0; i < BH_NELEM(twins); i++) {
        struct pipeline *j = load_ok(twins[i][0]), *y = load_ok(twins[i][1]);
        assert_same_pipeline(j, y);
        assert_string_equal(y->file, twins[i][1]);
        assert_string_not_equal(j->hash, y->hash); /* the hash covers the file's bytes */
        pipe_free(j);
        pipe_free(y);
    }
}

static void yaml_positions_are_one_based_libyaml_marks(void **state)
{
    (void)state;
    struct pipeline *p = load_ok(GOOD "full.yaml");
    /* a block mapping starts at its first key; a flow mapping at its '{' */
    assert_int_equal(p->endpoints[0].line, 6);
    assert_int_equal(p->endpoints[0].col, 5);
    assert_int_equal(p->stages[0].line, 23);
    assert_int_equal(p->stages[0].col, 5);
    assert_int_equal(p->stages[1].line, 27);
    assert_int_equal(p->stages[1].col, 9);
    pipe_free(p);
    p = load_ok(GOOD "custom-labels.yaml"); /* CRLF line ends count once */
    assert_int_equal(p->endpoints[0].line, 10);
    assert_int_equal(p->endpoints[0].col, 6);
    pipe_free(p);
}

/* ---- scalars, through the whole loader ---- */

/* Writes text to a new .yaml file under dir; returns its path (free it). */
static char *write_temp(const char *dir, const char *name, const char *text, size_t len)
{
    char *path = bh_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static char *slurp(const char *path, size_t *len);
static char *write_temp(const char *dir, const char *name, const char *text, size_t len);

/* The good files' folders, copied into every temp dir: a pipeline's prompts,
 * schemas and includes must lie in its own folder (a link out is refused). */
static const char *const subdirs[] = {"prompts", "shared", "schemas"};

static void copy_sub(const char *dir, const char *sub)
{
    char *from = bh_xasprintf(GOOD "%s", sub), *to = bh_xasprintf("%s/%s", dir, sub);
    DIR *d = opendir(from);
    assert_non_null(d);
    assert_int_equal(mkdir(to, 0700), 0);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = 0;
        char *src = bh_xasprintf("%s/%s", from, e->d_name);
        char *text = slurp(src, &len);
        free(write_temp(to, e->d_name, text, len));
        free(text);
        free(src);
    }
    closedir(d);
    free(from);
    free(to);
}

static void remove_sub(const char *dir, const char *sub)
{
    char *at = bh_xasprintf("%s/%s", dir, sub);
    DIR *d = opendir(at);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char *f = bh_xasprintf("%s/%s", at, e->d_name);
        assert_int_equal(unlink(f), 0);
        free(f);
    }
    closedir(d);
    assert_int_equal(rmdir(at), 0);
    free(at);
}

static char *temp_dir(void)
{
    const char *build = getenv("BH_BUILD_DIR");
    char *dir = bh_xasprintf("%s/test-pipeline-yaml-XXXXXX", build ? build : "/tmp");
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < BH_NELEM(subdirs); i++)
        copy_sub(dir, subdirs[i]);
    return dir;
}

static void temp_dir_remove(char *dir)
{
    for (size_t i = 0; i < BH_NELEM(subdirs); i++)
        remove_sub(dir, subdirs[i]);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* Loads a pipeline whose stage s has `model: <model>`; the first error, if
 * any, formatted into msg (its path into path). */
static int load_model(const char *dir, const char *model, struct pipeline **p, char *msg,
                      size_t size, char *path)
{
    char *text = bh_xasprintf("version: 1\nname: t\nendpoints: {e: {provider: ollama, url: "
                              "\"http://h:1\"}}\nsource: {kind: git}\nstages:\n  s:\n"
                              "    endpoint: e\n    prompt: prompts/lint.md\n"
                              "    model: %s\n",
                              model);
    char *file = write_temp(dir, "model.yaml", text, strlen(text));
    struct bh_err err = {0};
    int rc = pipe_load(p, file, NULL, &err);
    snprintf(msg, size, "%s", err.msg);
    strcpy(path, err.path);
    if (rc)
        assert_int_equal(err.line, 9);
    unlink(file);
    free(file);
    free(text);
    return rc;
}

static void yaml_scalars_follow_the_core_schema(void **state)
{
    (void)state;
    static const struct {
        const char *model, *value, *msg; /* value on success, else the message's start */
    } cases[] = {
        {"qwen2.5-coder:7b", "qwen2.5-coder:7b", NULL},
        {"\"1\"", "1", NULL}, /* quoted scalars are always strings */
        {"'007'", "007", NULL},
        {"yes", "yes", NULL}, /* YAML 1.2: not a boolean */
        {"!!str 12", "12", NULL},
        {">-\n      folded\n      text", "folded text", NULL},
        {"1", NULL, "expected a string, found a number"},
        {"-3", NULL, "expected a string, found a number"},
        {"+3", NULL, "expected a string, found a number"},
        {"1.5", NULL, "expected a string, found a fractional number"},
        {"1e3", NULL, "expected a string, found a fractional number"},
        {"true", NULL, "expected a string, found true"},
        {"FALSE", NULL, "expected a string, found false"},
        {"~", NULL, "expected a string, found null"},
        {"Null", NULL, "expected a string, found null"},
        {"", NULL, "expected a string, found null"},
        {"[a]", NULL, "expected a string, found an array"},
        {"{a: 1}", NULL, "expected a string, found an object"},
        {"99999999999999999999", NULL, "the number 99999999999999999999 is out of range"},
        {"!!int x", NULL, "\"x\" is not an integer — remove the tag, or fix the value"},
        {"!!bool yes", NULL, "\"yes\" is not a boolean — remove the tag, or fix the value"},
        {"!!seq x", NULL, "the tag does not match the value — remove it"},
        {"!local x", NULL, "unsupported tag \"!local\" — only the core tags"},
        {"{a: 1, a: 2}", NULL, "duplicate key \"a\" — each key may appear once in a mapping"},
        {"{[a]: 1}", NULL, "expected a key, found a sequence — keys are names"},
        {"{true: 1}", NULL, "expected a string key, found a boolean (true) — quote it"},
        {"&m x", NULL, "anchors are not supported (found \"&m\")"},
    };
    char *dir = temp_dir();
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        struct pipeline *p = NULL;
        char msg[512], path[128];
        int rc = load_model(dir, cases[i].model, &p, msg, sizeof(msg), path);
        if (cases[i].value) {
            assert_int_equal(rc, 0);
            assert_string_equal(p->stages[0].model, cases[i].value);
            pipe_free(p);
            continue;
        }
        if (rc == 0 || strncmp(msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fprintf(stderr, "model: %s\n  got:  %s\n  want: %s\n", cases[i].model, msg,
                    cases[i].msg);
        assert_int_equal(rc, BH_EINVAL);
        assert_null(p);
        assert_memory_equal(msg, cases[i].msg, strlen(cases[i].msg));
        assert_string_equal(path, "stages.s.model");
    }
    temp_dir_remove(dir);
}

static void yaml_nesting_is_capped(void **state)
{
    (void)state;
    char deep[256] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    char *dir = temp_dir();
    struct pipeline *p = NULL;
    char msg[512], path[128];
    assert_int_equal(load_model(dir, deep, &p, msg, sizeof(msg), path), BH_EINVAL);
    assert_string_equal(msg, "nested deeper than 64 levels");
    temp_dir_remove(dir);
}

static void yaml_columns_count_characters_and_errors_on_one_line_sort_by_column(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char *text = bh_xasprintf("version: 1\nname: t\nendpoints: {e: {provider: ollama, url: "
                              "\"http://h:1\"}}\n"
                              "source: {kind: git, label: \"日本語\", fields: 3}\n"
                              "stages: {s: {endpoint: e, model: m, prompt: prompts/lint.md}}\n");
    char *file = write_temp(dir, "cols.yaml", text, strlen(text));
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n = 0;
    assert_int_equal(pipe_load_all(&p, file, NULL, &errs, &n), BH_EINVAL);
    assert_int_equal(n, 2);
    assert_string_equal(errs[0].path, "source.label");
    assert_int_equal(errs[0].line, 4);
    assert_int_equal(errs[0].col, 28);
    assert_string_equal(errs[1].path, "source.fields");
    assert_int_equal(errs[1].col, 43); /* 日本語 is three columns, not nine */
    free(errs);
    unlink(file);
    free(file);
    free(text);
    temp_dir_remove(dir);
}

/* ---- every prefix of every good file ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = bh_xcalloc(1, 65536);
    *len = fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

/* Loads the first len bytes of text as dir/name; 1 when it loaded. */
static int load_prefix(const char *dir, const char *name, const char *text, size_t len)
{
    char *file = write_temp(dir, name, text, len);
    struct pipeline *p = NULL;
    struct bh_err *errs = NULL;
    size_t n = 0;
    int rc = pipe_load_all(&p, file, NULL, &errs, &n);
    if (rc == 0) {
        assert_non_null(p);
        assert_null(errs);
    } else {
        assert_null(p);
        assert_true(n >= 1 && n <= 21);
        for (size_t i = 0; i < n; i++) {
            assert_true(errs[i].code < 0);
            assert_true(errs[i].msg[0] != '\0');
        }
        assert_int_equal(errs[0].code, rc);
    }
    pipe_free(p);
    free(errs);
    unlink(file);
    free(file);
    return rc == 0;
}

static void every_prefix_of_a_good_file_loads_or_fails_cleanly(void **state)
{
    (void)state;
    static const char *const files[] = {"full.yaml",     "minimal.yml",  "custom-labels.yaml",
                                        "full.json",     "minimal.json", "custom-labels.json",
                                        "language.yaml", "language.json"};
    char *dir = temp_dir();
    for (size_t i = 0; i < BH_NELEM(files); i++) {
        char *path = bh_xasprintf(GOOD "%s", files[i]);
        size_t len = 0, loaded = 0;
        char *text = slurp(path, &len);
        for (size_t k = 0; k <= len; k++)
            loaded += (size_t)load_prefix(dir, files[i], text, k);
        assert_true(loaded >= 1);
        assert_true(load_prefix(dir, files[i], text, len)); /* the whole file */
        free(text);
        free(path);
    }
    temp_dir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(yaml_twins_load_into_the_same_structs_as_json),
        cmocka_unit_test(yaml_positions_are_one_based_libyaml_marks),
        cmocka_unit_test(yaml_scalars_follow_the_core_schema),
        cmocka_unit_test(yaml_nesting_is_capped),
        cmocka_unit_test(yaml_columns_count_characters_and_errors_on_one_line_sort_by_column),
        cmocka_unit_test(every_prefix_of_a_good_file_loads_or_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
