/* exchange_exact: the exchange's exact kind (--deterministic). Logical
 * shards fix which rows are summed together; one thread computes a shard
 * with single-threaded BLAS (OpenBLAS's OpenMP build runs inside a parallel
 * region on the calling thread); shard gradients meet only as 64-bit
 * integers, whose sum does not depend on order, thread or rank count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "exchange_impl.h"
#include "mnist/fixed.h"

int exact_create(Exchange *x, int threads, Error *e)
{
    ExactWork *w = &x->exact;
    const ShardPlan *p = &x->plan;
    const Model *model = x->model;
    const size_t nf = model->param_floats;
    w->threads = threads < 1 ? 1 : threads > p->count ? p->count : threads;
    int max_rows = 1;
    for (int k = 0; k < p->count; k++)
        if (p->batch[p->first + k] > max_rows)
            max_rows = p->batch[p->first + k];
    w->ws = calloc((size_t)w->threads, sizeof *w->ws);
    w->shard_grads = alloc_aligned(sizeof(float) * nf * (size_t)p->count);
    w->q = alloc_aligned(sizeof(int64_t) * (nf + MODEL_CTRL_FLOATS));
    w->loss = calloc((size_t)p->count, sizeof *w->loss);
    w->correct = calloc((size_t)p->count, sizeof *w->correct);
    w->top = calloc((size_t)p->count * MODEL_MAX_TENSORS, sizeof *w->top);
    if (!w->ws || !w->shard_grads || !w->q || !w->loss || !w->correct || !w->top)
        return err_set(e, "out of memory for the deterministic workspace");
    for (int t = 0; t < w->threads; t++)
        if (model_create(&w->ws[t], &model->spec, model->input, model->classes, max_rows, e))
            return -1;
    return 0;
}

void exact_free(Exchange *x)
{
    ExactWork *w = &x->exact;
    if (w->ws)
        for (int t = 0; t < w->threads; t++)
            model_free(&w->ws[t]);
    free(w->ws);
    free(w->shard_grads);
    free(w->q);
    free(w->loss);
    free(w->correct);
    free(w->top);
    memset(w, 0, sizeof *w);
}

/* Each local shard on one thread: its own activations and gradient buffer;
 * nested OpenMP loops and BLAS run single-threaded. Records each shard's
 * loss, correct count and per-tensor largest |g|. */
static void shard_gradients(Exchange *x, const StepIn *in)
{
    ExactWork *w = &x->exact;
    const ShardPlan *p = &x->plan;
    Model *model = x->model;
    const size_t nf = model->param_floats, pixels = shape_size(model->input);
    int offset[SHARD_MAX];
    for (int k = 0, off = 0; k < p->count; k++) {
        offset[k] = off;
        off += p->batch[p->first + k];
    }
    for (int t = 0; t < w->threads; t++)
        w->ws[t].label_smoothing = model->label_smoothing;
#pragma omp parallel for schedule(static) num_threads(w->threads)
    for (int k = 0; k < p->count; k++) {
#ifdef _OPENMP
        Model *ws = &w->ws[omp_get_thread_num()];
#else
        Model *ws = &w->ws[0];
#endif
        float *g = w->shard_grads + (size_t)k * nf;
        memset(g, 0, sizeof(float) * nf);
        model_use_buffers(ws, model->params, g);
        /* the optimizer's bf16 copy of the weights, when the last update made
         * one (else ws converts into its own) */
        ws->params_bf16 = model->params_bf16;
        ws->bf16_fresh = model->bf16_fresh;
        const int b = p->batch[p->first + k], off = offset[k];
        const float *xs = in->x + (size_t)off * pixels;
        model_forward(ws, xs, b, 1, in->dropout_key, in->ids + off);
        w->loss[k] = model_backward(ws, xs, in->y + off, b, 1.0f / (float)x->global_batch,
                                    x->pred + off);
        int64_t c = 0;
        for (int i = 0; i < b; i++)
            c += x->pred[off + i] == in->y[off + i];
        w->correct[k] = c;
        /* while the gradient is still in cache */
        for (int t = 0; t < model->num_tensors; t++)
            w->top[(size_t)k * MODEL_MAX_TENSORS + (size_t)t] =
                fixed_max_bits(g + model->tensors[t].offset, model->tensors[t].count);
    }
}

int exact_step(Exchange *x, const StepIn *in, StepOut *out)
{
    ExactWork *w = &x->exact;
    const ShardPlan *p = &x->plan;
    Model *model = x->model;
    const size_t nf = model->param_floats;
    const int T = model->num_tensors;
    const double t0 = time_now_s();
    shard_gradients(x, in);
    const double t1 = time_now_s();

    /* Agree on each tensor's exponent bound (and on non-finite values). */
    int exps[MODEL_MAX_TENSORS + 1];
    int bad_local = 0;
    for (int t = 0; t < T; t++) {
        uint32_t top = 0;
        for (int k = 0; k < p->count; k++) {
            const uint32_t v = w->top[(size_t)k * MODEL_MAX_TENSORS + (size_t)t];
            top = v > top ? v : top;
        }
        bad_local |= top >= 0x7f800000u; /* NaN or Inf */
        exps[t] = bad_local ? 0 : fixed_exponent(top);
    }
    exps[T] = bad_local;
    comm_allreduce_max_int(x->comm, exps, (size_t)T + 1);

    int flags = 0;
    if (exps[T]) {
        flags |= STEP_BAD_GRAD;
    } else {
        int scale_exp[MODEL_MAX_TENSORS];
        memset(w->q, 0, sizeof(int64_t) * nf);
        for (int t = 0; t < T; t++) {
            const size_t off = model->tensors[t].offset;
            scale_exp[t] = fixed_from_floats(w->q + off, w->shard_grads + off, nf, p->count,
                                             model->tensors[t].count, exps[t], p->shards);
        }
        int64_t *ctrl = w->q + nf;
        memset(ctrl, 0, sizeof(int64_t) * MODEL_CTRL_FLOATS);
        double local_loss = 0;
        for (int k = 0; k < p->count; k++)
            local_loss += w->loss[k];
        const int mine = exchange_flags_local(in->stop_local, local_loss);
        ctrl[0] = (mine & STEP_STOP) != 0;
        ctrl[1] = (mine & STEP_BAD_LOSS) != 0;
        comm_allreduce_sum_i64(x->comm, w->q, nf + MODEL_CTRL_FLOATS);
        for (int t = 0; t < T; t++) {
            const size_t off = model->tensors[t].offset;
            fixed_to_floats(model->grads + off, w->q + off, model->tensors[t].count, scale_exp[t]);
        }
        flags |= (ctrl[0] ? STEP_STOP : 0) | (ctrl[1] ? STEP_BAD_LOSS : 0);
    }
    for (int k = 0; k < p->count; k++)
        out->loss_sum += w->loss[k], out->correct += w->correct[k];
    const double t2 = time_now_s();
    if (!(flags & STEP_BAD_GRAD)) {
        if (exchange_update(x, 0, nf, 0, 1))
            flags |= STEP_BAD_GRAD;
        optim_apply_max_norm(x->opt, model->params);
        exchange_mirror_made(x);
    }
    /* forward and backward run interleaved over shards: split evenly */
    out->times.forward = out->times.backward = 0.5 * (t1 - t0);
    out->times.allreduce = t2 - t1;
    out->times.update = time_now_s() - t2;
    return flags;
}
