/* exchange: the data-parallel step behind one interface (see exchange.h):
 * the local gradient, then the kind's combination and update. The exact
 * kind lives in exchange_exact.c. The flags travel one way for every kind:
 * this rank's bits go in (flags_local), the OR over ranks comes out. */
#include "mnist/exchange.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exchange_impl.h"
#include "mnist/data.h"

ExchangeKind exchange_choose(int deterministic, int shard_optimizer, int nranks)
{
    if (deterministic)
        return EXCHANGE_EXACT;
    if (nranks == 1 || shard_optimizer == 0)
        return EXCHANGE_ALLREDUCE;
    return shard_optimizer == 2 ? EXCHANGE_SHARDED : EXCHANGE_SHARED;
}

const char *exchange_kind_name(ExchangeKind k)
{
    static const char *const names[] = {"allreduce", "sharded", "shared", "exact"};
    return names[k];
}

ExchangeKind exchange_kind(const Exchange *x) { return x->kind; }

int exchange_flags_local(int stop_local, double loss)
{
    return (stop_local ? STEP_STOP : 0) | (isfinite(loss) ? 0 : STEP_BAD_LOSS);
}

void exchange_flags_to_slots(float *ctrl, int flags)
{
    ctrl[0] = flags & STEP_STOP ? 1.0f : 0.0f;
    ctrl[1] = flags & STEP_BAD_LOSS ? 1.0f : 0.0f;
    ctrl[2] = flags & STEP_BAD_GRAD ? 1.0f : 0.0f;
}

int exchange_flags_from_slots(const float *ctrl)
{
    return (ctrl[0] > 0.0f ? STEP_STOP : 0) | (ctrl[1] > 0.0f ? STEP_BAD_LOSS : 0) |
           (ctrl[2] > 0.0f ? STEP_BAD_GRAD : 0);
}

/* One segment of the parameter vector per rank, each a multiple of 16
 * floats (64 bytes). */
static int segments_init(Exchange *x)
{
    const int P = x->comm->size;
    size_t *counts = malloc(sizeof(size_t) * (size_t)P);
    if (!counts)
        return -1;
    for (int r = 0; r < P; r++) {
        size_t first, blocks;
        data_shard_range(x->model->param_floats / 16, P, r, &first, &blocks);
        counts[r] = blocks * 16;
    }
    const int rc = comm_segments_init(x->comm, &x->seg, counts);
    free(counts);
    return rc;
}

/* The shared kind: gradients and parameters into the node's window. 1 when
 * the ranks span nodes (nothing allocated), -1 on failure. */
static int shared_enter(Exchange *x)
{
    Model *m = x->model;
    /* the parameters, then (bf16 models) their bf16 copy */
    const size_t mirror = model_bf16_floats(m);
    const int rc = comm_shared_init(x->comm, &x->shared, m->param_floats + MODEL_CTRL_FLOATS,
                                    m->param_floats + mirror);
    if (rc != 0)
        return rc;
    if (x->shared.local_rank == 0)
        memcpy(x->shared.params, m->params, sizeof(float) * m->param_floats);
    comm_shared_sync(&x->shared);
    model_use_buffers(m, x->shared.params, x->shared.grads[x->shared.local_rank]);
    if (mirror)
        model_use_bf16_mirror(m, (bf16 *)(x->shared.params + m->param_floats));
    return 0;
}

static void shared_leave(Exchange *x)
{
    Model *m = x->model;
    if (m->params == m->arena)
        return;
    memcpy(m->arena, m->params, sizeof(float) * m->param_floats);
    comm_shared_sync(&x->shared); /* nobody frees the window while another rank copies */
    model_use_buffers(m, NULL, NULL);
    model_use_bf16_mirror(m, NULL);
}

