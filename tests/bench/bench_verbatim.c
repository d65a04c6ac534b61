/* tests/bench/bench_verbatim.c — how pol_declassify scales: a 64 KB output
 * against 1, 2 and 4 MB of confidential input, then the reverse (a 64 KB
 * input against 1, 2 and 4 MB of output), with every guard and redaction on
 * (no_verbatim 8, no_rare_tokens, detectors, code and paths), then with
 * no_verbatim off so that no_rare_tokens (and the normalisation) sees the
 * whole texts. The text is random words from a fixed vocabulary with one
 * 20-token quote of the input in the output, so no_verbatim does all its
 * work and fails. Prints the best time of RUNS runs
 * per size and the ratio per doubling (linear: about 2.0). Asserts nothing:
 * timings are not tests.
 *
 * usage: bench_verbatim [RUNS]   (default 3) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/pipeline.h"
#include "policy/declassify.h"
#include "policy/label.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

enum { PUB, INT, CONF, RESTR, N_WORDS = 5000 };

static char *labels[] = {"public", "internal", "confidential", "restricted"};
static char words[N_WORDS][12];
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void vocabulary(void)
{
    for (size_t i = 0; i < N_WORDS; i++) {
        size_t n = 2 + next() % 9;
        for (size_t k = 0; k < n; k++)
            words[i][k] = (char)('a' + next() % 26);
        words[i][n] = '\0';
    }
}

/* size bytes of words, a line break now and then, NUL-terminated. */
static char *text_make(size_t size)
{
    char *t = bh_xmalloc(size + 1);
    size_t len = 0;
    while (len < size) {
        const char *w = words[next() % N_WORDS];
        size_t n = strlen(w);
        if (len + n + 1 > size)
            break;
        memcpy(t + len, w, n);
        len += n;
        t[len++] = next() % 12 == 0 ? '\n' : ' ';
    }
    memset(t + len, ' ', size - len);
    t[size] = '\0';
    return t;
}

/* Copies a 20-word run from the middle of src into the middle of dst. */
static void quote_plant(char *dst, size_t dst_len, const char *src, size_t src_len)
{
    const char *from = strchr(src + src_len / 2, ' ');
    size_t n = 0, spaces = 0;
    while (from && from[1 + n] && spaces < 20)
        spaces += from[1 + n++] == ' ';
    if (from && n < dst_len / 4)
        memcpy(dst + dst_len / 2, from, n + 1); /* space first, space last */
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The best of runs: seconds for one pol_declassify of out against in. */
static double time_one(const struct pol_labeller *l, const struct pipe_declassify *d,
                       size_t in_size, size_t out_size, int runs)
{
    char *in = text_make(in_size), *out = text_make(out_size);
    quote_plant(out, out_size, in, in_size);
    struct pol_decl_input inputs[2] = {{"pr.title", "Fix the widget count", 20, PUB},
                                       {"pr.diff", in, in_size, CONF}};
    double best = 1e9;
    for (int r = 0; r < runs; r++) {
        struct pol_decl_result res;
        struct bh_err err = {0};
        double t0 = now();
        if (pol_declassify(l, d, CONF, out, out_size, inputs, 2, &res, &err) != 0) {
            fprintf(stderr, "bench_verbatim: %s\n", err.msg);
            exit(1);
        }
        double t = now() - t0;
        best = t < best ? t : best;
        if (r == 0 && d->no_verbatim_tokens > 0 &&
            (!res.failed || strcmp(res.failed, "no_verbatim") != 0))
            fprintf(stderr, "bench_verbatim: note: the planted quote was not caught (%s)\n",
                    res.failed ? res.failed : "passed");
        pol_decl_result_release(&res);
    }
    free(in);
    free(out);
    return best;
}

static void series(const struct pol_labeller *l, const struct pipe_declassify *d, int reverse,
                   int runs)
{
    const size_t small = 64 << 10;
    double prev = 0;
    printf("%s\n", reverse ? "input 64 KB, output growing:" : "output 64 KB, input growing:");
    for (size_t mb = 1; mb <= 4; mb *= 2) {
        size_t big = mb << 20;
        double t = reverse ? time_one(l, d, small, big, runs) : time_one(l, d, big, small, runs);
        printf("  %zu MB: %8.2f ms", mb, t * 1e3);
        if (prev > 0)
            printf("   ratio to the half size: %.2f", t / prev);
        printf("\n");
        prev = t;
    }
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    struct pipeline p;
    struct pol_labeller *l = NULL;
    struct bh_err err = {0};
    memset(&p, 0, sizeof(p));
    p.labels = labels;
    p.n_labels = 4;
    p.name = "bench";
    p.source.kind = "git";
    p.source.label = CONF;
    if (runs < 1 || pol_labeller_new(&l, &p, &err) != 0) {
        fprintf(stderr, "usage: bench_verbatim [RUNS]   (RUNS >= 1)\n");
        return 2;
    }
    struct pipe_declassify d = {.enabled = 1,
                                .to = INT,
                                .no_verbatim_tokens = 8,
                                .no_rare_tokens = 1,
                                .detectors = 1,
                                .redact_code = 1,
                                .redact_paths = 1};
    vocabulary();
    printf("pol_declassify, best of %d runs (linear: ratio about 2.0)\n", runs);
    series(l, &d, 0, runs);
    series(l, &d, 1, runs);
    /* no_verbatim off: every run reaches no_rare_tokens over the whole texts */
    d.no_verbatim_tokens = 0;
    printf("no_rare_tokens alone (normalisation and the rare-token table):\n");
    series(l, &d, 0, runs);
    series(l, &d, 1, runs);
    pol_labeller_free(l);
    return 0;
}
