// progress.h — a progress line with rate and ETA on stderr, shown only when stderr is a terminal.
#ifndef DS_PROGRESS_H
#define DS_PROGRESS_H

#include <stdint.h>

typedef struct Progress {
    const char *label, *unit;
    double total; // 0 when unknown: no ETA
    double start, last_draw;
    int enabled;
} Progress;

void progress_start(Progress *p, const char *label, double total, const char *unit);
void progress_update(Progress *p, double done); // redraws at most ~10 times a second
void progress_end(Progress *p, double done);

#endif
