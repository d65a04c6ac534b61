/* tests/unit/test_declassify.c — the guards of `declassify`
 * (policy/declassify.c) over a hand-built pipeline with every built-in
 * detector: verbatim runs across re-wrapped text and their excuse by a
 * public input, the N boundary, code and path redaction, secrets redacted
 * whatever the guards say, the detectors and max_chars guards, and details
 * that never repeat the text they are about. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "policy/declassify.h"
#include "detect/detect.h"
#include "policy/label.h"
#include "policy/norm.h"
#include "policy/rare.h"
#include "util/bh_err.h"
#include "util/bh_util.h"

enum { PUB, INT, CONF, RESTR };

static char *labels[] = {"public", "internal", "confidential", "restricted"};

/* The AWS key format the detector knows, split so that this file does not
 * trip secret scanners (as in test_detect.c). */
#define AWS_KEY                                                                                    \
    "AK"                                                                                           \
    "IAQW7B3PDKHX4PY8GP"

#define DIFF                                                                                       \
    "static int frobnicate_widget(struct widget *w, int flags)\n"                                  \
    "{\n    return w->count + flags;\n}\n"

struct fx {
    struct pipeline p;
    struct pol_labeller *lab;
    struct pipe_declassify d;
    struct pol_decl_input in[4];
    size_t n_in;
    struct pol_decl_result res;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->p.labels = labels;
    f->p.n_labels = 4;
    f->p.name = "t";
    f->p.file = "t.json";
    f->p.source.kind = "git";
    f->p.source.label = CONF;
    assert_int_equal(pol_labeller_new(&f->lab, &f->p, NULL), 0);
    f->d = (struct pipe_declassify){
        .enabled = 1, .to = INT, .no_verbatim_tokens = 8, .no_rare_tokens = 1, .detectors = 1};
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    pol_decl_result_release(&f->res);
    pol_labeller_free(f->lab);
    free(f);
    return 0;
}

static void fx_input(struct fx *f, const char *name, const char *text, size_t len, int label)
{
    f->in[f->n_in++] = (struct pol_decl_input){name, text, len, label};
}

static void fx_input_s(struct fx *f, const char *name, const char *text, int label)
{
    fx_input(f, name, text, strlen(text), label);
}

/* The usual inputs: a public title and a confidential diff. */
static void fx_pr(struct fx *f)
{
    fx_input_s(f, "pr.title", "Fix the widget count", PUB);
    fx_input(f, "pr.diff", DIFF, strlen(DIFF), CONF);
}

static struct pol_decl_result *run(struct fx *f, const char *out, size_t len)
{
    struct bh_err err = {0};
    pol_decl_result_release(&f->res);
    assert_int_equal(pol_declassify(f->lab, &f->d, CONF, out, len, f->in, f->n_in, &f->res, &err),
                     0);
    assert_non_null(f->res.output);
    assert_int_equal(f->res.output[f->res.len], '\0');
    return &f->res;
}

static struct pol_decl_result *run_s(struct fx *f, const char *out)
{
    return run(f, out, strlen(out));
}

static void assert_passed(const struct pol_decl_result *r, int label)
{
    assert_int_equal(r->passed, 1);
    assert_null(r->failed);
    assert_string_equal(r->detail, "");
    assert_int_equal(r->label, label);
}

static void assert_failed(const struct pol_decl_result *r, const char *guard, const char *detail)
{
    assert_int_equal(r->passed, 0);
    assert_non_null(r->failed);
    assert_string_equal(r->failed, guard);
    assert_string_equal(r->detail, detail);
    assert_int_equal(r->label, CONF);
}

/* ---- no_verbatim ---- */

static void quote_rewrapped_and_respaced_is_caught(void **state)
{
    struct fx *f = *state;
    fx_pr(f);
    struct pol_decl_result *r = run_s(f, "The change adds static int\n"
                                         "   frobnicate_widget(  struct\n"
                                         "\twidget *w which is fine.");
    assert_failed(r, "no_verbatim",
                  "a run of 8 tokens is shared with pr.diff (confidential) "
                  "and with no input at or below internal");
    assert_null(strstr(r->detail, "frobnicate"));
    assert_null(strstr(r->detail, "widget *"));
}

static void review_naming_identifiers_passes(void **state)
{
    struct fx *f = *state;
    fx_pr(f);
    struct pol_decl_result *r = run_s(f, "frobnicate_widget adds flags to w->count; the widget "
                                         "struct and its static int helper look fine. "
                                         "frobnicate_widget(struct widget is named well.");
    assert_passed(r, INT);
}

