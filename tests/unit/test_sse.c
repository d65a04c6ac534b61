/* test_sse.c — the SSE framing shared by the openai and anthropic dialects:
 * every fixture, in LF, CRLF and CR line endings, must give the same events
 * fed whole, byte by byte and in 200 random chunkings; caps and callback
 * errors stop the parser and stay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/sse.h"
#include "util/bh_buf.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

/* Events are recorded as "name|data" followed by '#'. */
struct rec {
    struct bh_buf out;
    int fail_at; /* 1-based event whose callback fails, 0: never */
    int seen;
};

static int record(void *ud, const char *event, const char *data, size_t len, struct bh_err *err)
{
    struct rec *r = ud;
    r->seen++;
    assert_int_equal(data[len], '\0');
    if (r->fail_at && r->seen == r->fail_at)
        return bh_err_set(err, BH_EREPLY, "refused event %d", r->seen);
    bh_buf_printf(&r->out, "%s|", event);
    bh_buf_append(&r->out, data, len);
    bh_buf_puts(&r->out, "#");
    return 0;
}

static uint32_t rng_next(uint32_t *st)
{
    uint32_t x = *st;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *st = x;
}

enum chunking { WHOLE, BYTES, RANDOM };

/* Feeds text as asked and finishes; returns the events ("" when none). */
static char *parse(const char *text, size_t len, enum chunking how, uint32_t seed, int *cut)
{
    struct prov_sse *p = prov_sse_new(0, 0);
    struct rec r = {.fail_at = 0};
    struct bh_err err = {0};
    uint32_t st = seed ? seed : 1;
    bh_buf_init(&r.out, 1 << 20);
    for (size_t off = 0; off < len;) {
        size_t n = how == WHOLE ? len : how == BYTES ? 1 : 1 + rng_next(&st) % 13;
        if (n > len - off)
            n = len - off;
        if (prov_sse_feed(p, text + off, n, record, &r, &err))
            fail_msg("feed: %s", err.msg);
        off += n;
    }
    if (prov_sse_finish(p, record, &r, cut, &err))
        fail_msg("finish: %s", err.msg);
    prov_sse_free(p);
    return bh_buf_detach(&r.out);
}

struct fixture {
    const char *name;
    const char *text; /* with '\n' line ends; rewritten for CRLF and CR */
    const char *events;
    int cut;
};

static const struct fixture fixtures[] = {
    {"openai stream with keep-alive",
     "data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
     "message|{\"a\":1}#message|{\"b\":2}#message|[DONE]#", 0},
    {"named events, value without a space",
     "event: ping\ndata: {}\n\nevent: content_block_stop\ndata:{\"index\":0}\n\n",
     "ping|{}#content_block_stop|{\"index\":0}#", 0},
    {"multi-line data joined with newlines, one leading space stripped",
     "data: a\ndata: b\ndata:\ndata:  c\n\n", "message|a\nb\n\n c#", 0},
    {"ignored fields and a bare data field", "id: 5\nretry: 100\nfoo: bar\ndata\n\n", "message|#",
     0},
    {"event name without data is dropped and does not stick", "event: lonely\n\ndata: x\n\n",
     "message|x#", 0},
    {"comments only", ": one\n:\n:: two\n\n", "", 0},
    {"colons in the value are kept", "data: a: b:c\n\n", "message|a: b:c#", 0},
    {"blank lines before, between and after", "\n\n\ndata: x\n\n\n\ndata: y\n\n\n",
     "message|x#message|y#", 0},
    {"last event without its blank line", "data: 1\n\ndata: [DONE]\n", "message|1#message|[DONE]#",
     0},
    {"cut inside the last line", "data: 1\n\ndata: {\"a\"", "message|1#", 1},
    {"utf-8 passes untouched", "event: t\ndata: caf\xc3\xa9 \xf0\x9f\x98\x80\n\n",
     "t|caf\xc3\xa9 \xf0\x9f\x98\x80#", 0},
};

