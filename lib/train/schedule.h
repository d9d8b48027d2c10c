// schedule.h — learning-rate and coefficient schedules of pretraining (DeepSeek-V3 §4.2 style).
#ifndef DS_SCHEDULE_H
#define DS_SCHEDULE_H

typedef enum { SCHED_COSINE, SCHED_WSD, SCHED_CONSTANT } SchedKind;

typedef struct Schedule {
    SchedKind kind;
    double lr, min_lr;    // peak and final learning rate
    long warmup, total;   // steps
    double decay_frac;    // WSD: fraction of total spent in the final (cosine) decay
} Schedule;

int schedule_parse(const char *name, SchedKind *k); // "cosine", "wsd", "constant"; DS_ERR if unknown
// Learning rate at step (0-based): linear warm-up to lr, then cosine to min_lr over the rest
// (cosine), or constant then cosine over the last decay_frac (warm-up-stable-decay).
double schedule_lr(const Schedule *s, long step);
// A value that switches from `before` to `after` once step >= frac * total (V3: the MTP weight λ
// 0.3 → 0.1, the bias update speed γ 0.001 → 0 near the end).
double schedule_switch(double before, double after, double frac, long step, long total);

#endif