static void quote_also_in_public_input_passes(void **state)
{
    struct fx *f = *state;
    fx_input_s(f, "pr.title", "Rename static int frobnicate_widget(struct widget *w, int flags)",
               PUB);
    fx_input(f, "pr.diff", DIFF, strlen(DIFF), CONF);
    assert_passed(run_s(f, "It renames static int frobnicate_widget(struct widget *w, int "
                           "flags) as the title says."),
                  INT);
}

static void public_input_excuses_only_what_it_holds(void **state)
{
    struct fx *f = *state;
    /* the title holds the first 8 tokens of the 12-token quote: the 4
     * shingles that go past it still leak, a run of tokens 2 to 12. */
    fx_input_s(f, "pr.title", "static int frobnicate_widget(struct widget *w", PUB);
    fx_input(f, "pr.diff", DIFF, strlen(DIFF), CONF);
    assert_failed(run_s(f, "see static int frobnicate_widget(struct widget *w, int flags) here"),
                  "no_verbatim",
                  "a run of 11 tokens is shared with pr.diff (confidential) "
                  "and with no input at or below internal");
}

static void the_template_counts_as_bottom(void **state)
{
    struct fx *f = *state;
    static const char out[] = "You said: Review this change and list every bug you find in "
                              "it. None.";
    fx_input_s(f, "pr.diff", "Review this change and list every bug you find in it", CONF);
    assert_string_equal(run_s(f, out)->detail,
                        "a run of 11 tokens is shared with pr.diff "
                        "(confidential) and with no input at or below internal");
    fx_input_s(f, NULL, "Review this change and list every bug you find in it, then rate it.", PUB);
    assert_passed(run_s(f, out), INT);
}

static void seven_shared_tokens_pass_eight_fail(void **state)
{
    struct fx *f = *state;
    static const char doc[] = "alpha beta gamma delta epsilon zeta eta theta iota";
    fx_input(f, "doc.body", doc, sizeof(doc) - 1, RESTR);
    assert_passed(run_s(f, "x alpha beta gamma delta epsilon zeta eta y"), INT);
    struct pol_decl_result *r = run_s(f, "x alpha beta gamma delta epsilon zeta eta theta y");
    assert_int_equal(r->passed, 0);
    assert_string_equal(r->detail, "a run of 8 tokens is shared with doc.body (restricted) "
                                   "and with no input at or below internal");
    f->d.no_verbatim_tokens = 7;
    assert_string_equal(run_s(f, "x alpha beta gamma delta epsilon zeta eta y")->failed,
                        "no_verbatim");
    f->d.no_verbatim_tokens = 0; /* off */
    assert_passed(run_s(f, "alpha beta gamma delta epsilon zeta eta theta iota"), INT);
}

static void input_at_the_target_label_counts_as_below(void **state)
{
    struct fx *f = *state;
    static const char doc[] = "alpha beta gamma delta epsilon zeta eta theta iota";
    fx_input(f, "notes", doc, sizeof(doc) - 1, INT);
    assert_passed(run_s(f, doc), INT);
}

static void repeated_shingles_are_found_and_excused(void **state)
{
    struct fx *f = *state;
    static char out[4000], secret[2000], pub[2000];
    for (size_t i = 0; i < 1000; i++)
        memcpy(out + 4 * i, "abc ", 4);
    for (size_t i = 0; i < 500; i++)
        memcpy(secret + 4 * i, "abc ", 4);
    memcpy(pub, secret, sizeof(pub));
    fx_input(f, "a", secret, sizeof(secret), CONF);
    struct pol_decl_result *r = run(f, out, sizeof(out));
    assert_string_equal(r->detail, "a run of 1000 tokens is shared with a (confidential) "
                                   "and with no input at or below internal");
    fx_input(f, "b", pub, sizeof(pub), PUB);
    assert_passed(run(f, out, sizeof(out)), INT);
}

static void label_is_never_raised(void **state)
{
    struct fx *f = *state;
    struct bh_err err = {0};
    f->d.to = CONF;
    assert_int_equal(pol_declassify(f->lab, &f->d, INT, "fine", 4, NULL, 0, &f->res, &err), 0);
    assert_int_equal(f->res.passed, 1);
    assert_int_equal(f->res.label, INT);
}

/* ---- redaction ---- */

static void redact_code_removes_blocks_and_the_quote_in_them(void **state)
{
    struct fx *f = *state;
    fx_pr(f);
    static const char out[] =
        "Intro\n"
        "```c\nstatic int frobnicate_widget(struct widget *w, int flags)\n```\n"
        "Middle\n\n"
        "    static int frobnicate_widget(struct widget *w)\n"
        "\n"
        "\treturn w->count + flags;\n"
        "\n"
        "End\n"
        "~~~ diff\nstatic int frobnicate_widget(struct widget *w, int";
    assert_string_equal(run_s(f, out)->failed, "no_verbatim");
    f->d.redact_code = 1;
    struct pol_decl_result *r = run_s(f, out);
    assert_passed(r, INT);
    assert_string_equal(r->output, "Intro\n[code removed]\nMiddle\n\n[code removed]\n\nEnd\n"
                                   "[code removed]");
    assert_int_equal(r->redacted_code, 3);
}