Exchange *exchange_create(const ExchangeConfig *c, Model *m, Optimizer *opt, const Comm *comm,
                          Error *e)
{
    Exchange *x = calloc(1, sizeof *x);
    int rc = x ? 0 : -1;
    if (x) {
        *x = (Exchange){.kind = c->kind, .comm = comm, .model = m, .opt = opt,
                        .global_batch = c->global_batch, .plan = *c->plan};
        x->pred = malloc(sizeof(int) * (size_t)(c->plan->local_batch + 1));
        rc = x->pred ? 0 : -1;
    }
    if (rc == 0 && x->kind == EXCHANGE_EXACT)
        rc = exact_create(x, c->threads, e);
    else if (rc == 0 && (x->kind == EXCHANGE_SHARDED || x->kind == EXCHANGE_SHARED))
        rc = segments_init(x) ? err_set(e, "cannot set up the optimizer segments") : 0;
    if (comm_agree(comm, rc ? 1 : 0)) {
        exchange_free(x);
        return x && rc == 0 ? (err_set(e, "another rank could not set up the exchange"), NULL)
                            : (rc ? err_set(e, "out of memory for the exchange") : 0, NULL);
    }
    if (x->kind == EXCHANGE_SHARED) {
        const int shared = shared_enter(x);
        if (comm_agree(comm, shared < 0)) {
            exchange_free(x);
            err_set(e, "cannot allocate node-shared memory");
            return NULL;
        }
        if (shared == 1) /* several nodes: reduce-scatter + allgather */
            x->kind = EXCHANGE_SHARDED;
    }
    return x;
}

/* forward and backward of this rank's rows into the model's gradients */
static double local_gradient(Exchange *x, const StepIn *in, StepOut *out, double *t)
{
    Model *m = x->model;
    t[0] = time_now_s();
    memset(m->grads, 0, sizeof(float) * m->param_floats);
    model_forward(m, in->x, in->rows, 1, in->dropout_key, in->ids);
    t[1] = time_now_s();
    const double loss =
        model_backward(m, in->x, in->y, in->rows, 1.0f / (float)x->global_batch, x->pred);
    t[2] = time_now_s();
    out->loss_sum = loss;
    out->correct = 0;
    for (int i = 0; i < in->rows; i++)
        out->correct += x->pred[i] == in->y[i];
    out->times.forward = t[1] - t[0];
    out->times.backward = t[2] - t[1];
    return loss;
}

/* allreduce: the flags ride in the control slots behind the gradients, so
 * one message carries both; every rank then updates everything. */
static int allreduce_combine(Exchange *x, int flags, StepOut *out, const double *t)
{
    Model *m = x->model;
    memset(m->ctrl, 0, sizeof(float) * MODEL_CTRL_FLOATS);
    exchange_flags_to_slots(m->ctrl, flags);
    /* scaled by the global batch, so the sum over ranks is the true mean */
    comm_allreduce_sum_f32(x->comm, m->grads, m->param_floats + MODEL_CTRL_FLOATS);
    const double t3 = time_now_s();
    flags = exchange_flags_from_slots(m->ctrl);
    if (exchange_update(x, 0, m->param_floats, 0, 1))
        flags |= STEP_BAD_GRAD;
    optim_apply_max_norm(x->opt, m->params);
    exchange_mirror_made(x);
    out->times.allreduce = t3 - t[2];
    out->times.update = time_now_s() - t3;
    return flags;
}

/* sharded: reduce-scatter, the update on this rank's segment, the flags by
 * a small allreduce, allgather. */
static int sharded_combine(Exchange *x, int flags, StepOut *out, const double *t)
{
    Model *m = x->model;
    const int r = x->comm->rank;
    const size_t lo = (size_t)x->seg.displs[r], n = (size_t)x->seg.counts[r];
    comm_reduce_scatter_f32(x->comm, m->grads, &x->seg);
    const double t3 = time_now_s();
    /* the other segments arrive in fp32: the next pass converts its own W */
    if (exchange_update(x, lo, n, 1, 0))
        flags |= STEP_BAD_GRAD;
    model_params_changed(m);
    int any[3] = {flags & STEP_STOP, flags & STEP_BAD_LOSS, flags & STEP_BAD_GRAD};
    comm_allreduce_max_int(x->comm, any, 3); /* per flag: the OR over ranks */
    flags = any[0] | any[1] | any[2];
    const double t4 = time_now_s();
    comm_allgather_f32(x->comm, m->params, &x->seg);
    optim_apply_max_norm(x->opt, m->params);
    out->times.allreduce = (t3 - t[2]) + (time_now_s() - t4);
    out->times.update = t4 - t3;
    return flags;
}

/* shared: every rank's gradient sits in the node's window; this rank sums
 * its segment straight out of all of them and updates that segment of the
 * one shared parameter copy; the flags go through each rank's control
 * slots. Two barriers a step (three with max-norm). */
