/* exchange_impl: what the exchange's kinds share inside dist (exchange.c
 * and exchange_exact.c); not part of the public interface. */
#ifndef MNIST_EXCHANGE_IMPL_H
#define MNIST_EXCHANGE_IMPL_H

#include "mnist/exchange.h"

/* The exact kind's workspace: one model per thread sharing the parameters,
 * one gradient buffer per local shard, and the fixed-point accumulator. */
typedef struct ExactWork {
    int threads;
    Model *ws;          /* threads workspaces reading the model's parameters */
    float *shard_grads; /* local shards x param_floats */
    int64_t *q;         /* param_floats + MODEL_CTRL_FLOATS fixed-point sums */
    double *loss;       /* per local shard */
    int64_t *correct;   /* per local shard */
    uint32_t *top;      /* per local shard and tensor: the largest |g| as float bits */
} ExactWork;

struct Exchange {
    ExchangeKind kind;
    const Comm *comm;
    Model *model;
    Optimizer *opt;
    int global_batch;
    ShardPlan plan;
    int *pred;          /* [plan.local_batch] argmax of each row */
    CommSegments seg;   /* sharded, shared: each rank's segment of the parameters */
    CommShared shared;  /* shared: the node's window */
    ExactWork exact;
};

/* The agreed STEP_* bits of this rank before combining. */
int exchange_flags_local(int stop_local, double loss);

/* The flags as control slots (summed or read with the gradients), and back. */
void exchange_flags_to_slots(float *ctrl, int flags);
int exchange_flags_from_slots(const float *ctrl);

/* The optimizer on [lo, lo + n) of the summed gradient: clipping by the
 * whole gradient's norm (segmented: the squares added over ranks), decay,
 * Adam; the model's bf16 copy of that segment too when it has one and
 * mirror is set. Returns the count of non-finite gradient elements. */
size_t exchange_update(Exchange *x, size_t lo, size_t n, int segmented, int mirror);

/* After an update that wrote the bf16 copy of every parameter this rank
 * reads: the copy holds unless max-norm rescales params afterwards. */
void exchange_mirror_made(Exchange *x);

/* The exact kind (exchange_exact.c). */
int exact_create(Exchange *x, int threads, Error *e);
int exact_step(Exchange *x, const StepIn *in, StepOut *out);
void exact_free(Exchange *x);

#endif
