// schedule.c — learning-rate schedules.
#include "train/schedule.h"

#include <math.h>
#include <string.h>

#include "core/common.h"

int schedule_parse(const char *name, SchedKind *k) {
    if (!strcmp(name, "cosine")) *k = SCHED_COSINE;
    else if (!strcmp(name, "wsd")) *k = SCHED_WSD;
    else if (!strcmp(name, "constant")) *k = SCHED_CONSTANT;
    else return DS_ERR;
    return DS_OK;
}

static double cosine(double lr, double min_lr, double frac) {
    frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
    return min_lr + 0.5 * (lr - min_lr) * (1 + cos(M_PI * frac));
}

double schedule_lr(const Schedule *s, long step) {
    if (s->warmup > 0 && step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    switch (s->kind) {
    case SCHED_CONSTANT: return s->lr;
    case SCHED_COSINE: {
        long span = s->total - s->warmup;
        return span > 0 ? cosine(s->lr, s->min_lr, (double)(step - s->warmup) / span) : s->lr;
    }
    case SCHED_WSD: {
        long decay = (long)(s->decay_frac * s->total), start = s->total - decay;
        if (step < start || decay <= 0) return s->lr;
        return cosine(s->lr, s->min_lr, (double)(step - start) / decay);
    }
    }
    return s->lr;
}

double schedule_switch(double before, double after, double frac, long step, long total) {
    return (double)step >= frac * (double)total ? after : before;
}
