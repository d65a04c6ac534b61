/* test_manage.c — Ollama's model-management replies: /api/tags with and
 * without cloud stubs, /api/ps, /api/show's context length, /api/pull
 * progress with its mid-stream error; every parser fed whole and byte by
 * byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "providers/manage.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

static const char tags_json[] =
    "{\"models\":[{\"name\":\"qwen3:8b\",\"model\":\"qwen3:8b\",\"size\":5225376047,"
    "\"details\":{\"family\":\"qwen3\"}},"
    "{\"name\":\"mybot:latest\",\"model\":\"mybot:latest\",\"remote_model\":\"gpt-oss:120b\","
    "\"remote_host\":\"https://ollama.com:443\",\"size\":384},"
    "{\"model\":\"\"}]}";

/* Feeds text to a doc in chunks of step bytes (0: whole). */
static struct prov_doc *doc_of(const char *text, size_t step)
{
    struct prov_doc *d = prov_doc_new(0);
    struct bh_err err = {0};
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += step ? step : n)
        assert_int_equal(prov_doc_feed(d, text + i, step && n - i > step ? step : n - i, &err), 0);
    return d;
}

static void tags_list_models_and_mark_cloud_stubs(void **state)
{
    (void)state;
    for (size_t step = 0; step <= 1; step++) {
        struct prov_doc *d = doc_of(tags_json, step);
        struct prov_models m = {0};
        struct bh_err err = {0};
        assert_int_equal(prov_models_finish(d, 200, &m, &err), 0);
        assert_int_equal(m.n, 2); /* the nameless entry is skipped */
        const struct prov_model *q = prov_models_find(&m, "qwen3:8b");
        assert_non_null(q);
        assert_false(prov_model_is_remote(q));
        assert_true(q->size == 5225376047LL);
        const struct prov_model *b = prov_models_find(&m, "MyBot"); /* :latest, any case */
        assert_non_null(b);
        assert_true(prov_model_is_remote(b));
        assert_string_equal(b->remote_host, "https://ollama.com:443");
        assert_string_equal(b->remote_model, "gpt-oss:120b");
        assert_null(prov_models_find(&m, "qwen3:14b"));
        prov_models_release(&m);
        prov_doc_free(d);
    }
}

/* llama-server's GET /v1/models, as recorded (conformance/llama-server/03). */
static const char v1_models_json[] =
    "{\"models\":[{\"name\":\"stories260K\",\"model\":\"stories260K\"}],\"object\":\"list\","
    "\"data\":[{\"id\":\"stories260K\",\"aliases\":[\"stories260K\"],\"object\":\"model\","
    "\"owned_by\":\"llamacpp\",\"meta\":{\"n_vocab\":512,\"n_ctx\":512,\"n_ctx_train\":512}},"
    "{\"object\":\"model\"}]}";

static void v1_models_list_ids_and_llama_n_ctx(void **state)
{
    (void)state;
    for (size_t step = 0; step <= 1; step++) {
        struct prov_doc *d = doc_of(v1_models_json, step);
        struct prov_models m = {0};
        struct bh_err err = {0};
        assert_int_equal(prov_v1_models_finish(d, 200, &m, &err), 0);
        assert_int_equal(m.n, 1); /* the entry without an id is skipped */
        assert_string_equal(m.v[0].name, "stories260K");
        assert_true(m.v[0].context_length == 512);
        prov_models_release(&m);
        prov_doc_free(d);
    }
}

static void v1_models_fail_on_other_replies(void **state)
{
    (void)state;
    struct prov_models m = {0};
    struct bh_err err = {0};
    struct prov_doc *d = doc_of("{\"models\":[]}", 0); /* Ollama's /api/tags shape */
    assert_int_equal(prov_v1_models_finish(d, 200, &m, &err), BH_EREPLY);
    assert_non_null(strstr(err.msg, "GET /v1/models: the reply has no 'data' array"));
    prov_doc_free(d);
    d = doc_of("{\"error\":{\"message\":\"File Not Found\"}}", 0);
    assert_int_equal(prov_v1_models_finish(d, 404, &m, &err), BH_EREPLY);
    assert_non_null(strstr(err.msg, "GET /v1/models: HTTP 404"));
    prov_doc_free(d);
    d = doc_of("{\"status\":\"ok\"}", 0);
    assert_int_equal(prov_health_finish(d, 200, &err), 0);
    assert_int_equal(prov_health_finish(d, 503, &err), BH_EREPLY);
    assert_non_null(strstr(err.msg, "GET /health: HTTP 503"));
    prov_doc_free(d);
}

