// progress.c — progress line with rate and ETA on stderr when it is a terminal.
#include "core/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "core/common.h"

void progress_start(Progress *p, const char *label, double total, const char *unit) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->from = p->done = 0;
    p->status[0] = 0;
    p->start = p->last_draw = ds_now();
    p->enabled = isatty(2);
}

const char *progress_duration(double s, char *buf, size_t size) {
    if (s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (s < 60) snprintf(buf, size, "%.1fs", s);
    else if (t < 3600) snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, size, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
    return buf;
}

// The rate counts only what this process did, so a resumed run's ETA is not flattered by the
// units done before it started.
static void draw(Progress *p, double now) {
    double el = now - p->start, rate = el > 0 ? (p->done - p->from) / el : 0;
    char a[32], b[32];
    fprintf(stderr, "\r\033[K%s: ", p->label);
    if (p->total > 0) {
        fprintf(stderr, "%.0f/%.0f %s (%.1f%%) ", p->done, p->total, p->unit, 100.0 * p->done / p->total);
        if (rate > 0) fprintf(stderr, "%.3g %s/s, %s, ETA %s", rate, p->unit, progress_duration(el, a, sizeof a),
                              progress_duration((p->total - p->done) / rate, b, sizeof b));
        else fprintf(stderr, "ETA --");
    } else {
        fprintf(stderr, "%.0f %s %.3g %s/s, %s", p->done, p->unit, rate, p->unit, progress_duration(el, a, sizeof a));
    }
    if (p->status[0]) fprintf(stderr, " | %s", p->status);
    fflush(stderr);
}

void progress_status(Progress *p, const char *fmt, ...) {
    if (!p->enabled) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->status, sizeof p->status, fmt, ap);
    va_end(ap);
}

void progress_update(Progress *p, double done) {
    if (!p->enabled) return;
    p->done = done;
    double now = ds_now();
    if (now - p->last_draw < 0.1) return;
    p->last_draw = now;
    draw(p, now);
}

void progress_note(Progress *p, const char *fmt, ...) {
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[K");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    draw(p, ds_now());
}

void progress_end(Progress *p, double done) {
    if (!p->enabled) return;
    p->done = done;
    draw(p, ds_now());
    fputc('\n', stderr);
}