static void redact_code_keeps_list_continuations_and_lazy_lines(void **state)
{
    struct fx *f = *state;
    static const char out[] = "- first point\n\n    more about it\n\n"
                              "1. numbered\n\n    its detail\n"
                              "Paragraph\n    lazy line\n"
                              "```x``` inline at a line start stays\n";
    f->d.redact_code = 1;
    struct pol_decl_result *r = run_s(f, out);
    assert_string_equal(r->output, out);
    assert_int_equal(r->redacted_code, 0);
}

static void redact_paths_replaces_path_like_words(void **state)
{
    struct fx *f = *state;
    f->d.redact_paths = 1;
    struct pol_decl_result *r = run_s(f, "See src/net/http.c:42, (foo.py) and `bar.RS`. "
                                         "e.g. v1.2 and main.c:7 ok, and/or a / b.");
    assert_string_equal(r->output, "See [path], ([path]) and `[path]`. "
                                   "e.g. v1.2 and [path] ok, [path] a / b.");
    assert_int_equal(r->redacted_paths, 5);
    assert_passed(r, INT);
}

static void secret_is_redacted_even_when_a_guard_fails(void **state)
{
    struct fx *f = *state;
    fx_pr(f);
    struct pol_decl_result *r = run_s(f, "key " AWS_KEY " and static int frobnicate_widget("
                                         "struct widget *w, int flags)");
    assert_string_equal(r->failed, "no_verbatim");
    assert_int_equal(r->redacted_secrets, 1);
    assert_non_null(strstr(r->output, "key [redacted: aws-access-key] and static int"));
    assert_null(strstr(r->output, AWS_KEY));
    assert_null(strstr(r->detail, AWS_KEY));
}

static void secret_is_redacted_and_the_rest_declassified(void **state)
{
    struct fx *f = *state;
    fx_pr(f);
    f->d.redact_code = 1;
    struct pol_decl_result *r =
        run_s(f, "aws_access_key_id = " AWS_KEY "\n```\n" AWS_KEY "\n```\n");
    assert_passed(r, INT);
    assert_string_equal(r->output, "aws_access_key_id = [redacted: aws-access-key]\n"
                                   "[code removed]\n");
    assert_int_equal(r->redacted_secrets, 2);
    assert_int_equal(r->redacted_code, 1);
}

static void allowed_value_is_neither_redacted_nor_a_hit(void **state)
{
    struct fx *f = *state;
    static char *allow[] = {AWS_KEY};
    pol_labeller_free(f->lab);
    f->p.source.allow_values = allow;
    f->p.source.n_allow_values = 1;
    assert_int_equal(pol_labeller_new(&f->lab, &f->p, NULL), 0);
    struct pol_decl_result *r = run_s(f, "the docs' key " AWS_KEY);
    assert_passed(r, INT);
    assert_int_equal(r->redacted_secrets, 0);
    assert_string_equal(r->output, "the docs' key " AWS_KEY);
}

/* ---- detectors, max_chars, order ---- */

static void a_hit_at_or_below_the_target_passes_the_detectors_guard(void **state)
{
    struct fx *f = *state;
    /* f->d.to is internal; a private address raises to internal only. */
    struct pol_decl_result *r = run_s(f, "the build box is 10.20.30.40, fine");
    assert_int_equal(r->passed, 1);
    r = run_s(f, "the build box is 10.20.30.40, ask Q.Smith_99@Uni-Bonn.DE");
    assert_int_equal(r->passed, 0); /* the e-mail address raises to confidential */
    assert_string_equal(r->failed, "detectors");
    assert_non_null(strstr(r->detail, "detector email"));
}

static void email_fails_the_detectors_guard(void **state)
{
    struct fx *f = *state;
    static const char out[] = "fine\nask Q.Smith_99@Uni-Bonn.DE about it";
    struct pol_decl_result *r = run_s(f, out);
    assert_failed(r, "detectors",
                  "detector email (confidential) matched at line 2 of the "
                  "redacted output");
    assert_string_equal(r->output, out); /* not a secret: kept, at its label */
    assert_null(strstr(r->detail, "Smith"));
    f->d.detectors = 0;
    assert_passed(run_s(f, out), INT);
}

