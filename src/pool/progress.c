/* progress.c - how far a call has got, and telling someone: the counters behind
 * mproc_async_progress / mproc_iter_progress, the user's progress callback (at most progress_hz
 * calls a second, and a last one at the end), and the progress bar on stderr.
 *
 * The bar is drawn only for calls that run past about a second, so short calls in a loop print
 * nothing. On a terminal it is one line redrawn in place (carriage return, erase to its end)
 * a few times a second; into a file (a Slurm output file, a pipe) it is a plain line every few
 * seconds, so the log stays readable. Everything here runs in the master, on whichever thread
 * settles the call's items, with the core lock held (dropped around the user's callback).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pool/pool.h"

#define DRAW_AFTER_S 1.0  /* calls shorter than this draw nothing */
#define REDRAW_S 0.2      /* terminal: the bar's redraw period */
#define LINE_EVERY_S 5.0  /* file: seconds between lines */
#define DEFAULT_HZ 10.0   /* callback calls a second when the caller did not say */
#define BAR_CELLS 28

enum { BAR_NONE = 0, BAR_TERMINAL = 1, BAR_LINES = 2 };

/* Whether a bar is wanted: the call's option, else MPROC_PROGRESS (0/1). */
static int bar_wanted(const mproc_call_opts *o, int *want, const char *fn) {
    *want = 0;
    if (o && o->progress_bar != 0) {
        if (o->progress_bar != 1 && o->progress_bar != -1)
            return mproc__error(MPROC_EINVAL, "%s: progress_bar is %d: want 1 (draw), 0 (as MPROC_PROGRESS says) or -1 (never)",
                                fn, o->progress_bar);
        *want = o->progress_bar == 1;
        return 0;
    }
    const char *e = mproc__env("MPROC_PROGRESS");
    if (!e || !*e || strcmp(e, "0") == 0) return 0;
    if (strcmp(e, "1") != 0)
        return mproc__error(MPROC_EINVAL, "%s: MPROC_PROGRESS='%.40s': want 0 (no bar) or 1 (a bar on stderr)", fn, e);
    *want = 1;
    return 0;
}

int mproc__progress_start(mproc__progress **gp, const mproc_call_opts *opts, size_t total, const char *what,
                          const char *fn) {
    *gp = NULL;
    static const mproc_call_opts none;
    if (!opts) opts = &none;
    if (!(opts->progress_hz >= 0)) /* negative or NaN */
        return mproc__error(MPROC_EINVAL, "%s: progress_hz is %g: want a rate >= 0 (0 = %g a second)", fn,
                            opts->progress_hz, DEFAULT_HZ);
    int want;
    int rc = bar_wanted(opts, &want, fn);
    if (rc < 0) return rc;
    mproc__progress *g = calloc(1, sizeof *g);
    mproc__progress_report *r = want || opts->progress ? calloc(1, sizeof *r) : NULL;
    if (!g || (!r && (want || opts->progress))) {
        free(g);
        free(r);
        return mproc__error(MPROC_ENOMEM, "no memory for the call's progress");
    }
    g->started = mproc__now();
    g->total = total;
    if (r) {
        r->period = opts->progress_hz > 0 ? 1.0 / opts->progress_hz : 1.0 / DEFAULT_HZ;
        r->cb = opts->progress;
        r->userdata = opts->userdata;
        r->what = what;
        if (want) r->bar = isatty(STDERR_FILENO) ? BAR_TERMINAL : BAR_LINES;
    }
    g->rep = r;
    *gp = g;
    return 0;
}

void mproc__progress_free(mproc__progress *g) {
    if (!g) return;
    free(g->rep);
    free(g);
}

void mproc__progress_mute(mproc__progress *g) {
    if (g && g->rep) g->rep->cb = NULL;
}

void mproc__progress_resumed(mproc__progress *g, size_t done, size_t failed) {
    if (!g) return;
    g->done += done;
    g->failed += failed;
    g->resumed += done;
}

void mproc__progress_get(const mproc__progress *g, mproc_progress *out) {
    double now = mproc__now();
    out->done = g->done;
    out->failed = g->failed;
    out->total = g->total;
    out->elapsed = now - g->started;
    /* Items taken from a journal took no time here: only those run now make the rate. */
    out->rate = out->elapsed > 0 ? (double)(g->done - g->resumed) / out->elapsed : 0;
    out->eta = g->total && out->rate > 0 ? (double)(g->total - (g->done < g->total ? g->done : g->total)) / out->rate : -1;
    out->finished = g->ended;
}