static void a_stub_is_remote_with_only_remote_model(void **state)
{
    (void)state;
    struct prov_doc *d = doc_of("{\"models\":[{\"name\":\"x:1b\",\"remote_model\":\"y\"}]}", 0);
    struct prov_models m = {0};
    struct bh_err err = {0};
    assert_int_equal(prov_models_finish(d, 200, &m, &err), 0);
    assert_true(prov_model_is_remote(&m.v[0]));
    assert_null(m.v[0].remote_host);
    prov_models_release(&m);
    prov_doc_free(d);
}

static void names_compare_as_ollama_does(void **state)
{
    (void)state;
    assert_true(prov_model_name_eq("qwen3", "qwen3:latest"));
    assert_true(prov_model_name_eq("Qwen3:LATEST", "qwen3"));
    assert_true(prov_model_name_eq("hf.co/org/m:q4", "HF.CO/org/m:Q4"));
    assert_true(prov_model_name_eq("reg:5000/m", "reg:5000/m:latest"));
    assert_false(prov_model_name_eq("qwen3", "qwen3:8b"));
    assert_false(prov_model_name_eq("qwen3:8b", "qwen3:8"));
    assert_false(prov_model_name_eq("qwen", "qwen3"));
    assert_false(prov_model_name_eq(NULL, "a"));
}

/* The model a reply names, against the one asked: bulkhead's ":local" suffix
 * and a missing ":latest" are the server's aliasing, not another model. */
static void answered_compares_without_local_suffix(void **state)
{
    (void)state;
    assert_true(prov_model_answered_eq("qwen3:8b", "qwen3:8b:local"));
    assert_true(prov_model_answered_eq("qwen3:local", "qwen3:latest"));
    assert_true(prov_model_answered_eq("stories260K:latest", "stories260K"));
    assert_true(prov_model_answered_eq("qwen3:8b", ""));
    assert_true(prov_model_answered_eq("qwen3:8b", NULL));
    assert_false(prov_model_answered_eq("qwen2.5-coder:14b", "stories260K"));
    assert_false(prov_model_answered_eq("qwen3:8b", "qwen3:14b:local"));
}

static void ps_lists_loaded_models_with_context(void **state)
{
    (void)state;
    const char *ps = "{\"models\":[{\"name\":\"qwen3:8b\",\"size\":6654289920,"
                     "\"size_vram\":6654289920,\"expires_at\":\"2025-06-04T14:38:31Z\","
                     "\"context_length\":8192}]}";
    for (size_t step = 0; step <= 1; step++) {
        struct prov_doc *d = doc_of(ps, step);
        struct prov_models m = {0};
        struct bh_err err = {0};
        assert_int_equal(prov_models_finish(d, 200, &m, &err), 0);
        assert_int_equal(m.n, 1);
        assert_int_equal(m.v[0].context_length, 8192);
        assert_true(m.v[0].size_vram == 6654289920LL);
        assert_string_equal(m.v[0].expires_at, "2025-06-04T14:38:31Z");
        prov_models_release(&m);
        prov_doc_free(d);
    }
    struct prov_doc *d = doc_of("{\"models\":[]}", 0);
    struct prov_models m = {0};
    struct bh_err err = {0};
    assert_int_equal(prov_models_finish(d, 200, &m, &err), 0);
    assert_int_equal(m.n, 0);
    prov_models_release(&m);
    prov_doc_free(d);
}