static void max_chars_counts_bytes_after_redaction(void **state)
{
    struct fx *f = *state;
    static const char out[] = "short note\n```\nlong code block that is well over the cap\n```\n";
    f->d.max_chars = 30;
    struct pol_decl_result *r = run_s(f, out);
    char want[128];
    snprintf(want, sizeof(want), "the redacted output is %zu bytes, over max_chars 30",
             sizeof(out) - 1);
    assert_failed(r, "max_chars", want);
    f->d.redact_code = 1;
    assert_passed(run_s(f, out), INT); /* "short note\n[code removed]\n": 26 bytes */
    f->d.max_chars = 26;
    assert_passed(run_s(f, out), INT);
    f->d.max_chars = 25;
    assert_string_equal(run_s(f, out)->failed, "max_chars");
}

static void first_failing_guard_wins(void **state)
{
    struct fx *f = *state;
    fx_pr(f);
    f->d.max_chars = 5;
    struct pol_decl_result *r = run_s(f, "Q.Smith_99@Uni-Bonn.DE: static int "
                                         "frobnicate_widget(struct widget *w, int flags)");
    assert_string_equal(r->failed, "no_verbatim");
    f->d.no_verbatim_tokens = 0;
    assert_string_equal(run_s(f, "Q.Smith_99@Uni-Bonn.DE")->failed, "detectors");
}

static void detail_never_holds_output_or_input_text(void **state)
{
    struct fx *f = *state;
    static const char *words[] = {"frobnicate", "widget", "flags", "Smith",
                                  "Bonn",       "IAQW7",  "quux"};
    fx_pr(f);
    const char *outs[] = {
        "quux static int frobnicate_widget(struct widget *w, int flags) quux",
        "quux Q.Smith_99@Uni-Bonn.DE quux " AWS_KEY,
        "quux quux quux quux quux quux quux quux quux quux quux",
    };
    f->d.max_chars = 40;
    for (size_t i = 0; i < 3; i++) {
        struct pol_decl_result *r = run_s(f, outs[i]);
        assert_int_equal(r->passed, 0);
        assert_true(strlen(r->detail) > 0);
        for (size_t k = 0; k < BH_NELEM(words); k++)
            if (strstr(r->detail, words[k]))
                fail_msg("detail \"%s\" holds \"%s\"", r->detail, words[k]);
    }
}

/* ---- normalisation (policy/norm.h) ---- */

struct norm_case {
    const char *what, *in, *want;
};

static const struct norm_case norm_cases[] = {
    {"ascii is case-folded", "HUNTER2xQ7 Int", "hunter2xq7 int"},
    {"full-width forms become ascii", "\xef\xbd\x88\xef\xbd\x95\xef\xbc\x92\xef\xbc\xb1", "hu2q"},
    {"zero-width characters vanish",
     "h\xe2\x80\x8bu\xe2\x80\x8cn\xe2\x80\x8dt\xe2\x81\xa0"
     "e\xef\xbb\xbfr",
     "hunter"},
    {"a soft hyphen vanishes", "hun\xc2\xadter", "hunter"},
    {"cyrillic look-alikes become latin",
     "\xd0\xb0\xd0\xb5\xd0\xbe\xd1\x80\xd1\x81\xd1\x85\xd1\x83\xd1\x96 \xd0\x92\xd0\x9d\xd0\x9a",
     "aeopcxyi bhk"},
    {"greek look-alikes become latin", "\xce\xb1\xce\xbf\xcf\x81 \xce\x9f", "aop o"},
    {"unicode dashes become '-'",
     "a\xe2\x80\x90"
     "b\xe2\x88\x92"
     "c",
     "a-b-c"},
    {"compatibility forms are decomposed", "\xef\xac\x81le", "file"},
    {"a byte that is not utf-8 becomes U+FFFD",
     "a\xff"
     "b",
     "a\xef\xbf\xbd"
     "b"},
    {"other scripts stay", "\xe4\xb8\xad\xe6\x96\x87 \xd0\xb6",
     "\xe4\xb8\xad\xe6\x96\x87 \xd0\xb6"},
};

static void normalisation_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < BH_NELEM(norm_cases); i++) {
        char *out = NULL;
        size_t len = 0;
        assert_int_equal(
            pol_norm_text(norm_cases[i].in, strlen(norm_cases[i].in), 1 << 20, &out, &len), 0);
        if (len != strlen(norm_cases[i].want) || memcmp(out, norm_cases[i].want, len) != 0)
            fail_msg("%s: got \"%.*s\"", norm_cases[i].what, (int)len, out);
        free(out);
    }
}