static int shared_combine(Exchange *x, int flags, StepOut *out, const double *t)
{
    Model *m = x->model;
    const CommShared *sh = &x->shared;
    const int me = sh->local_rank, P = sh->local_size;
    const size_t lo = (size_t)x->seg.displs[me], n = (size_t)x->seg.counts[me];
    exchange_flags_to_slots(m->ctrl, flags);
    comm_shared_sync(sh); /* every rank's gradient is written */
    float *own = sh->grads[me];
    /* ranks 0..P-1 in that order: the same sum whichever rank computes it;
     * in blocks, so each rank's contribution is one vectorised sweep */
    enum { BLOCK = 2048 };
    for (size_t b0 = lo; b0 < lo + n; b0 += BLOCK) {
        const size_t len = lo + n - b0 < BLOCK ? lo + n - b0 : BLOCK;
        float acc[BLOCK];
        memcpy(acc, sh->grads[0] + b0, sizeof(float) * len);
        for (int k = 1; k < P; k++) {
            const float *g = sh->grads[k] + b0;
            for (size_t j = 0; j < len; j++)
                acc[j] += g[j];
        }
        memcpy(own + b0, acc, sizeof(float) * len);
    }
    for (int k = 0; k < P; k++)
        flags |= exchange_flags_from_slots(sh->grads[k] + m->param_floats) & ~STEP_BAD_GRAD;
    const double t3 = time_now_s();
    /* the bf16 copy of the parameters is in the window too */
    const int bad = exchange_update(x, lo, n, 1, 1) != 0; /* m->grads is own */
    m->ctrl[2] = bad ? 1.0f : 0.0f;
    const double t4 = time_now_s();
    comm_shared_sync(sh); /* every segment of the parameters is updated */
    for (int k = 0; k < P; k++)
        flags |= exchange_flags_from_slots(sh->grads[k] + m->param_floats) & STEP_BAD_GRAD;
    if (x->opt->max_norm > 0.0f) {
        /* one writer for the shared copy, then everyone reads it */
        if (me == 0)
            optim_apply_max_norm(x->opt, m->params);
        comm_shared_sync(sh);
    }
    exchange_mirror_made(x);
    out->times.allreduce = (t3 - t[2]) + (time_now_s() - t4);
    out->times.update = t4 - t3;
    return flags;
}

void exchange_mirror_made(Exchange *x)
{
    Model *m = x->model;
    m->bf16_fresh = m->params_bf16 && x->opt->max_norm <= 0.0f;
}

size_t exchange_update(Exchange *x, size_t lo, size_t n, int segmented, int mirror)
{
    Model *m = x->model;
    double sq = 0;
    if (x->opt->clip_norm > 0.0f) {
        /* the norm of the whole summed gradient: this segment's squares,
         * added over ranks when each holds only its own */
        sq = optim_sq_sum(m->grads, lo, n);
        if (segmented)
            comm_allreduce_sum_f64(x->comm, &sq, 1);
    }
    return optim_step(x->opt, m->params, m->grads, lo, n, sq, mirror ? m->params_bf16 : NULL);
}

void exchange_step(Exchange *x, const StepIn *in, StepOut *out)
{
    memset(out, 0, sizeof *out);
    if (x->kind == EXCHANGE_EXACT) {
        out->flags = exact_step(x, in, out);
        return;
    }
    double t[3];
    const double loss = local_gradient(x, in, out, t);
    const int flags = exchange_flags_local(in->stop_local, loss);
    if (x->kind == EXCHANGE_SHARED && x->comm->size > 1)
        out->flags = shared_combine(x, flags, out, t);
    else if (x->kind == EXCHANGE_SHARDED && x->comm->size > 1)
        out->flags = sharded_combine(x, flags, out, t);
    else
        out->flags = allreduce_combine(x, flags, out, t);
}

void exchange_gather_state(Exchange *x)
{
    if ((x->kind != EXCHANGE_SHARDED && x->kind != EXCHANGE_SHARED) || x->comm->size == 1)
        return;
    comm_allgather_f32(x->comm, x->opt->m, &x->seg);
    comm_allgather_f32(x->comm, x->opt->v, &x->seg);
}

void exchange_free(Exchange *x)
{
    if (!x)
        return;
    if (x->shared.win)
        shared_leave(x);
    comm_shared_free(&x->shared);
    comm_segments_free(&x->seg);
    exact_free(x);
    free(x->pred);
    free(x);
}
