/* tests/bench/bench_check.c — how long loading and checking a large pipeline
 * takes: writes a 200-stage pipeline with one prompt file per stage into a
 * temporary folder, then loads it (pipe_load), verifies the endpoints and
 * builds and renders the flow graph (what `bulkhead check` does), N times.
 * Prints the mean time per run; asserts nothing (timings are not tests).
 *
 * usage: bench_check [RUNS]   (default 20) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "egress/egress.h"
#include "pipeline/pipeline.h"
#include "policy/graph.h"
#include "util/bh_err.h"
#include "util/bh_xmalloc.h"

enum { N_STAGES = 200 };

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "bench_check: cannot write '%s'\n", path);
        exit(1);
    }
}

/* Every fifth stage is cloud and reads only internal fields and the previous
 * cloud stage; the others are local and read the diff and two upstream outputs. */
static void write_prompt(const char *dir, int i)
{
    char path[512], text[512];
    int n = 0;
    if (i % 5 == 0) {
        n = snprintf(text, sizeof(text), "Plan PR {{pr.number}}: {{pr.title}}\n");
        if (i >= 5)
            snprintf(text + n, sizeof(text) - (size_t)n, "Earlier: {{s%03d.output}}\n", i - 5);
    } else {
        n = snprintf(text, sizeof(text),
                     "Review {{pr.title}}\n{{pr.diff}}\n"
                     "Notes: {{s%03d.output}}\n",
                     i - 1);
        if (i >= 2)
            snprintf(text + n, sizeof(text) - (size_t)n, "More: {{s%03d.output}}\n", i - 2);
    }
    snprintf(path, sizeof(path), "%s/p%03d.md", dir, i);
    write_file(path, text);
}

static void write_pipeline(const char *dir, char *path, size_t size)
{
    FILE *f = NULL;
    snprintf(path, size, "%s/big.json", dir);
    if (!(f = fopen(path, "w")))
        exit(1);
    fputs("{\n \"version\": 1, \"name\": \"bench-200\",\n \"endpoints\": {\n"
          "  \"gpu\": {\"provider\": \"ollama\", \"url\": \"http://127.0.0.1:11434\", "
          "\"locality\": \"local\"},\n"
          "  \"cloud\": {\"provider\": \"ollama\", \"url\": \"http://127.0.0.1:11435\", "
          "\"locality\": \"cloud\", \"clearance\": \"internal\"}\n },\n"
          " \"source\": {\"kind\": \"git\", \"label\": \"confidential\", \"fields\": "
          "{\"pr.number\": \"internal\", \"pr.title\": \"internal\"}},\n \"stages\": {\n",
          f);
    for (int i = 0; i < N_STAGES; i++) {
        fprintf(f,
                "  \"s%03d\": {\"endpoint\": \"%s\", \"model\": \"%s\", "
                "\"prompt\": \"p%03d.md\"",
                i, i % 5 ? "gpu" : "cloud", i % 5 ? "qwen2.5-coder:7b" : "gpt-oss:120b", i);
        if (i > 0)
            fprintf(f, ", \"after\": [\"s%03d\"]", i - 1);
        fprintf(f, "}%s\n", i + 1 < N_STAGES ? "," : "");
        write_prompt(dir, i);
    }
    fputs(" }\n}\n", f);
    fclose(f);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* One load + check; returns the number of refused stages, or -1. */
static int run_once(const char *path, FILE *sink)
{
    struct bh_err err = {0};
    struct pipeline *p = NULL;
    if (pipe_load(&p, path, NULL, &err)) {
        fprintf(stderr, "bench_check: %s\n", err.msg);
        return -1;
    }
    struct egr_endpoint *eps = bh_xcalloc(p->n_endpoints, sizeof(*eps));
    struct pol_endpoint_fact *facts = bh_xcalloc(p->n_endpoints, sizeof(*facts));
    for (size_t i = 0; i < p->n_endpoints; i++) {
        if (egr_endpoint_verify(p->endpoints[i].url, p->endpoints[i].declared_local, &eps[i], &err))
            return -1;
        facts[i] = (struct pol_endpoint_fact){.local = eps[i].local,
                                              .host = eps[i].host,
                                              .addr = eps[i].addr,
                                              .evidence = eps[i].reason};
    }
    struct pol_graph g;
    pol_graph_init(&g, p, facts);
    pol_graph_render(sink, &g, POL_FORMAT_TEXT);
    pol_graph_render(sink, &g, POL_FORMAT_JSON);
    int refused = (int)g.n_refused;
    pol_graph_release(&g);
    free(facts);
    free(eps);
    pipe_free(p);
    return refused;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 20;
    char dir[] = "/tmp/bh-bench-XXXXXX", path[600], cmd[700];
    if (runs < 1 || !mkdtemp(dir))
        return 2;
    write_pipeline(dir, path, sizeof(path));
    FILE *sink = fopen("/dev/null", "w");
    int refused = run_once(path, sink); /* warm the caches, and check it loads */
    double t0 = now_ms();
    for (int i = 0; i < runs && refused >= 0; i++)
        refused = run_once(path, sink);
    double per = (now_ms() - t0) / runs;
    fclose(sink);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_check: could not remove %s\n", dir);
    if (refused < 0)
        return 1;
    printf("load+check of %d stages: %.2f ms per run (%d runs, %d refused)\n", N_STAGES, per, runs,
           refused);
    return 0;
}