/* "1:02:03" or "2:03". */
static void hms(char *buf, size_t cap, double s) {
    if (s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

/* 12345678 -> "12.3M". */
static void human(char *buf, size_t cap, double v) {
    if (v >= 1e9) snprintf(buf, cap, "%.1fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, cap, "%.1fM", v / 1e6);
    else if (v >= 1e4) snprintf(buf, cap, "%.1fk", v / 1e3);
    else snprintf(buf, cap, "%.0f", v);
}

/* The text of one report (no carriage return, escape or newline), with a bar of `cells`. */
static int format(char *line, size_t cap, const mproc__progress *g, const mproc_progress *v, int cells, int last) {
    char rate[16], when[24], fails[40] = "";
    human(rate, sizeof rate, v->rate);
    hms(when, sizeof when, last || v->eta < 0 ? v->elapsed : v->eta);
    const char *when_is = last ? "took" : v->eta >= 0 ? "ETA" : "elapsed";
    if (v->failed) snprintf(fails, sizeof fails, "  %zu failed", v->failed);
    if (!g->total)
        return snprintf(line, cap, "%.24s %zu items  %s items/s  %s %s%s", g->rep->what, v->done, rate, when_is, when, fails);
    double frac = (double)(v->done < v->total ? v->done : v->total) / (double)v->total;
    char bar[BAR_CELLS + 1];
    int full = (int)(frac * cells);
    for (int i = 0; i < cells; i++) bar[i] = i < full ? '#' : '.';
    bar[cells] = '\0';
    return snprintf(line, cap, "%.24s [%s] %3d%% %zu/%zu  %s items/s  %s %s%s", g->rep->what, bar, (int)(frac * 100),
                    v->done, v->total, rate, when_is, when, fails);
}

/* Columns of the terminal on stderr (0: not known). */
static int columns(void) {
    struct winsize ws;
    return ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
}

static void draw(mproc__progress *g, double now, int last) {
    mproc__progress_report *rp = g->rep;
    mproc_progress v;
    mproc__progress_get(g, &v);
    char text[200], line[256];
    int cells = BAR_CELLS, n = format(text, sizeof text, g, &v, cells, last);
    if (rp->bar == BAR_TERMINAL) {
        /* On a terminal the line must fit its width, or each redraw wraps onto a new line: a
         * shorter bar first, then the text cut. */
        int cols = columns();
        if (cols > 0 && n >= cols && g->total) {
            cells = BAR_CELLS - (n - cols + 1);
            if (cells < 5) cells = 5;
            n = format(text, sizeof text, g, &v, cells, last);
        }
        if (cols > 1 && n >= cols) n = cols - 1;
    }
    if (n < 0) return;
    if ((size_t)n >= sizeof text) n = (int)sizeof text - 1;
    n = snprintf(line, sizeof line, "%s%.*s%s", rp->bar == BAR_TERMINAL ? "\r" : "mproc: ", n, text,
                 rp->bar == BAR_TERMINAL ? (last ? "\033[K\n" : "\033[K") : "\n");
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n); /* one write: lines from threads do not mix */
    (void)w;
    rp->last_draw = now;
}

static void maybe_draw(mproc__progress *g, double now) {
    mproc__progress_report *rp = g->rep;
    if (rp->bar == BAR_NONE || now - g->started < DRAW_AFTER_S) return;
    double every = rp->bar == BAR_TERMINAL ? REDRAW_S : LINE_EVERY_S;
    if (rp->last_draw == 0 || now - rp->last_draw >= every) draw(g, now, 0);
}

static void call_back(mproc__progress *g, double now) {
    mproc_progress v;
    g->rep->last_report = now;
    mproc__progress_get(g, &v);
    mproc_progress_cb cb = g->rep->cb;
    void *ud = g->rep->userdata;
    pthread_mutex_unlock(&mproc__core_lock);
    cb(ud, &v);
    pthread_mutex_lock(&mproc__core_lock);
}

void mproc__progress_freeze(mproc__progress *g) {
    if (g) g->frozen = 1;
}

void mproc__progress_note(mproc__progress *g, size_t done, size_t failed) {
    if (!g || g->ended || g->frozen) return;
    g->done += done;
    g->failed += failed;
    if (g->total && g->done >= g->total) {
        mproc__progress_end(g);
        return;
    }
    if (!g->rep) return; /* nobody to tell: no clock read */
    double now = mproc__now();
    maybe_draw(g, now);
    if (g->rep && g->rep->cb && now - g->rep->last_report >= g->rep->period) call_back(g, now);
}

void mproc__progress_end_stopped(mproc__progress *g) {
    if (!g || g->ended) return;
    if (g->total > g->done) { /* as a cancelled map counts them: finished, failed */
        g->failed += g->total - g->done;
        g->done = g->total;
    }
    mproc__progress_end(g);
}

void mproc__progress_end(mproc__progress *g) {
    if (!g || g->ended) return;
    g->ended = 1;
    mproc__progress_report *rp = g->rep;
    if (!rp) return;
    double now = mproc__now();
    if (rp->last_draw > 0) draw(g, now, 1); /* a call that drew something ends its bar */
    if (rp->cb) call_back(g, now);
    g->rep = NULL; /* nothing more is reported */
    free(rp);
}