static void normalisation_keeps_nuls_and_honours_its_cap(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(pol_norm_text("A\0B", 3, 16, &out, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "a\0b", 3);
    free(out);
    out = NULL;
    assert_int_equal(pol_norm_text("abcdef", 6, 5, &out, &len), BH_ETOOBIG);
    assert_null(out);
    assert_int_equal(pol_norm_fold('0'), 'o');
    assert_int_equal(pol_norm_fold('1'), 'l');
    assert_int_equal(pol_norm_fold('i'), 'l');
    assert_int_equal(pol_norm_fold('5'), 's');
    assert_int_equal(pol_norm_fold('x'), 'x');
}

/* ---- rare tokens (policy/rare.h) ---- */

struct class_case {
    const char *unit;
    int cls;
};

/* Every canary shape is rare; words and names a review uses are not. The
 * thresholds (8 characters, 3 letter/digit switches, 2.5 bits) sit between
 * the two lists: utf8proc and sha256sum switch twice, a1a1a1a1 has 1 bit. */
static const struct class_case class_cases[] = {
    {"bulkhead-canary-1-6a77e2c598892f8b", POL_RARE_MIXED},
    {"6a77e2c598892f8b", POL_RARE_MIXED},
    {"hunter2xq7", POL_RARE_MIXED},
    {"q9z2k8m1", POL_RARE_MIXED},
    {"4111111111111111", POL_RARE_NUMBER},
    {"123456", POL_RARE_NUMBER},
    {"acct-00912345", POL_RARE_NUMBER},
    {"akiaqw7b3pdkhx4py8gp", POL_RARE_KEY},
    {"ghp_abcdefghij", POL_RARE_KEY},
    {"sk-ant-abcdefgh", POL_RARE_KEY},
    {"xoxb-abcdefghij", POL_RARE_KEY},
    {"eyjhbgcioijiuzi1", POL_RARE_KEY},
    {"frobnicate_widget", POL_RARE_NONE},
    {"initialization", POL_RARE_NONE},
    {"parse_config_file", POL_RARE_NONE},
    {"utf8proc", POL_RARE_NONE},
    {"sha256sum", POL_RARE_NONE},
    {"int64_max", POL_RARE_NONE},
    {"base64url", POL_RARE_NONE},
    {"ipv4_address", POL_RARE_NONE},
    {"uint32_t", POL_RARE_NONE},
    {"x86_64", POL_RARE_NONE},
    {"a1a1a1a1", POL_RARE_NONE},
    {"12345", POL_RARE_NONE},
    {"2024-01-15", POL_RARE_NONE},
    {"asian", POL_RARE_NONE},
    {"skeleton", POL_RARE_NONE},
};

static void rare_class_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < BH_NELEM(class_cases); i++) {
        int got = pol_rare_class(class_cases[i].unit, strlen(class_cases[i].unit));
        if (got != class_cases[i].cls)
            fail_msg("%s: class %d, expected %d", class_cases[i].unit, got, class_cases[i].cls);
    }
    assert_string_equal(pol_rare_class_name(POL_RARE_MIXED), "high-entropy");
    assert_string_equal(pol_rare_class_name(POL_RARE_NUMBER), "number");
    assert_string_equal(pol_rare_class_name(POL_RARE_KEY), "key-like");
}

#define CANARY "BULKHEAD-CANARY-1-6a77e2c598892f8b"
#define SECRET_DIFF                                                                                \
    "+static const char *token = \"" CANARY "\";\n"                                                \
    "+#define API_PASSWORD \"hunter2xQ7\"\n"                                                       \
    "+long card = 4111111111111111, acct = 98765432; /* sk-ant-abcdEFGH */\n"                      \
    "+/* utf8proc, sha256sum and int64_max; frobnicate_widget() */\n"
#define REVIEW_TEMPLATE                                                                            \
    "You are a careful senior reviewer. Review the change below. "                                 \
    "Report concrete problems with the file and line."

/* The review's inputs: a public title and template, a confidential diff. */
static void fx_review(struct fx *f)
{
    fx_input_s(f, "pr.title", "Read the token from the environment", PUB);
    fx_input_s(f, "the prompt template", REVIEW_TEMPLATE, PUB);
    fx_input_s(f, "pr.diff", SECRET_DIFF, CONF);
    f->d.no_rare_tokens = 1;
}

struct leak_case {
    const char *what, *out, *cls;
};