static void lists_fail_with_the_servers_words(void **state)
{
    (void)state;
    struct prov_models m = {0};
    struct bh_err err = {0};
    struct prov_doc *d = doc_of("{\"error\":\"boom\"}", 0);
    assert_int_equal(prov_models_finish(d, 500, &m, &err), BH_EREPLY);
    assert_string_equal(err.msg, "listing models: HTTP 500: boom");
    prov_doc_free(d);
    d = doc_of("<html>not ollama</html>", 0);
    assert_int_equal(prov_models_finish(d, 200, &m, &err), BH_EREPLY);
    assert_non_null(strstr(err.msg, "not a JSON object"));
    prov_doc_free(d);
    d = doc_of("{\"data\":[]}", 0);
    assert_int_equal(prov_models_finish(d, 200, &m, &err), BH_EREPLY);
    assert_non_null(strstr(err.msg, "no 'models' array"));
    prov_doc_free(d);
}

static void a_doc_over_its_cap_fails(void **state)
{
    (void)state;
    struct prov_doc *d = prov_doc_new(8);
    struct bh_err err = {0};
    assert_int_equal(prov_doc_feed(d, "12345", 5, &err), 0);
    assert_int_equal(prov_doc_feed(d, "6789", 4, &err), BH_ETOOBIG);
    assert_non_null(strstr(err.msg, "exceeds 8 bytes"));
    prov_doc_free(d);
}

static void show_finds_context_length_through_the_architecture(void **state)
{
    (void)state;
    /* a decoy key before the real one: the architecture decides */
    const char *show = "{\"model_info\":{\"clip.context_length\":77,"
                       "\"general.architecture\":\"qwen3\",\"qwen3.context_length\":40960},"
                       "\"capabilities\":[\"completion\"]}";
    for (size_t step = 0; step <= 1; step++) {
        struct prov_doc *d = doc_of(show, step);
        struct prov_show s = {0};
        struct bh_err err = {0};
        assert_int_equal(prov_show_finish(d, 200, &s, &err), 0);
        assert_int_equal(s.context_length, 40960);
        assert_null(s.remote_host);
        prov_show_release(&s);
        prov_doc_free(d);
    }
}

static void show_falls_back_to_any_context_length_and_sees_stubs(void **state)
{
    (void)state;
    struct prov_doc *d = doc_of("{\"model_info\":{\"llama.context_length\":131072},"
                                "\"remote_host\":\"https://ollama.com\","
                                "\"remote_model\":\"glm-5\"}",
                                1);
    struct prov_show s = {0};
    struct bh_err err = {0};
    assert_int_equal(prov_show_finish(d, 200, &s, &err), 0);
    assert_int_equal(s.context_length, 131072);
    assert_string_equal(s.remote_host, "https://ollama.com");
    assert_string_equal(s.remote_model, "glm-5");
    prov_show_release(&s);
    prov_doc_free(d);
    d = doc_of("{\"error\":\"model 'x' not found\"}", 0);
    assert_int_equal(prov_show_finish(d, 404, &s, &err), BH_EREPLY);
    assert_string_equal(err.msg, "showing the model: HTTP 404: model 'x' not found");
    prov_doc_free(d);
}

/* The probe's reply (a non-streamed chat object): a stub names its host; an
 * empty remote_host says nothing; an error status is the server's text. */
static void probe_reply_shows_a_stub(void **state)
{
    (void)state;
    struct prov_show s = {0};
    struct bh_err err = {0};
    struct prov_doc *d = doc_of("{\"model\":\"coder:7b\",\"remote_model\":\"coder:7b\","
                                "\"remote_host\":\"https://ollama.com:443\",\"message\":"
                                "{\"role\":\"assistant\",\"content\":\"OK\"},\"done\":true}",
                                1);
    assert_int_equal(prov_probe_finish(d, 200, &s, &err), 0);
    assert_string_equal(s.remote_host, "https://ollama.com:443");
    prov_show_release(&s);
    prov_doc_free(d);
    d = doc_of("{\"model\":\"coder:7b\",\"remote_host\":\"\",\"done\":true}", 0);
    assert_int_equal(prov_probe_finish(d, 200, &s, &err), 0);
    assert_null(s.remote_host);
    assert_null(s.remote_model);
    prov_doc_free(d);
    d = doc_of("{\"error\":\"model 'x' not found\"}", 0);
    assert_int_equal(prov_probe_finish(d, 404, &s, &err), BH_EREPLY);
    assert_string_equal(err.msg, "probing the model: HTTP 404: model 'x' not found");
    prov_doc_free(d);
}

