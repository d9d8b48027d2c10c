// progress.h — a progress line with rate and ETA on stderr, shown only when stderr is a terminal,
// with a short status (loss, reward, tokens/s) and permanent note lines printed above it.
#ifndef DS_PROGRESS_H
#define DS_PROGRESS_H

#include <stddef.h>

typedef struct Progress {
    const char *label, *unit;
    double total;      // 0 when unknown: no ETA
    double from;       // units already done at the start (a resumed run): not counted in the rate
    double start, last_draw, done;
    char status[112];  // drawn after the rate
    int enabled;
} Progress;

void progress_start(Progress *p, const char *label, double total, const char *unit);
// The status text drawn from the next update on ("" clears it).
void progress_status(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_update(Progress *p, double done); // redraws at most ~10 times a second
// A line that stays (a step summary): printed above the progress line, which is redrawn under it.
void progress_note(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_end(Progress *p, double done);
// "1h02m03s", "4m05s" or "6.2s" into buf.
const char *progress_duration(double seconds, char *buf, size_t size);

#endif