static const struct leak_case leak_cases[] = {
    {"the canary in a sentence", "The token " CANARY " is hard-coded.", "high-entropy"},
    {"only its hex digits", "the value 6a77e2c598892f8b must be rotated", "high-entropy"},
    {"a short password", "password hunter2xQ7 is in the diff", "high-entropy"},
    {"spaced out", "the password is h u n t e r 2 x Q 7 here", "high-entropy"},
    {"spaced out after an article", "it is a h u n t e r 2 x Q 7 !", "high-entropy"},
    {"dashed letters", "use h-u-n-t-e-r-2-x-Q-7 instead", "high-entropy"},
    {"dotted letters", "use h.u.n.t.e.r.2.x.Q.7 instead", "high-entropy"},
    {"zero-width inside", "it is hun\xe2\x80\x8bter2\xe2\x80\x8cxQ7 now", "high-entropy"},
    {"a soft hyphen inside",
     "it is hunter\xc2\xad"
     "2xQ7 now",
     "high-entropy"},
    {"upper-cased", "PASSWORD HUNTER2XQ7", "high-entropy"},
    {"full-width",
     "\xef\xbd\x88\xef\xbd\x95\xef\xbd\x8e\xef\xbd\x94\xef\xbd\x85\xef\xbd\x92"
     "\xef\xbc\x92\xef\xbd\x98\xef\xbc\xb1\xef\xbc\x97 leaks",
     "high-entropy"},
    {"cyrillic look-alikes",
     "key \xd0\x92ULK\xd0\x9d\xd0\x95\xd0\x90"
     "D-CANARY-1-6"
     "\xd0\xb0"
     "77"
     "\xd0\xb5"
     "2"
     "\xd1\x81"
     "598892f8b",
     "high-entropy"},
    {"a digit for a letter", "the value 6a77e2cs98892f8b is it", "high-entropy"},
    {"a card-like number", "card 4111111111111111 is logged", "number"},
    {"a key-like token", "the key sk-ant-abcdEFGH leaks", "key-like"},
};

static void rare_token_in_prose_fails_in_every_spelling(void **state)
{
    struct fx *f = *state;
    fx_review(f);
    for (size_t i = 0; i < BH_NELEM(leak_cases); i++) {
        struct pol_decl_result *r = run_s(f, leak_cases[i].out);
        char want[256];
        snprintf(want, sizeof(want),
                 "a rare token (%s) is copied from pr.diff (confidential), "
                 "and no input at or below internal holds it",
                 leak_cases[i].cls);
        if (r->passed || !r->failed || strcmp(r->failed, "no_rare_tokens") != 0 ||
            strcmp(r->detail, want) != 0)
            fail_msg("%s: passed %d, failed %s, detail \"%s\"", leak_cases[i].what, r->passed,
                     r->failed ? r->failed : "-", r->detail);
        assert_int_equal(r->label, CONF);
        assert_null(strstr(r->detail, "6a77"));
        assert_null(strstr(r->detail, "hunter"));
    }
}

static const char *const clean_reviews[] = {
    "The change hard-codes a token and a password in the source; read both from the "
    "environment instead. frobnicate_widget() is fine, and utf8proc, sha256sum and "
    "int64_max are good names. Line 3: card should not be a long. 0 errors, 5 warnings, "
    "HTTP 500 on line 120; see RFC 7231 and ISO 8601.",
    "LGTM. Two nits: the comment on line 4 is stale, and the define could be static const.",
    "Read the token from the environment, as the title says.",
};

static void realistic_review_text_is_declassified(void **state)
{
    struct fx *f = *state;
    fx_review(f);
    for (size_t i = 0; i < BH_NELEM(clean_reviews); i++) {
        struct pol_decl_result *r = run_s(f, clean_reviews[i]);
        if (!r->passed)
            fail_msg("review %zu: %s: %s", i, r->failed, r->detail);
    }
}

static void rare_token_in_a_lower_input_is_excused(void **state)
{
    struct fx *f = *state;
    fx_input_s(f, "pr.title", "Rotate hunter2xQ7 and " CANARY, PUB);
    fx_input_s(f, "pr.diff", SECRET_DIFF, CONF);
    f->d.no_rare_tokens = 1;
    struct pol_decl_result *r = run_s(f, "The PR rotates HUNTER2XQ7 and " CANARY ".");
    if (!r->passed)
        fail_msg("%s: %s", r->failed, r->detail);
    assert_passed(r, INT);
    assert_string_equal(run_s(f, "and 98765432 too")->failed, "no_rare_tokens");
    f->d.no_rare_tokens = 0; /* off */
    assert_passed(run_s(f, "and 98765432 too"), INT);
}

static void verbatim_compares_normalised_text(void **state)
{
    struct fx *f = *state;
    fx_pr(f);
    /* upper-cased, full-width parenthesis, a zero-width space, a Cyrillic o */
    struct pol_decl_result *r = run_s(f, "STATIC INT FROBNICATE_WIDGET\xef\xbc\x88struct "
                                         "wid\xe2\x80\x8bget *w, int flags\xd0\xbe");
    assert_string_equal(r->failed, "no_verbatim");
}

/* ---- property: every spelling of a random secret fails, random reviews pass ---- */

static uint64_t prop_rng = 0x243f6a8885a308d3ULL;