/* ---- pull ---- */

struct seen {
    char statuses[512];
    int64_t last_total, last_completed;
    int calls;
};

static void version_and_status_tell_what_the_server_enforces(void **state)
{
    (void)state;
    struct prov_server s = {0};
    struct bh_err err = {0};
    for (size_t step = 0; step <= 1; step++) {
        struct prov_doc *d = doc_of("{\"version\":\"0.18.1\"}", step);
        assert_int_equal(prov_version_finish(d, 200, &s, &err), 0);
        assert_string_equal(s.version, "0.18.1");
        prov_doc_free(d);
        d = doc_of("{\"cloud\":{\"disabled\":true,\"source\":\"env\"}}", step);
        assert_int_equal(prov_status_finish(d, 200, &s, &err), 0);
        assert_int_equal(s.status, 1);
        assert_int_equal(s.cloud_disabled, 1);
        assert_string_equal(s.cloud_source, "env");
        prov_doc_free(d);
    }
    /* An older server has no /api/status: 404 is an answer, not an error. */
    struct prov_doc *d = doc_of("404 page not found", 0);
    s.status = 1;
    assert_int_equal(prov_status_finish(d, 404, &s, &err), 0);
    assert_int_equal(s.status, 0);
    assert_int_equal(s.cloud_disabled, 0);
    prov_doc_free(d);
}

static void version_and_status_fail_on_other_replies(void **state)
{
    (void)state;
    struct prov_server s = {0};
    struct bh_err err = {0};
    struct prov_doc *d = doc_of("{\"error\":\"boom\"}", 0);
    assert_int_equal(prov_status_finish(d, 500, &s, &err), BH_EREPLY);
    assert_string_equal(err.msg, "asking the cloud status: HTTP 500: boom");
    assert_int_equal(prov_version_finish(d, 200, &s, &err), BH_EREPLY);
    assert_string_equal(err.msg, "asking the version: the reply has no 'version' — check that "
                                 "the endpoint speaks the 'ollama' API");
    prov_doc_free(d);
    d = doc_of("{\"cloud\":true}", 0);
    assert_int_equal(prov_status_finish(d, 200, &s, &err), BH_EREPLY);
    assert_string_equal(err.msg, "asking the cloud status: the reply has no 'cloud' object — "
                                 "check that the endpoint speaks the 'ollama' API");
    prov_doc_free(d);
}

static void versions_compare_by_number_and_local_starts_at_0_18(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int sign;
    } cases[] = {
        {"0.17.6", "0.17.6", 0},      {"0.17.10", "0.17.9", 1},     {"0.9.0", "0.17.0", -1},
        {"v0.18.0-rc1", "0.18.0", 0}, {"0.12.3-fake", "0.12.3", 0}, {"1.0", "0.99.99", 1},
        {"0.18", "0.18.0", 0},        {"dev", "0.0.1", -1},         {"", "", 0},
    };
    for (size_t i = 0; i < BH_NELEM(cases); i++) {
        int c = prov_version_cmp(cases[i].a, cases[i].b);
        assert_int_equal(c < 0 ? -1 : c > 0, cases[i].sign);
        c = prov_version_cmp(cases[i].b, cases[i].a);
        assert_int_equal(c < 0 ? -1 : c > 0, -cases[i].sign);
    }
    assert_true(prov_version_honours_local("0.18.0"));
    assert_true(prov_version_honours_local("0.20.1"));
    assert_false(prov_version_honours_local("0.17.7"));
    assert_false(prov_version_honours_local("0.12.3-fake"));
    assert_false(prov_version_honours_local(""));
}

static void on_step(void *ud, const struct prov_pull_step *s)
{
    struct seen *v = ud;
    strncat(v->statuses, s->status, sizeof(v->statuses) - strlen(v->statuses) - 2);
    strcat(v->statuses, "|");
    if (s->total) {
        v->last_total = s->total;
        v->last_completed = s->completed;
    }
    v->calls++;
}

static int pull_run(const char *text, size_t step, long status, struct seen *v, struct bh_err *err)
{
    struct prov_pull *s = prov_pull_new(on_step, v);
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += step ? step : n)
        assert_int_equal(prov_pull_feed(s, text + i, step && n - i > step ? step : n - i, err), 0);
    int rc = prov_pull_finish(s, status, err);
    prov_pull_free(s);
    return rc;
}

