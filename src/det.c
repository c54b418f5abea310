/* det: the deterministic data-parallel step (see det.h). Logical shards fix
 * which rows are summed together; one thread computes a shard with
 * single-threaded BLAS (OpenBLAS's OpenMP build runs inside a parallel
 * region on the calling thread); shard gradients meet only as 64-bit
 * integers, whose sum does not depend on order, thread or rank count. */
#include "mnist/det.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mnist/data.h"

int det_plan(DetPlan *p, size_t n_train, int global_batch, int shards, int rank, int nranks,
             Error *e)
{
    memset(p, 0, sizeof *p);
    if (shards < 1 || shards > DET_MAX_SHARDS)
        return err_set(e, "--logical-shards %d is outside 1..%d", shards, DET_MAX_SHARDS);
    if (nranks > shards)
        return err_set(e,
                       "--deterministic with %d logical shards runs on at most %d ranks, not %d "
                       "(raise --logical-shards; every run to compare must use the same value)",
                       shards, shards, nranks);
    if (global_batch < shards)
        return err_set(e, "--batch-size %d is smaller than --logical-shards %d", global_batch,
                       shards);
    p->shards = shards;
    p->steps = SIZE_MAX;
    for (int j = 0; j < shards; j++) {
        size_t bf, bn;
        data_shard_range(n_train, shards, j, &p->row_first[j], &p->rows[j]);
        data_shard_range((size_t)global_batch, shards, j, &bf, &bn);
        p->batch[j] = (int)bn;
        if (p->rows[j] / bn < p->steps)
            p->steps = p->rows[j] / bn;
    }
    if (p->steps == 0)
        return err_set(e, "%zu training rows are too few for --batch-size %d over %d logical shards",
                       n_train, global_batch, shards);
    size_t f, n;
    data_shard_range((size_t)shards, nranks, rank, &f, &n);
    p->first = (int)f, p->count = (int)n;
    p->local_first = p->row_first[p->first];
    for (int k = 0; k < p->count; k++) {
        p->local_rows += p->rows[p->first + k];
        p->local_batch += p->batch[p->first + k];
    }
    return 0;
}

int det_work_create(DetWork *w, const Mlp *model, const DetPlan *p, int threads, Error *e)
{
    memset(w, 0, sizeof *w);
    w->count = p->count;
    w->threads = threads < 1 ? 1 : threads > p->count ? p->count : threads;
    int max_rows = 1;
    for (int k = 0; k < p->count; k++)
        if (p->batch[p->first + k] > max_rows)
            max_rows = p->batch[p->first + k];
    w->ws = calloc((size_t)w->threads, sizeof *w->ws);
    w->shard_grads = alloc_aligned(sizeof(float) * model->param_floats * (size_t)p->count);
    w->q = alloc_aligned(sizeof(int64_t) * (model->param_floats + MLP_CTRL_FLOATS));
    w->loss = calloc((size_t)p->count, sizeof *w->loss);
    w->correct = calloc((size_t)p->count, sizeof *w->correct);
    w->top = calloc((size_t)p->count * 2 * MLP_MAX_LAYERS, sizeof *w->top);
    if (!w->ws || !w->shard_grads || !w->q || !w->loss || !w->correct || !w->top) {
        det_work_free(w);
        return err_set(e, "out of memory for the deterministic workspace");
    }
    for (int t = 0; t < w->threads; t++) {
        if (mlp_create(&w->ws[t], model->sizes, model->num_layers, model->dropout, max_rows, e)) {
            det_work_free(w);
            return -1;
        }
        /* the workspace reads the model's parameters; its own stay unused */
        for (int l = 0; l < model->num_layers; l++)
            w->ws[t].W[l] = model->W[l], w->ws[t].b[l] = model->b[l];
    }
    return 0;
}

void det_work_free(DetWork *w)
{
    if (w->ws)
        for (int t = 0; t < w->threads; t++)
            mlp_free(&w->ws[t]);
    free(w->ws);
    free(w->shard_grads);
    free(w->q);
    free(w->loss);
    free(w->correct);
    free(w->top);
    memset(w, 0, sizeof *w);
}

static int ceil_log2(int n)
{
    int k = 0;
    while ((1 << k) < n)
        k++;
    return k;
}

int det_to_fixed(int64_t *q, const float *parts, size_t stride, int count, size_t n, int max_exp,
                 int total_parts)
{
    /* |x| < 2^max_exp for every part, so a sum of total_parts of them stays
     * below 2^62 at scale 2^k: no int64 overflow whatever the grouping. */
    const int k = 62 - max_exp - ceil_log2(total_parts);
    const double scale = ldexp(1.0, k);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        int64_t s = 0;
        for (int c = 0; c < count; c++) /* exact scaling, then truncation */
            s += (int64_t)((double)parts[(size_t)c * stride + i] * scale);
        q[i] = s;
    }
    return k;
}