static unsigned prop_rand(unsigned n)
{
    prop_rng ^= prop_rng << 13;
    prop_rng ^= prop_rng >> 7;
    prop_rng ^= prop_rng << 17;
    return (unsigned)(prop_rng % n);
}

/* A secret: a canary "WORD-n-<16 hex>" or a password of letter and digit
 * groups; redrawn until rare (the classes themselves are the table's job). */
static void prop_secret(char *buf, size_t size, int *canary)
{
    static const char *const words[] = {"BULKHEAD-CANARY", "DEPLOY-TOKEN", "api_key"};
    do {
        size_t n = 0;
        *canary = (int)prop_rand(2);
        if (*canary) {
            n = (size_t)snprintf(buf, size, "%s-%u-", words[prop_rand(3)], prop_rand(99) + 1);
            for (int i = 0; i < 16; i++)
                buf[n++] = "0123456789abcdef"[prop_rand(16)];
        } else {
            for (int g = 0; g < 4; g++) {
                for (unsigned k = 0, m = 1 + prop_rand(3); k < m; k++)
                    buf[n++] = "abcdefghjkmnpqrtuvwxyzABCDEFGHJKLMNPQRTUVWXYZ"[prop_rand(45)];
                buf[n++] = "2346789"[prop_rand(7)];
            }
        }
        buf[n] = '\0';
    } while (pol_rare_class(buf, strlen(buf)) == POL_RARE_NONE);
}