/* text with every '\n' replaced by eol */
static char *with_eol(const char *text, const char *eol)
{
    size_t n = strlen(text), k = strlen(eol);
    char *out = malloc(n * k + 1), *o = out;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            memcpy(o, eol, k);
            o += k;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static void check(const struct fixture *f, const char *text, enum chunking how, uint32_t seed)
{
    int cut = -1;
    char *got = parse(text, strlen(text), how, seed, &cut);
    if (strcmp(got, f->events) != 0)
        fail_msg("%s (chunking %d, seed %u): got '%s', want '%s'", f->name, how, seed, got,
                 f->events);
    assert_int_equal(cut, f->cut);
    free(got);
}

static void fixtures_give_the_same_events_in_any_chunking_and_line_ending(void **state)
{
    (void)state;
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    for (size_t i = 0; i < BH_NELEM(fixtures); i++) {
        for (size_t e = 0; e < 3; e++) {
            char *text = with_eol(fixtures[i].text, eols[e]);
            uint32_t seed = 0x5eed0000u + (uint32_t)(i * 3 + e);
            check(&fixtures[i], text, WHOLE, 0);
            check(&fixtures[i], text, BYTES, 0);
            for (int k = 0; k < 200; k++)
                check(&fixtures[i], text, RANDOM, rng_next(&seed));
            free(text);
        }
    }
}

/* A "\r\n" split across feeds is one line end: read as two, the "\n" would
 * be a blank line dispatching "a" alone. */
static void crlf_split_across_feeds_is_one_line_end(void **state)
{
    (void)state;
    struct prov_sse *p = prov_sse_new(0, 0);
    struct rec r = {.fail_at = 0};
    struct bh_err err = {0};
    int cut = 0;
    bh_buf_init(&r.out, 1024);
    assert_int_equal(prov_sse_feed(p, "data: a\r", 8, record, &r, &err), 0);
    assert_int_equal(prov_sse_feed(p, "\ndata: b\r", 9, record, &r, &err), 0);
    assert_int_equal(prov_sse_feed(p, "\n\r", 2, record, &r, &err), 0);
    assert_string_equal(r.out.data, "message|a\nb#");
    assert_int_equal(prov_sse_feed(p, "\n", 1, record, &r, &err), 0); /* the "\r\n" of "\r" */
    assert_int_equal(prov_sse_finish(p, record, &r, &cut, &err), 0);
    assert_string_equal(r.out.data, "message|a\nb#");
    assert_int_equal(r.seen, 1);
    bh_buf_release(&r.out);
    prov_sse_free(p);
}

struct cap_case {
    const char *name;
    size_t event_max, total_max;
    const char *feeds[4]; /* fed in turn; the last one must fail */
    const char *msg;
};

static const struct cap_case cap_cases[] = {
    {"a line over the event cap",
     16,
     0,
     {"data: 01234567890\n"},
     "a line of the event stream exceeds 16 bytes"},
    {"a line over the cap before its end",
     16,
     0,
     {"data: 0123", "4567890123"},
     "a line of the event stream exceeds 16 bytes"},
    {"data lines that add up past the cap",
     16,
     0,
     {"data: 0123456789\n", "data: 0123456789\n"},
     "an event of the event stream exceeds 16 bytes"},
    {"keep-alives past the total cap",
     0,
     40,
     {": keep-alive\n: keep-alive\n", ": keep-alive\n: keep-alive\n"},
     "the whole of the event stream exceeds 40 bytes"},
};

static void caps_fail_the_feed_and_stay_failed(void **state)
{
    (void)state;
    for (size_t i = 0; i < BH_NELEM(cap_cases); i++) {
        const struct cap_case *c = &cap_cases[i];
        struct prov_sse *p = prov_sse_new(c->event_max, c->total_max);
        struct rec r = {.fail_at = 0};
        struct bh_err err = {0};
        int rc = 0, cut = 0;
        bh_buf_init(&r.out, 1024);
        for (size_t k = 0; k < 4 && c->feeds[k]; k++) {
            assert_int_equal(rc, 0);
            rc = prov_sse_feed(p, c->feeds[k], strlen(c->feeds[k]), record, &r, &err);
        }
        if (rc != BH_ETOOBIG || !strstr(err.msg, c->msg))
            fail_msg("%s: rc %d '%s'", c->name, rc, err.msg);
        assert_int_equal(r.seen, 0);
        bh_err_clear(&err);
        assert_int_equal(prov_sse_feed(p, "\n\n", 2, record, &r, &err), BH_ETOOBIG);
        assert_non_null(strstr(err.msg, c->msg));
        assert_int_equal(prov_sse_finish(p, record, &r, &cut, &err), BH_ETOOBIG);
        assert_int_equal(r.seen, 0);
        bh_buf_release(&r.out);
        prov_sse_free(p);
    }
}

static void callback_error_stops_the_parser_and_stays(void **state)
{
    (void)state;
    static const char text[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    struct prov_sse *p = prov_sse_new(0, 0);
    struct rec r = {.fail_at = 2};
    struct bh_err err = {0};
    bh_buf_init(&r.out, 1024);
    assert_int_equal(prov_sse_feed(p, text, sizeof(text) - 1, record, &r, &err), BH_EREPLY);
    assert_string_equal(err.msg, "refused event 2");
    assert_string_equal(r.out.data, "message|1#");
    assert_int_equal(r.seen, 2); /* event 3 never reached the callback */
    bh_err_clear(&err);
    assert_int_equal(prov_sse_feed(p, "data: 4\n\n", 9, record, &r, &err), BH_EREPLY);
    assert_string_equal(err.msg, "refused event 2");
    assert_int_equal(r.seen, 2);
    bh_buf_release(&r.out);
    prov_sse_free(p);
    prov_sse_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixtures_give_the_same_events_in_any_chunking_and_line_ending),
        cmocka_unit_test(crlf_split_across_feeds_is_one_line_end),
        cmocka_unit_test(caps_fail_the_feed_and_stay_failed),
        cmocka_unit_test(callback_error_stops_the_parser_and_stays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
