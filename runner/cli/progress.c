/* cli/progress.c — the progress display of `bulkhead run`, and the row
 * format `bulkhead status` shares with it.
 *
 * On a terminal the display is a block of lines at the bottom: a header and a
 * line per stage, redrawn in place (cursor up, clear to the end of the
 * screen, draw again). Anything else the run prints goes through
 * cli_progress_say, which clears the block, prints the line and draws the
 * block below it again, so a failure message is never overwritten. Lines are
 * cut to the terminal's width: a line that wrapped would make the cursor
 * arithmetic wrong. In a log (stderr not a terminal) there are no escape
 * sequences at all: a line every CLI_PROGRESS_PLAIN_MS and one per stage as
 * it ends, which is what a CI log can show. */
#include "cli/progress.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "engine/engine.h"
#include "util/bh_utf8.h"
#include "util/bh_xmalloc.h"

#define MAX_LINE 512

struct cli_progress {
    FILE *f;
    int mode;
    char **lines; /* the block as drawn last (live) */
    size_t n_lines, cap_lines;
    size_t drawn; /* lines of the block on the screen now */
    int64_t last_plain_ms;
};

/* "0.4s", "12s", "3m04s", "1h02m". */
static const char *duration(int64_t ms, char *buf, size_t size)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 10000)
        snprintf(buf, size, "%.1fs", (double)ms / 1000);
    else if (s < 60)
        snprintf(buf, size, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(buf, size, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, size, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
    return buf;
}

/* "ended in 3.2s", "in flight 2, ETA 40s", "waiting". */
static void row_state(const struct cli_stage_row *r, char *buf, size_t size)
{
    char d[32];
    size_t ended = r->done + r->failed + r->withheld + r->skipped;
    size_t now = ended > r->reused ? ended - r->reused : 0; /* ended in this attempt */
    if (r->ended) {
        snprintf(buf, size, "ended in %s", duration(r->active_ms, d, sizeof(d)));
        return;
    }
    if (now == 0 || r->active_ms <= 0 || r->total <= ended) {
        if (r->in_flight)
            snprintf(buf, size, "in flight %zu", r->in_flight);
        else
            snprintf(buf, size, "waiting");
        return;
    }
    /* The rate of the tasks ended so far in this attempt, over the tasks left. */
    int64_t eta = (int64_t)((double)r->active_ms * (double)(r->total - ended) / (double)now);
    snprintf(buf, size, "in flight %zu, ETA %s", r->in_flight, duration(eta, d, sizeof(d)));
}

const char *cli_progress_row(const struct cli_stage_row *r, int name_width, char *buf, size_t size)
{
    char state[64], rate[32], where[200] = "", skipped[40] = "";
    row_state(r, state, sizeof(state));
    if (r->skipped)
        snprintf(skipped, sizeof(skipped), "  skipped %zu", r->skipped);
    if (r->output_tokens > 0 && r->active_ms > 0)
        snprintf(rate, sizeof(rate), "%.0f tok/s",
                 (double)r->output_tokens * 1000 / (double)r->active_ms);
    else
        snprintf(rate, sizeof(rate), "- tok/s");
    if (r->endpoint)
        snprintf(where, sizeof(where), "%s%s%s", r->endpoint, r->model ? ": " : "",
                 r->model ? r->model : "");
    snprintf(buf, size, "%-*s %5zu/%-5zu %-24s failed %zu  withheld %zu%s  cached %zu  %9s  %s",
             name_width, r->name, r->done, r->total, state, r->failed, r->withheld, skipped,
             r->cached, rate, where);
    size_t n = strlen(buf); /* no trailing blanks when there is no endpoint */
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
    return buf;
}

int cli_progress_mode(FILE *f, int quiet)
{
    const char *term = getenv("TERM");
    if (quiet)
        return CLI_PROGRESS_OFF;
    if (!isatty(fileno(f)) || !term || strcmp(term, "dumb") == 0)
        return CLI_PROGRESS_PLAIN;
    return CLI_PROGRESS_LIVE;
}

struct cli_progress *cli_progress_new(FILE *f, int mode)
{
    if (mode == CLI_PROGRESS_OFF)
        return NULL;
    struct cli_progress *pr = bh_xcalloc(1, sizeof(*pr));
    pr->f = f;
    pr->mode = mode;
    return pr;
}

static void lines_clear(struct cli_progress *pr)
{
    for (size_t i = 0; i < pr->n_lines; i++)
        free(pr->lines[i]);
    pr->n_lines = 0;
}

void cli_progress_free(struct cli_progress *pr)
{
    if (!pr)
        return;
    lines_clear(pr);
    free(pr->lines);
    free(pr);
}

/* ---- live: a block redrawn in place ---------------------------------- */

static size_t screen_width(FILE *f)
{
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
        return ws.ws_col;
    return 80;
}

static void erase(struct cli_progress *pr)
{
    if (pr->drawn)
        fprintf(pr->f, "\033[%zuA\r\033[J", pr->drawn);
    pr->drawn = 0;
}

/* Each line cut short of the width, never inside a UTF-8 sequence. */
static void draw(struct cli_progress *pr)
{
    size_t width = screen_width(pr->f) - 1;
    for (size_t i = 0; i < pr->n_lines; i++) {
        size_t n = strlen(pr->lines[i]);
        if (n > width) {
            n = width;
            while (n > 0 && bh_utf8_cont((unsigned char)pr->lines[i][n]))
                n--;
        }
        fprintf(pr->f, "\033[2K%.*s\n", (int)n, pr->lines[i]);
    }
    pr->drawn = pr->n_lines;
    fflush(pr->f);
}

static void line_add(struct cli_progress *pr, const char *text)
{
    if (pr->n_lines == pr->cap_lines)
        pr->lines = bh_xgrow(pr->lines, &pr->cap_lines, pr->n_lines + 1, sizeof(*pr->lines));
    pr->lines[pr->n_lines++] = bh_xstrdup(text);
}

static int name_width(const struct eng_progress *p)
{
    size_t w = 8;
    for (size_t i = 0; i < p->n_stages; i++)
        if (!p->stages[i].standby && strlen(p->stages[i].name) > w)
            w = strlen(p->stages[i].name);
    return (int)(w < 40 ? w : 40);
}

static void row_of(const struct eng_progress *p, const struct eng_stage_progress *s,
                   struct cli_stage_row *r)
{
    const struct eng_endpoint_progress *ep =
        s->endpoint < p->n_endpoints ? &p->endpoints[s->endpoint] : NULL;
    *r = (struct cli_stage_row){.name = s->name,
                                .total = s->total,
                                .done = s->done,
                                .failed = s->failed,
                                .withheld = s->withheld,
                                .skipped = s->skipped,
                                .in_flight = s->in_flight,
                                .cached = s->cached,
                                .output_tokens = s->output_tokens,
                                .active_ms = s->active_ms,
                                .reused = s->reused,
                                .ended = s->ended,
                                .endpoint = ep ? ep->name : NULL,
                                .model = ep ? ep->last_model : NULL};
}

static void live_update(struct cli_progress *pr, const struct eng_progress *p)
{
    char line[MAX_LINE], d[32];
    size_t total = 0, ended = 0, flight = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        total += p->stages[i].total;
        ended +=
            p->stages[i].done + p->stages[i].failed + p->stages[i].withheld + p->stages[i].skipped;
        flight += p->stages[i].in_flight;
    }
    lines_clear(pr);
    snprintf(line, sizeof(line), "bulkhead: %s%s: %zu/%zu tasks ended, %zu in flight",
             p->final ? "finished after " : "", duration(p->elapsed_ms, d, sizeof(d)), ended, total,
             flight);
    line_add(pr, line);
    for (size_t i = 0; i < p->n_stages; i++) {
        struct cli_stage_row r;
        if (p->stages[i].standby)
            continue;
        row_of(p, &p->stages[i], &r);
        char row[MAX_LINE - 2];
        snprintf(line, sizeof(line), "  %s", cli_progress_row(&r, name_width(p), row, sizeof(row)));
        line_add(pr, line);
    }
    erase(pr);
    draw(pr);
    if (p->final)
        pr->drawn = 0; /* the last state stays on the screen */
}