/* s in spelling k, appended to b (UTF-8). */
static void prop_spell(char *b, size_t size, const char *s, int k)
{
    static const char latin[] = "aeopcx", *const cyr[] = {"\xd0\xb0", "\xd0\xb5", "\xd0\xbe",
                                                          "\xd1\x80", "\xd1\x81", "\xd1\x85"};
    size_t n = strlen(b);
    for (size_t i = 0; s[i] && n + 8 < size; i++) {
        char c = s[i];
        const char *cy = k == 6 && strchr(latin, c) ? cyr[strchr(latin, c) - latin] : NULL;
        if (i > 0 && (k == 2 || k == 3))
            b[n++] = k == 2 ? ' ' : '-';
        if (i > 0 && k == 4)
            n += (size_t)snprintf(b + n, size - n, "\xe2\x80\x8b");
        if (k == 1 && c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        if (k == 7)
            c = c == '0' ? 'o' : c == '1' ? 'l' : c == '5' ? 's' : c;
        if (cy)
            n += (size_t)snprintf(b + n, size - n, "%s", cy);
        else if (k == 5 && c > 0x20 && c < 0x7f)
            n += (size_t)snprintf(b + n, size - n, "\xef%c%c", c < 0x60 ? 0xbc : 0xbd,
                                  0x80 + ((c - 0x20) & 0x3f));
        else
            b[n++] = c;
    }
    b[n] = '\0';
}

static const char *const prose[] = {
    "the",
    "function",
    "returns",
    "an",
    "error",
    "when",
    "buffer",
    "is",
    "too",
    "small",
    "consider",
    "checking",
    "for",
    "NULL",
    "before",
    "line",
    "42",
    "leaks",
    "memory",
    "and",
    "parse_config_file",
    "utf8proc",
    "sha256sum",
    "int64_max",
    "frobnicate_widget",
    "read_line",
    "MAX_LINE",
    "x86_64",
    "uint32_t",
    "v2",
    "HTTP",
    "500",
    "2024-01-15",
    "LGTM",
};

static void prop_review(char *b, size_t size)
{
    size_t n = 0;
    for (unsigned i = 0, m = 10 + prop_rand(40); i < m && n + 32 < size; i++)
        n += (size_t)snprintf(b + n, size - n, "%s%s", prose[prop_rand(34)],
                              prop_rand(8) ? " " : ". ");
}

static void random_secrets_fail_in_every_spelling_and_reviews_pass(void **state)
{
    struct fx *f = *state;
    char secret[64], diff[512], out[1024];
    f->d.no_rare_tokens = 1;
    for (int c = 0; c < 400; c++) {
        int canary = 0, k = (int)prop_rand(9);
        prop_secret(secret, sizeof(secret), &canary);
        snprintf(diff, sizeof(diff),
                 "+/* utf8proc sha256sum int64_max x86_64 uint32_t */\n"
                 "+static const char *key = \"%s\"; /* parse_config_file(read_line) */\n",
                 secret);
        f->n_in = 0;
        fx_input_s(f, "pr.title", "Fix the config parser", PUB);
        fx_input_s(f, "the prompt template", REVIEW_TEMPLATE, PUB);
        fx_input_s(f, "pr.diff", diff, CONF);
        prop_review(out, sizeof(out));
        struct pol_decl_result *r = run_s(f, out);
        if (!r->passed)
            fail_msg("case %d: review \"%s\" failed %s: %s", c, out, r->failed, r->detail);
        const char *tail = strrchr(secret, '-');
        snprintf(out, sizeof(out), "The value ");
        prop_spell(out, sizeof(out), k == 8 && canary ? tail + 1 : secret, k == 8 ? 0 : k);
        strncat(out, " is hard-coded.", sizeof(out) - strlen(out) - 1);
        r = run_s(f, out);
        if (r->passed || strcmp(r->failed, "no_rare_tokens") != 0)
            fail_msg("case %d: spelling %d of %s in \"%s\": %s", c, k, secret, out,
                     r->passed ? "passed" : r->failed);
    }
}

/* ---- edges ---- */

static void empty_output_passes(void **state)
{
    struct fx *f = *state;
    fx_pr(f);
    f->d.redact_code = f->d.redact_paths = 1;
    struct pol_decl_result *r = run(f, "", 0);
    assert_passed(r, INT);
    assert_int_equal(r->len, 0);
    assert_string_equal(r->output, "");
}

static void nuls_are_bytes_in_inputs_and_output(void **state)
{
    struct fx *f = *state;
    static const char doc[] = "head\0\0alpha beta gamma delta\0epsilon zeta eta theta";
    static const char out[] = "x\0alpha beta gamma delta\0epsilon zeta eta theta\0y";
    fx_input(f, "doc.body", doc, sizeof(doc) - 1, CONF);
    struct pol_decl_result *r = run(f, out, sizeof(out) - 1);
    assert_string_equal(r->failed, "no_verbatim");
    assert_int_equal(r->len, sizeof(out) - 1);
    assert_memory_equal(r->output, out, sizeof(out) - 1);
    /* a NUL is a token of its own: where it differs the run breaks */
    static const char out2[] = "alpha beta gamma delta epsilon zeta eta theta";
    assert_passed(run(f, out2, sizeof(out2) - 1), INT);
}

static void output_over_the_scan_cap_is_an_error(void **state)
{
    struct fx *f = *state;
    size_t len = DET_MAX_BYTES + 1;
    char *big = calloc(1, len);
    struct bh_err err = {0};
    assert_int_equal(pol_declassify(f->lab, &f->d, CONF, big, len, NULL, 0, &f->res, &err),
                     BH_ETOOBIG);
    assert_null(f->res.output);
    assert_non_null(strstr(err.msg, "scan cap"));
    free(big);
}

static void labeller_scan_gives_every_enabled_hit(void **state)
{
    struct fx *f = *state;
    static const char s[] = AWS_KEY " Q.Smith_99@Uni-Bonn.DE";
    struct det_hit *hits = NULL;
    size_t n = 0;
    assert_int_equal(pol_labeller_scan(f->lab, s, sizeof(s) - 1, &hits, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(hits[0].detector->id, "aws-access-key");
    assert_string_equal(hits[1].detector->id, "email");
    det_hits_free(hits);
    assert_int_equal(pol_labeller_scan(f->lab, "nothing", 7, &hits, &n), 0);
    assert_int_equal(n, 0);
    assert_null(hits);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(quote_rewrapped_and_respaced_is_caught),
        T(review_naming_identifiers_passes),
        T(quote_also_in_public_input_passes),
        T(public_input_excuses_only_what_it_holds),
        T(the_template_counts_as_bottom),
        T(seven_shared_tokens_pass_eight_fail),
        T(input_at_the_target_label_counts_as_below),
        T(repeated_shingles_are_found_and_excused),
        T(label_is_never_raised),
        T(redact_code_removes_blocks_and_the_quote_in_them),
        T(redact_code_keeps_list_continuations_and_lazy_lines),
        T(redact_paths_replaces_path_like_words),
        T(secret_is_redacted_even_when_a_guard_fails),
        T(secret_is_redacted_and_the_rest_declassified),
        T(allowed_value_is_neither_redacted_nor_a_hit),
        T(email_fails_the_detectors_guard),
        T(a_hit_at_or_below_the_target_passes_the_detectors_guard),
        T(max_chars_counts_bytes_after_redaction),
        T(first_failing_guard_wins),
        T(detail_never_holds_output_or_input_text),
        T(empty_output_passes),
        T(nuls_are_bytes_in_inputs_and_output),
        T(output_over_the_scan_cap_is_an_error),
        T(labeller_scan_gives_every_enabled_hit),
        T(normalisation_table),
        T(normalisation_keeps_nuls_and_honours_its_cap),
        T(rare_class_table),
        T(rare_token_in_prose_fails_in_every_spelling),
        T(realistic_review_text_is_declassified),
        T(rare_token_in_a_lower_input_is_excused),
        T(verbatim_compares_normalised_text),
        T(random_secrets_fail_in_every_spelling_and_reviews_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
