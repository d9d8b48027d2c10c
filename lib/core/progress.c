// progress.c — progress line with rate and ETA on stderr when it is a terminal.
#include "core/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "core/common.h"

void progress_start(Progress *p, const char *label, double total, const char *unit) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start = p->last_draw = ds_now();
    p->enabled = isatty(2);
}

static void draw(Progress *p, double done, double now) {
    double el = now - p->start, rate = el > 0 ? done / el : 0;
    if (p->total > 0) {
        double eta = rate > 0 ? (p->total - done) / rate : 0;
        fprintf(stderr, "\r%s: %.0f/%.0f %s (%5.1f%%) %.1f %s/s ETA %dm%02ds  ", p->label, done,
                p->total, p->unit, 100.0 * done / p->total, rate, p->unit, (int)(eta / 60),
                (int)eta % 60);
    } else {
        fprintf(stderr, "\r%s: %.0f %s %.1f %s/s  ", p->label, done, p->unit, rate, p->unit);
    }
}

void progress_update(Progress *p, double done) {
    if (!p->enabled) return;
    double now = ds_now();
    if (now - p->last_draw < 0.1) return;
    p->last_draw = now;
    draw(p, done, now);
}

void progress_end(Progress *p, double done) {
    if (!p->enabled) return;
    draw(p, done, ds_now());
    fputc('\n', stderr);
}