/* ---- plain: lines for a log ------------------------------------------ */

static void plain_stage_end(struct cli_progress *pr, const struct eng_progress *p,
                            const struct eng_stage_progress *s)
{
    struct cli_stage_row r;
    char d[32], rate[32] = "";
    row_of(p, s, &r);
    if (r.output_tokens > 0 && r.active_ms > 0)
        snprintf(rate, sizeof(rate), ", %.0f tokens/s",
                 (double)r.output_tokens * 1000 / (double)r.active_ms);
    char skipped[40] = "";
    if (s->skipped)
        snprintf(skipped, sizeof(skipped), ", %zu skipped", s->skipped);
    fprintf(pr->f,
            "bulkhead: stage '%s' ended after %s: %zu/%zu done, %zu failed, %zu withheld%s, "
            "%zu cached%s\n",
            s->name, duration(s->active_ms, d, sizeof(d)), s->done, s->total, s->failed,
            s->withheld, skipped, s->cached, rate);
}

static void plain_tick(struct cli_progress *pr, const struct eng_progress *p)
{
    char line[MAX_LINE], d[32];
    size_t used = (size_t)snprintf(
        line, sizeof(line), "bulkhead: progress after %s:", duration(p->elapsed_ms, d, sizeof(d)));
    int first = 1;
    for (size_t i = 0; i < p->n_stages && used < sizeof(line); i++) {
        const struct eng_stage_progress *s = &p->stages[i];
        if (s->standby)
            continue;
        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s %s %zu/%zu",
                                 first ? "" : ",", s->name, s->done, s->total);
        first = 0;
        if (s->in_flight && used < sizeof(line))
            used += (size_t)snprintf(line + used, sizeof(line) - used, " (%zu in flight)",
                                     s->in_flight);
    }
    fprintf(pr->f, "%s\n", line);
}

static void plain_update(struct cli_progress *pr, const struct eng_progress *p)
{
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].ended_now && !p->stages[i].standby)
            plain_stage_end(pr, p, &p->stages[i]);
    if (!p->final && p->elapsed_ms - pr->last_plain_ms >= CLI_PROGRESS_PLAIN_MS) {
        plain_tick(pr, p);
        pr->last_plain_ms = p->elapsed_ms;
    }
    fflush(pr->f);
}

void cli_progress_update(void *ud, const struct eng_progress *p)
{
    struct cli_progress *pr = ud;
    if (pr->mode == CLI_PROGRESS_LIVE)
        live_update(pr, p);
    else
        plain_update(pr, p);
}

void cli_progress_say(void *ud, const char *line)
{
    struct cli_progress *pr = ud;
    if (pr->mode != CLI_PROGRESS_LIVE) {
        fprintf(pr->f, "%s\n", line);
        return;
    }
    erase(pr);
    fprintf(pr->f, "%s\n", line);
    draw(pr);
}