static const char pull_ok[] =
    "{\"status\":\"pulling manifest\"}\n"
    "{\"status\":\"pulling 3f1a\",\"digest\":\"sha256:3f1a\",\"total\":100}\n"
    "{\"status\":\"pulling 3f1a\",\"digest\":\"sha256:3f1a\",\"total\":100,\"completed\":40}\n"
    "{\"status\":\"pulling 3f1a\",\"digest\":\"sha256:3f1a\",\"total\":100,\"completed\":100}\n"
    "{\"status\":\"verifying sha256 digest\"}\n"
    "{\"status\":\"writing manifest\"}\n"
    "{\"status\":\"success\"}"; /* the last line without its '\n' */

static void pull_progress_reaches_success_in_any_split(void **state)
{
    (void)state;
    for (size_t step = 0; step <= 3; step++) {
        struct seen v = {0};
        struct bh_err err = {0};
        assert_int_equal(pull_run(pull_ok, step, 200, &v, &err), 0);
        assert_int_equal(v.calls, 7);
        assert_string_equal(v.statuses, "pulling manifest|pulling 3f1a|pulling 3f1a|pulling 3f1a|"
                                        "verifying sha256 digest|writing manifest|success|");
        assert_int_equal(v.last_total, 100);
        assert_int_equal(v.last_completed, 100);
    }
}

static void pull_error_mid_stream_is_reported(void **state)
{
    (void)state;
    const char *text = "{\"status\":\"pulling manifest\"}\n"
                       "{\"error\":\"pull model manifest: file does not exist\"}\n";
    for (size_t step = 0; step <= 1; step++) {
        struct seen v = {0};
        struct bh_err err = {0};
        assert_int_equal(pull_run(text, step, 200, &v, &err), BH_EREPLY);
        assert_string_equal(err.msg,
                            "the server reported: pull model manifest: file does not exist");
        assert_int_equal(v.calls, 1);
    }
}

static void pull_without_success_or_with_bad_status_fails(void **state)
{
    (void)state;
    struct seen v = {0};
    struct bh_err err = {0};
    assert_int_equal(pull_run("{\"status\":\"pulling manifest\"}\n", 1, 200, &v, &err), BH_EREPLY);
    assert_non_null(strstr(err.msg, "ended before it reported success"));
    assert_int_equal(pull_run("{\"error\":\"no\"}", 0, 500, &v, &err), BH_EREPLY);
    assert_string_equal(err.msg, "HTTP 500: the server reported: no");
    assert_int_equal(pull_run("garbage\n{\"status\":\"success\"}\n", 0, 200, &v, &err), BH_EREPLY);
    assert_non_null(strstr(err.msg, "line 1 of the pull progress is not a JSON object"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tags_list_models_and_mark_cloud_stubs),
        cmocka_unit_test(a_stub_is_remote_with_only_remote_model),
        cmocka_unit_test(names_compare_as_ollama_does),
        cmocka_unit_test(answered_compares_without_local_suffix),
        cmocka_unit_test(ps_lists_loaded_models_with_context),
        cmocka_unit_test(lists_fail_with_the_servers_words),
        cmocka_unit_test(a_doc_over_its_cap_fails),
        cmocka_unit_test(show_finds_context_length_through_the_architecture),
        cmocka_unit_test(show_falls_back_to_any_context_length_and_sees_stubs),
        cmocka_unit_test(probe_reply_shows_a_stub),
        cmocka_unit_test(version_and_status_tell_what_the_server_enforces),
        cmocka_unit_test(version_and_status_fail_on_other_replies),
        cmocka_unit_test(versions_compare_by_number_and_local_starts_at_0_18),
        cmocka_unit_test(pull_progress_reaches_success_in_any_split),
        cmocka_unit_test(pull_error_mid_stream_is_reported),
        cmocka_unit_test(pull_without_success_or_with_bad_status_fails),
        cmocka_unit_test(v1_models_list_ids_and_llama_n_ctx),
        cmocka_unit_test(v1_models_fail_on_other_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