int det_step(DetWork *w, const DetPlan *p, Mlp *model, Adam *opt, const Comm *comm,
             const float *x, const uint8_t *y, const uint64_t *ids, int global_batch,
             uint64_t dropout_key, int stop_local, int *pred, double *loss_sum,
             int64_t *correct, StepTimes *times)
{
    const double t0 = time_now_s();
    const size_t nf = model->param_floats;
    const int L = model->num_layers;
    int offset[DET_MAX_SHARDS];
    for (int k = 0, off = 0; k < p->count; k++) {
        offset[k] = off;
        off += p->batch[p->first + k];
    }
    for (int t = 0; t < w->threads; t++) {
        w->ws[t].label_smoothing = model->label_smoothing;
        w->ws[t].dropout = model->dropout;
    }

    /* Each local shard on one thread: its own activations, its own
     * gradient buffer; nested OpenMP loops and BLAS run single-threaded. */
#pragma omp parallel for schedule(static) num_threads(w->threads)
    for (int k = 0; k < p->count; k++) {
#ifdef _OPENMP
        Mlp *ws = &w->ws[omp_get_thread_num()];
#else
        Mlp *ws = &w->ws[0];
#endif
        float *g = w->shard_grads + (size_t)k * nf;
        memset(g, 0, sizeof(float) * nf);
        for (int l = 0; l < L; l++) {
            ws->dW[l] = g + mlp_tensor_offset(model, l, 0);
            ws->db[l] = g + mlp_tensor_offset(model, l, 1);
        }
        const int b = p->batch[p->first + k], off = offset[k];
        const float *xs = x + (size_t)off * model->sizes[0];
        mlp_forward(ws, xs, b, 1, dropout_key, ids + off);
        w->loss[k] = mlp_backward(ws, xs, y + off, b, 1.0f / (float)global_batch, pred + off);
        int64_t c = 0;
        for (int i = 0; i < b; i++)
            c += pred[off + i] == y[off + i];
        w->correct[k] = c;
        /* this shard's largest |g| per tensor, while its gradient is still
         * in cache: as bits, since for non-negative floats the bit pattern
         * orders like the value and NaN/Inf sit at the top (an integer max
         * vectorises) */
        for (int t = 0; t < 2 * L; t++) {
            const float *gt = g + mlp_tensor_offset(model, t / 2, t % 2);
            const size_t n = mlp_tensor_size(model, t / 2, t % 2);
            uint32_t top = 0;
            for (size_t i = 0; i < n; i++) {
                uint32_t a;
                memcpy(&a, &gt[i], sizeof a);
                a &= 0x7fffffffu;
                top = a > top ? a : top;
            }
            w->top[(size_t)k * 2 * MLP_MAX_LAYERS + (size_t)t] = top;
        }
    }
    const double t1 = time_now_s();

    /* Agree on each tensor's exponent bound (and on non-finite values). */
    int exps[2 * MLP_MAX_LAYERS + 1];
    int bad_local = 0;
    for (int l = 0; l < L; l++)
        for (int which = 0; which < 2; which++) {
            uint32_t top = 0;
            for (int k = 0; k < p->count; k++) {
                const uint32_t t = w->top[(size_t)k * 2 * MLP_MAX_LAYERS + (size_t)(2 * l + which)];
                top = t > top ? t : top;
            }
            bad_local |= top >= 0x7f800000u; /* NaN or Inf */
            float mx;
            memcpy(&mx, &top, sizeof mx);
            int e;
            frexp(mx, &e);
            exps[2 * l + which] = bad_local ? 0 : e;
        }
    exps[2 * L] = bad_local;
    comm_allreduce_max_int(comm, exps, (size_t)(2 * L + 1));

    int flags = 0;
    if (exps[2 * L]) {
        flags |= STEP_BAD_GRAD;
    } else {
        int scale_exp[2 * MLP_MAX_LAYERS];
        memset(w->q, 0, sizeof(int64_t) * nf);
        for (int l = 0; l < L; l++)
            for (int which = 0; which < 2; which++) {
                const size_t off = mlp_tensor_offset(model, l, which);
                const size_t n = mlp_tensor_size(model, l, which);
                scale_exp[2 * l + which] = det_to_fixed(w->q + off, w->shard_grads + off, nf,
                                                        p->count, n, exps[2 * l + which],
                                                        p->shards);
            }
        int64_t *ctrl = w->q + nf;
        memset(ctrl, 0, sizeof(int64_t) * MLP_CTRL_FLOATS);
        double local_loss = 0;
        for (int k = 0; k < p->count; k++)
            local_loss += w->loss[k];
        ctrl[0] = stop_local != 0;
        ctrl[1] = !isfinite(local_loss);
        comm_allreduce_sum_i64(comm, w->q, nf + MLP_CTRL_FLOATS);
        for (int l = 0; l < L; l++)
            for (int which = 0; which < 2; which++) {
                const size_t off = mlp_tensor_offset(model, l, which);
                const size_t n = mlp_tensor_size(model, l, which);
                const double inv = ldexp(1.0, -scale_exp[2 * l + which]);
                float *g = model->grads + off;
                const int64_t *q = w->q + off;
#pragma omp parallel for schedule(static)
                for (size_t i = 0; i < n; i++)
                    g[i] = (float)((double)q[i] * inv);
            }
        flags |= (ctrl[0] ? STEP_STOP : 0) | (ctrl[1] ? STEP_BAD_LOSS : 0);
    }
    for (int k = 0; k < p->count; k++)
        *loss_sum += w->loss[k], *correct += w->correct[k];
    const double t2 = time_now_s();
    if (!(flags & STEP_BAD_GRAD) && train_update(model, opt))
        flags |= STEP_BAD_GRAD;
    if (times) {
        /* forward and backward run interleaved over shards: split evenly */
        times->forward += 0.5 * (t1 - t0), times->backward += 0.5 * (t1 - t0);
        times->allreduce += t2 - t1, times->update += time_now_s() - t2;
    }
    return flags;
}
