/* CPU kernels for the per-example passes of the engine (see grok_core/native/__init__.py).
 *
 * Plain C over contiguous float32 arrays, one member after another, so that a member's numbers
 * never depend on the cohort around it. Built without floating-point contraction and without
 * reassociation: every result is the same IEEE arithmetic in the same order whatever the CPU's
 * vector width. The MLP's pair passes do exactly PyTorch's operations (the same bits as its
 * PyTorch path); the transformer's passes and both models' cross-entropy are their own
 * definitions, with their own exponential, so what trains does not depend on the C library
 * (libm's log only gives the reported loss value).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0 in float32, within ~1 ulp: x = k ln2 + r with |r| <= ln2 / 2, a degree-6
 * polynomial for exp(r) (Cephes' coefficients), 2^k by the exponent bits. Below -87 it gives
 * exp(-87) ~ 1.6e-38 (the engine flushes subnormals anyway). Plain arithmetic, so loops over it
 * vectorise. */
static inline float exp_nonpositive(float x) {
    const float log2e = 1.44269504088896341f, round = 12582912.0f; /* 1.5 * 2^23 */
    const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    x = x < -87.0f ? -87.0f : x;
    const float k = (x * log2e + round) - round; /* the nearest integer to x / ln2 */
    const float r = (x - k * ln2_hi) - k * ln2_lo;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (p * r) * r + r + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23;
    float two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    return p * two_k;
}

/* w0 = softmax(s0, s1)[0] = 1 / (1 + exp(z)) with z = s1 - s0, from the side where the
 * exponential is at most 1 */
static inline float first_weight(float z) {
    if (z > 0.0f) {
        const float e = exp_nonpositive(-z);
        return e / (1.0f + e);
    }
    return 1.0f / (1.0f + exp_nonpositive(z));
}

/* Eight floats, eight doubles and sixteen floats as one value each (GCC and clang vector
 * extensions): the lane loops below are written with them because the compiler does not
 * vectorise an array of running sums by itself. Lane l does exactly the scalar arithmetic of
 * running sum l, so the results are those of the plain loops in the comments. */
typedef float f32x8 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));

static inline f32x8 load8(const float *x) {
    f32x8 v;
    memcpy(&v, x, sizeof v);
    return v;
}

/* lane by lane, y where y > x, else x (so a NaN in y never replaces x) */
static inline f32x16 larger_of(f32x16 x, f32x16 y) {
    const i32x16 larger = y > x;
    return (f32x16)(((i32x16)y & larger) | ((i32x16)x & ~larger));
}

static inline double combine8(const double lane[8]) {
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* sum_j x[j] (y[j] - z[j]) in double, in eight running sums (lane[j % 8] += ..., the tail into
 * lane 0; a fixed order, so that it vectorises and is the same on every CPU) */
static double dot_of_difference(int64_t count, const float *x, const float *y, const float *z) {
    f64x8 sums = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t j = 0;
    for (; j + 8 <= count; j += 8)
        sums += __builtin_convertvector(load8(x + j), f64x8)
                * __builtin_convertvector(load8(y + j) - load8(z + j), f64x8);
    double lane[8];
    memcpy(lane, &sums, sizeof lane);
    for (; j < count; j++) lane[0] += (double)x[j] * (double)(y[j] - z[j]);
    return combine8(lane);
}

/* plus[j] += row[j], then a[j] += u row[j], then b[j] -= u row[j], for every j in one pass
 * (b may be a: a pair (t, t) of one table). Sixteen columns at a time; each element gets the
 * three updates in that order, as three separate loops would give it. */
static void add_rows(int64_t count, const float *row, float u, float *plus, float *a, float *b) {
    int64_t j = 0;
    for (; j + 16 <= count; j += 16) {
        f32x16 r, p, x, y;
        memcpy(&r, row + j, sizeof r);
        memcpy(&p, plus + j, sizeof p);
        p += r;
        memcpy(plus + j, &p, sizeof p);
        const f32x16 ur = u * r;
        memcpy(&x, a + j, sizeof x);
        x += ur;
        memcpy(a + j, &x, sizeof x);
        memcpy(&y, b + j, sizeof y); /* after a's store: b may be a */
        y -= ur;
        memcpy(b + j, &y, sizeof y);
    }
    for (; j < count; j++) {
        plus[j] += row[j];
        a[j] += u * row[j];
        b[j] -= u * row[j];
    }
}

/* The transformer's per-example forward (grok_core.models.transformer._TokenTables).
 * Tables per member: plus = L1 + F1 [V, W], f0, f1 [V, W] (W = m + C; f1 may be f0),
 * s0 [V, V], s1 [V], b_in [m] (NULL: none). Examples: token pairs (a, b) = pairs[n] [N, 2].
 * Out: first [K, N] (w0), hidden [K, N, m] (the ReLU), direct [K, N, C] (the residual's
 * direct path to the logits). */
void token_rows_forward(int64_t K, int64_t N, int64_t V, int64_t m, int64_t C,
                        const float *plus, const float *f0, const float *f1,
                        const float *s0, const float *s1, const float *b_in, float scale,
                        const int64_t *pairs, float *first, float *hidden, float *direct) {
    const int64_t W = m + C;
    for (int64_t k = 0; k < K; k++) {
        const float *P = plus + k * V * W, *F0 = f0 + k * V * W, *F1 = f1 + k * V * W;
        const float *S0 = s0 + k * V * V, *S1 = s1 + k * V;
        const float *B = b_in ? b_in + k * m : NULL;
        for (int64_t n = 0; n < N; n++) {
            const int64_t ta = pairs[2 * n], tb = pairs[2 * n + 1];
            const float u = first_weight((S1[tb] - S0[tb * V + ta]) * scale);
            first[k * N + n] = u;
            const float *pa = F0 + ta * W, *pb = F1 + tb * W, *pp = P + tb * W;
            float *h = hidden + (k * N + n) * m, *d = direct + (k * N + n) * C;
            for (int64_t j = 0; j < m; j++) {
                float pre = pp[j] + u * (pa[j] - pb[j]);
                if (B) pre = pre + B[j];
                h[j] = pre < 0.0f ? 0.0f : pre;
            }
            for (int64_t j = 0; j < C; j++) d[j] = pp[m + j] + u * (pa[m + j] - pb[m + j]);
        }
    }
}

/* Its backward. d_pre [K, N, m] (d loss / d ReLU output), d_logits [K, N, C]; f0, f1, first,
 * hidden as in the forward. Out, overwritten: d_plus, d_f0, d_f1 [K, V, W] (d_f1 may be d_f0:
 * one table for both positions), d_s0 [K, V, V], d_s1 [K, V], d_b_in [K, m] (NULL: none).
 * row [W]: scratch. Rows are added to the tables in example order. */
void token_rows_backward(int64_t K, int64_t N, int64_t V, int64_t m, int64_t C,
                         const float *f0, const float *f1, const float *first,
                         const float *hidden, const float *d_pre, const float *d_logits,
                         float scale, const int64_t *pairs, float *d_plus, float *d_f0,
                         float *d_f1, float *d_s0, float *d_s1, float *d_b_in, float *row) {
    const int64_t W = m + C;
    memset(d_plus, 0, sizeof(float) * K * V * W);
    memset(d_f0, 0, sizeof(float) * K * V * W);
    if (d_f1 != d_f0) memset(d_f1, 0, sizeof(float) * K * V * W);
    memset(d_s0, 0, sizeof(float) * K * V * V);
    memset(d_s1, 0, sizeof(float) * K * V);
    if (d_b_in) memset(d_b_in, 0, sizeof(float) * K * m);
    for (int64_t k = 0; k < K; k++) {
        const float *F0 = f0 + k * V * W, *F1 = f1 + k * V * W;
        float *DP = d_plus + k * V * W, *DF0 = d_f0 + k * V * W, *DF1 = d_f1 + k * V * W;
        float *DS0 = d_s0 + k * V * V, *DS1 = d_s1 + k * V;
        float *DB = d_b_in ? d_b_in + k * m : NULL;
        for (int64_t n = 0; n < N; n++) {
            const int64_t ta = pairs[2 * n], tb = pairs[2 * n + 1];
            const float u = first[k * N + n];
            const float *h = hidden + (k * N + n) * m, *g = d_pre + (k * N + n) * m;
            for (int64_t j = 0; j < m; j++) row[j] = h[j] <= 0.0f ? 0.0f : g[j];
            memcpy(row + m, d_logits + (k * N + n) * C, sizeof(float) * C);
            const float *pa = F0 + ta * W, *pb = F1 + tb * W;
            const double dot = dot_of_difference(W, row, pa, pb); /* d loss / d w0 */
            add_rows(W, row, u, DP + tb * W, DF0 + ta * W, DF1 + tb * W);
            if (DB) for (int64_t j = 0; j < m; j++) DB[j] += row[j];
            const float ds = (float)dot * (u * (1.0f - u)) * scale; /* d s0 = -d s1 */
            DS0[tb * V + ta] += ds;
            DS1[tb] -= ds;
        }
    }
}

/* The MLP's per-example forward (grok_core.models.mlp): hidden[n] = ReLU(T[a] + T[b]) for the
 * token table T = W_emb W_in [K, V, h] and the pairs (a, b) = pairs[n] [N, 2]. The same IEEE
 * operations as PyTorch's gathers, add and ReLU, so the same bits. */
void pair_relu_forward(int64_t K, int64_t N, int64_t V, int64_t h, const float *table,
                       const int64_t *pairs, float *hidden) {
    for (int64_t k = 0; k < K; k++) {
        const float *T = table + k * V * h;
        for (int64_t n = 0; n < N; n++) {
            const float *ta = T + pairs[2 * n] * h, *tb = T + pairs[2 * n + 1] * h;
            float *out = hidden + (k * N + n) * h;
            for (int64_t j = 0; j < h; j++) {
                const float pre = ta[j] + tb[j];
                out[j] = pre < 0.0f ? 0.0f : pre; /* as torch.relu: -0 and NaN pass */
            }
        }
    }
}

/* Its backward: d_table [K, V, h] (overwritten) = the sum over examples of the ReLU-masked
 * d_hidden rows, added to row a[n] for every n in order, then to row b[n] for every n in order:
 * the order of PyTorch's two index_add_ calls, so the same bits. */
void pair_relu_backward(int64_t K, int64_t N, int64_t V, int64_t h, const float *hidden,
                        const float *d_hidden, const int64_t *pairs, float *d_table,
                        float *masked) {
    memset(d_table, 0, sizeof(float) * K * V * h);
    for (int64_t k = 0; k < K; k++) {
        float *D = d_table + k * V * h;
        const float *H = hidden + k * N * h, *G = d_hidden + k * N * h;
        for (int64_t n = 0; n < N; n++) {
            float *row = masked + n * h;
            for (int64_t j = 0; j < h; j++) /* as threshold_backward: NaN passes */
                row[j] = H[n * h + j] <= 0.0f ? 0.0f : G[n * h + j];
            float *out = D + pairs[2 * n] * h;
            for (int64_t j = 0; j < h; j++) out[j] += row[j];
        }
        for (int64_t n = 0; n < N; n++) {
            const float *row = masked + n * h;
            float *out = D + pairs[2 * n + 1] * h;
            for (int64_t j = 0; j < h; j++) out[j] += row[j];
        }
    }
}

/* the largest of x[0..count), count >= 1, in sixteen running maxima (lane[j % 16] takes x[j]
 * where it is larger, the tail after the lanes are merged; NaN never replaces a lane), so that
 * it vectorises */
static float max_of(int64_t count, const float *x) {
    f32x16 lanes;
    for (int l = 0; l < 16; l++) lanes[l] = x[0];
    int64_t j = 0;
    for (; j + 16 <= count; j += 16) {
        f32x16 v;
        memcpy(&v, x + j, sizeof v);
        lanes = larger_of(lanes, v);
    }
    /* the lanes merged pairwise: a maximum is exact, so any order gives the same value (and a
     * NaN first element, the only way a lane holds NaN, stays NaN either way) */
    const f32x16 upper = __builtin_shufflevector(lanes, lanes, 8, 9, 10, 11, 12, 13, 14, 15,
                                                 0, 1, 2, 3, 4, 5, 6, 7);
    float merged[16];
    lanes = larger_of(lanes, upper);
    memcpy(merged, &lanes, sizeof merged);
    for (int width = 4; width >= 1; width /= 2)
        for (int l = 0; l < width; l++)
            merged[l] = merged[l + width] > merged[l] ? merged[l + width] : merged[l];
    float best = merged[0];
    for (; j < count; j++) best = x[j] > best ? x[j] : best;
    return best;
}

/* sum of e[0..count) in double, in eight running sums (lane[j % 8], the tail into lane 0) */
static double sum_of(int64_t count, const float *e) {
    f64x8 sums = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) sums += __builtin_convertvector(load8(e + j), f64x8);
    double lane[8];
    memcpy(lane, &sums, sizeof lane);
    for (; j < count; j++) lane[0] += e[j];
    return combine8(lane);
}

/* Cross-entropy of logits [K, N, C] (rows contiguous) against labels [N], as
 * grok_core.models.losses.transposed_cross_entropy defines it: loss [K] (mean over examples in
 * double, rounded to float; the normaliser 1 + tiny in double; NaN unless want_loss: its
 * logarithms are a fifth of the kernel and a training step's loss is read only at
 * evaluations), acc [K] (the label's logit the largest, ties count) and, when d_logits is not
 * NULL, d(sum of member losses) / d logits [K, N, C] (the label's entry (e_y - total) / total
 * in double). exps [N, C] (where d_logits is NULL) and label_shift [N]: scratch.
 * The exponentials are taken in one pass over a member's N C shifted logits rather than row by
 * row: no vector tail per row (C = 67 leaves three scalar exponentials in every row), the same
 * operations on every element, so the same bits. */
void cross_entropy_rows(int64_t K, int64_t N, int64_t C, const float *logits,
                        const int64_t *labels, int64_t want_loss, float *loss, float *acc,
                        float *d_logits, float *exps, float *label_shift) {
    for (int64_t k = 0; k < K; k++) {
        const float *Z = logits + k * N * C;
        float *E = d_logits ? d_logits + k * N * C : exps;
        int64_t correct = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *z = Z + n * C;
            float *e = E + n * C;
            const float z_max = max_of(C, z);
            correct += z[labels[n]] >= z_max;
            label_shift[n] = z[labels[n]] - z_max;
            for (int64_t j = 0; j < C; j++) e[j] = z[j] - z_max;
        }
        for (int64_t i = 0; i < N * C; i++) E[i] = exp_nonpositive(E[i]);
        double loss_sum = 0.0;
        for (int64_t n = 0; n < N; n++) {
            float *e = E + n * C;
            const int64_t y = labels[n];
            const double total = sum_of(C, e);
            if (want_loss) loss_sum += log(total) - (double)label_shift[n];
            if (d_logits) { /* p_j / N, and (p_y - 1) / N = (e_y - total) / (total N) */
                const float e_y = e[y], factor = (float)(1.0 / (total * (double)N));
                for (int64_t j = 0; j < C; j++) e[j] = e[j] * factor;
                e[y] = (float)(((double)e_y - total) / (total * (double)N));
            }
        }
        loss[k] = want_loss ? (float)(loss_sum / (double)N) : NAN; /* rounded as .float() */
        acc[k] = (float)correct / (float)N;
    }
}

/* ---- the models' whole passes, their matrix products by the BLAS that PyTorch calls ----
 * PyTorch's CPU matmul of float32 row-major operands is one column-major sgemm_ of the BLAS it
 * was built with (MKL): C^T = B^T A^T, an operand's flag 'T' where it is a transposed view. The
 * same call here gives the same bits (a test compares every product), and a step is one call
 * from Python instead of some thirty: at one member the dispatch of those calls was ~10% of it. */
typedef void (*sgemm_fn)(const char *transa, const char *transb, const int *m, const int *n,
                         const int *k, const float *alpha, const float *a, const int *lda,
                         const float *b, const int *ldb, const float *beta, float *c,
                         const int *ldc);
static sgemm_fn blas_sgemm = NULL;
typedef int (*threads_fn)(int);
static threads_fn blas_threads_here = NULL;

/* the BLAS's sgemm_ (Fortran interface) and its MKL_Set_Num_Threads_Local, found by
 * grok_core.native in PyTorch's library */
void set_blas(void *sgemm, void *set_threads_local) {
    blas_sgemm = (sgemm_fn)sgemm;
    blas_threads_here = (threads_fn)set_threads_local;
}

/* Every product of a whole pass runs on one thread (the call's own setting, restored after):
 * a member's numbers then do not depend on how many threads PyTorch uses. They are those of
 * PyTorch's single-threaded products, and of its batched ones at any thread count (one member
 * a thread), so a cohort of one equals a member of a larger one at any thread count. */
static int one_thread(void) { return blas_threads_here(1); }
static void threads_back(int previous) { blas_threads_here(previous); }

/* C [m, n] (rows contiguous) = A [m, k] B [k, n]. An operand is plain (rows contiguous, ld
 * floats apart) or, with its flag set, the transposed view of such a matrix (ld: the row length
 * of the matrix it views). */
static void gemm(int64_t m, int64_t n, int64_t k, const float *a, int a_transposed,
                 int64_t lda, const float *b, int b_transposed, int64_t ldb, float beta,
                 float *c) {
    const char ta = a_transposed ? 'T' : 'N', tb = b_transposed ? 'T' : 'N';
    const int rows = (int)n, cols = (int)m, inner = (int)k, ld_a = (int)lda, ld_b = (int)ldb,
              ld_c = (int)n;
    const float one = 1.0f;
    blas_sgemm(&tb, &ta, &rows, &cols, &inner, &one, b, &ld_b, a, &ld_a, &beta, c, &ld_c);
}

static void product(int64_t m, int64_t n, int64_t k, const float *a, int a_transposed,
                    int64_t lda, const float *b, int b_transposed, int64_t ldb, float *c) {
    gemm(m, n, k, a, a_transposed, lda, b, b_transposed, ldb, 0.0f, c);
}

/* C += A B, as torch.baddbmm (its input copied into C first) and baddbmm_ make it */
static void product_added(int64_t m, int64_t n, int64_t k, const float *a, int a_transposed,
                          int64_t lda, const float *b, int b_transposed, int64_t ldb,
                          float *c) {
    gemm(m, n, k, a, a_transposed, lda, b, b_transposed, ldb, 1.0f, c);
}

/* out [cols, rows] = in [rows, cols]^T */
static void transposed(int64_t rows, int64_t cols, const float *in, float *out) {
    for (int64_t i = 0; i < cols; i++)
        for (int64_t j = 0; j < rows; j++) out[i * rows + j] = in[j * cols + i];
}

/* out [rows, cols] = the [rows, cols] block of a matrix whose rows are ld floats apart */
static void block(int64_t rows, int64_t cols, const float *in, int64_t ld, float *out) {
    for (int64_t i = 0; i < rows; i++) memcpy(out + i * cols, in + i * ld, sizeof(float) * cols);
}

/* A pass's scratch arrays, one after another in one buffer, each from a 64-byte line (where a
 * PyTorch allocation would start: the BLAS's kernels may depend on alignment). take() hands
 * out the next array of count floats; over no buffer (base NULL) it only counts them, which is
 * how a pass's layout function also gives the buffer's size. */
typedef struct {
    float *base;
    int64_t used;
} scratch_cursor;

static float *take(scratch_cursor *cursor, int64_t count) {
    float *at = cursor->base ? cursor->base + cursor->used : NULL;
    cursor->used += (count + 15) / 16 * 16;
    return at;
}

/* the MLP pass's scratch for N examples, V tokens, h hidden units, C classes; its floats */
typedef struct {
    float *T, *d_T, *H, *d_H_t, *d_H, *hidden, *d_hidden, *masked, *logits, *d_logits,
        *label_shift;
} mlp_scratch;

static int64_t mlp_layout(float *base, int64_t N, int64_t V, int64_t h, int64_t C,
                          mlp_scratch *s) {
    scratch_cursor cursor = {base, 0};
    s->T = take(&cursor, V * h), s->d_T = take(&cursor, V * h);
    s->H = take(&cursor, h * C), s->d_H_t = take(&cursor, h * C), s->d_H = take(&cursor, h * C);
    /* d_hidden is written once the loss has read the logits, and the backward's masked rows
     * once the products have read d_logits: each takes the memory of the one it follows, a
     * third less scratch (a step's weights, gradients, moments and scratch outgrow a 2 MB L2) */
    const int64_t row = C > h ? C : h;
    s->hidden = take(&cursor, N * h);
    s->logits = s->d_hidden = take(&cursor, N * row);
    s->d_logits = s->masked = take(&cursor, N * row);
    s->label_shift = take(&cursor, N);
    return cursor.used;
}

/* scratch floats mlp_loss_and_grads needs */
int64_t mlp_scratch_floats(int64_t N, int64_t V, int64_t h, int64_t C) {
    mlp_scratch s;
    return mlp_layout(NULL, N, V, h, C, &s);
}

/* Eq. (1)'s MLP (grok_core.models.mlp.MLP.loss_and_grads, the same operations in the same
 * order): per member, T = W_emb W_in, H = W_out W_unemb, hidden = ReLU(T[a] + T[b]), logits =
 * hidden H, the cross-entropy, and if want_grads the gradients of the summed member losses.
 * Weights [K, ...] (masks already applied), pairs [N, 2], labels [N]; out: loss [K] (NaN
 * unless want_loss), acc [K], g_* shaped as the weights. */
void mlp_loss_and_grads(int64_t K, int64_t N, int64_t V, int64_t d, int64_t h, int64_t C,
                        const float *w_emb, const float *w_in, const float *w_out,
                        const float *w_unemb, const int64_t *pairs, const int64_t *labels,
                        int64_t want_grads, int64_t want_loss, float *loss, float *acc,
                        float *g_emb, float *g_in, float *g_out, float *g_unemb,
                        float *scratch) {
    mlp_scratch s;
    mlp_layout(scratch, N, V, h, C, &s);
    float *T = s.T, *d_T = s.d_T, *H = s.H, *d_H_t = s.d_H_t, *d_H = s.d_H, *hidden = s.hidden;
    float *d_hidden = s.d_hidden, *masked = s.masked, *logits = s.logits;
    float *d_logits = s.d_logits, *label_shift = s.label_shift;
    const int threads = one_thread();
    for (int64_t k = 0; k < K; k++) {
        const float *We = w_emb + k * V * d, *Wi = w_in + k * d * h;
        const float *Wo = w_out + k * h * d, *Wu = w_unemb + k * d * C;
        product(V, h, d, We, 0, d, Wi, 0, h, T);
        product(h, C, d, Wo, 0, d, Wu, 0, C, H);
        pair_relu_forward(1, N, V, h, T, pairs, hidden);
        product(N, C, h, hidden, 0, h, H, 0, C, logits);
        /* without gradients d_logits is the exponentials' scratch */
        cross_entropy_rows(1, N, C, logits, labels, want_loss, loss + k, acc + k,
                           want_grads ? d_logits : NULL, d_logits, label_shift);
        if (!want_grads) continue;
        product(C, h, N, d_logits, 1, C, hidden, 0, h, d_H_t); /* (d_logits^T hidden)^T */
        transposed(C, h, d_H_t, d_H);
        product(N, h, C, d_logits, 0, C, H, 1, C, d_hidden);
        pair_relu_backward(1, N, V, h, hidden, d_hidden, pairs, d_T, masked);
        product(V, d, h, d_T, 0, h, Wi, 1, h, g_emb + k * V * d);
        product(d, h, V, We, 1, d, d_T, 0, h, g_in + k * d * h);
        product(h, d, C, d_H, 0, C, Wu, 1, C, g_out + k * h * d);
        product(d, C, h, Wo, 1, d, d_H, 0, C, g_unemb + k * d * C);
    }
    threads_back(threads);
}

/* one product as a whole pass makes it (grok_core.native checks its bits against torch.bmm's
 * on one thread) */
void matmul(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_transposed, int64_t lda,
            const float *b, int64_t b_transposed, int64_t ldb, float *c) {
    const int threads = one_thread();
    product(m, n, k, a, (int)a_transposed, lda, b, (int)b_transposed, ldb, c);
    threads_back(threads);
}

/* the transformer pass's scratch (W = m + C, P = 3d + W); its floats */
typedef struct {
    float *plus, *d_plus, *d_f, *d_s0, *d_s1, *row, *first, *label_shift, *hidden, *d_hidden,
        *logits, *d_logits, *d_hl_t, *d_hl, *hl_t, *d_query, *d_k0, *d_g, *d_products,
        *d_maps_all, *d_maps;
} transformer_scratch;

static int64_t transformer_layout(float *base, int64_t N, int64_t V, int64_t d, int64_t m,
                                  int64_t C, transformer_scratch *s) {
    const int64_t W = m + C, P = 3 * d + W;
    scratch_cursor cursor = {base, 0};
    s->plus = take(&cursor, V * W), s->d_plus = take(&cursor, V * W);
    s->d_f = take(&cursor, V * W), s->d_s0 = take(&cursor, V * V), s->d_s1 = take(&cursor, V);
    s->row = take(&cursor, W), s->first = take(&cursor, N), s->label_shift = take(&cursor, N);
    s->hidden = take(&cursor, N * m), s->d_hidden = take(&cursor, N * m);
    s->logits = take(&cursor, N * C), s->d_logits = take(&cursor, N * C);
    s->d_hl_t = take(&cursor, m * C), s->d_hl = take(&cursor, m * C);
    s->hl_t = take(&cursor, m * C);
    s->d_query = take(&cursor, V * d), s->d_k0 = take(&cursor, V * d);
    s->d_g = take(&cursor, V * d), s->d_products = take(&cursor, V * P);
    s->d_maps_all = take(&cursor, d * P), s->d_maps = take(&cursor, d * W);
    return cursor.used;
}

/* scratch floats transformer_loss_and_grads needs */
int64_t transformer_scratch_floats(int64_t N, int64_t V, int64_t d, int64_t m, int64_t C) {
    transformer_scratch s;
    return transformer_layout(NULL, N, V, d, m, C, &s);
}

/* The transformer's pass by its token tables (grok_core.models.transformer: _TokenTables'
 * forward and backward, the same operations in the same order), for one table shared by both
 * positions (no W_pos) and no MLP biases, given the tables PyTorch made: products [K, V, P] =
 * W_E [W_Q | W_K | W_V W_O | W_in | W_U] (P = 3d + W, W = m + C), token_maps [K, d, P] (the
 * bracket), f [K, V, W] (G M), s0 [K, V, V], s1 [K, V], hidden_logits [K, m, C] (W_out W_U).
 * Weights (masked) W_E, W_V, W_O, W_out, W_U [K, ...]; out: loss [K] (NaN unless want_loss),
 * acc [K], and if want_grads g_* shaped as the weights (contiguous, maybe a cohort's rows). */
void transformer_loss_and_grads(
        int64_t K, int64_t N, int64_t V, int64_t d, int64_t m, int64_t C,
        const float *products, const float *token_maps, const float *f, const float *s0,
        const float *s1, const float *hidden_logits, const float *w_e, const float *w_v,
        const float *w_o, const float *w_out, const float *w_u, float scale,
        const int64_t *pairs, const int64_t *labels, int64_t want_grads, int64_t want_loss,
        float *loss, float *acc, float *g_e, float *g_q, float *g_k, float *g_v, float *g_o,
        float *g_in, float *g_out, float *g_u, float *scratch) {
    const int64_t W = m + C, P = 3 * d + W;
    transformer_scratch s;
    transformer_layout(scratch, N, V, d, m, C, &s);
    float *plus = s.plus, *d_plus = s.d_plus, *d_f = s.d_f, *d_s0 = s.d_s0, *d_s1 = s.d_s1;
    float *row = s.row, *first = s.first, *label_shift = s.label_shift, *hidden = s.hidden;
    float *d_hidden = s.d_hidden, *logits = s.logits, *d_logits = s.d_logits;
    float *d_hl_t = s.d_hl_t, *d_hl = s.d_hl, *hl_t = s.hl_t, *d_query = s.d_query;
    float *d_k0 = s.d_k0, *d_g = s.d_g, *d_products = s.d_products;
    float *d_maps_all = s.d_maps_all, *d_maps = s.d_maps;
    const int threads = one_thread();
    for (int64_t k = 0; k < K; k++) {
        const float *prod = products + k * V * P, *maps = token_maps + k * d * P; /* [Q|K|VO|M] */
        const float *F = f + k * V * W, *S0 = s0 + k * V * V, *S1 = s1 + k * V;
        const float *HL = hidden_logits + k * m * C, *We = w_e + k * V * d;
        const float *Wv = w_v + k * d * d, *Wo = w_o + k * d * d;
        const float *Wout = w_out + k * m * d, *Wu = w_u + k * d * C;
        for (int64_t v = 0; v < V; v++) /* plus = L1 + F1 */
            for (int64_t j = 0; j < W; j++)
                plus[v * W + j] = prod[v * P + 3 * d + j] + F[v * W + j];
        token_rows_forward(1, N, V, m, C, plus, F, F, S0, S1, NULL, scale, pairs, first, hidden,
                           logits);
        product_added(N, C, m, hidden, 0, m, HL, 0, C, logits); /* the direct path + hidden HL */
        cross_entropy_rows(1, N, C, logits, labels, want_loss, loss + k, acc + k,
                           want_grads ? d_logits : NULL, d_logits, label_shift);
        if (!want_grads) continue;
        product(C, m, N, d_logits, 1, C, hidden, 0, m, d_hl_t);
        transposed(C, m, d_hl_t, d_hl);
        transposed(m, C, HL, hl_t);
        product(N, m, C, d_logits, 0, C, hl_t, 0, m, d_hidden);
        token_rows_backward(1, N, V, m, C, F, F, first, hidden, d_hidden, d_logits, scale, pairs,
                            d_plus, d_f, d_f, d_s0, d_s1, NULL, row);
        for (int64_t i = 0; i < V * W; i++) d_f[i] += d_plus[i]; /* plus = L1 + F1 */
        for (int64_t v = 0; v < V; v++) /* d query = d_s1 k1 + d_s0 k0, d key = d_s0^T q + d_s1 q */
            for (int64_t j = 0; j < d; j++) d_query[v * d + j] = d_s1[v] * prod[v * P + d + j];
        product_added(V, d, V, d_s0, 0, V, prod + d, 0, P, d_query);
        product(V, d, V, d_s0, 1, V, prod, 0, P, d_k0);
        product(V, d, W, d_f, 0, W, maps + 3 * d, 1, P, d_g);
        for (int64_t v = 0; v < V; v++) {
            float *out = d_products + v * P;
            memcpy(out, d_query + v * d, sizeof(float) * d);
            for (int64_t j = 0; j < d; j++)
                out[d + j] = d_k0[v * d + j] + d_s1[v] * prod[v * P + j];
            memcpy(out + 2 * d, d_g + v * d, sizeof(float) * d);
            memcpy(out + 3 * d, d_plus + v * W, sizeof(float) * W);
        }
        product(d, P, V, We, 1, d, d_products, 0, P, d_maps_all); /* d [Q | K | V O | M] */
        block(d, W, d_maps_all + 3 * d, P, d_maps);
        product_added(d, W, V, prod + 2 * d, 1, P, d_f, 0, W, d_maps);
        product(V, d, P, d_products, 0, P, maps, 1, P, g_e + k * V * d);
        block(d, d, d_maps_all, P, g_q + k * d * d);
        block(d, d, d_maps_all + d, P, g_k + k * d * d);
        product(d, d, d, d_maps_all + 2 * d, 0, P, Wo, 1, d, g_v + k * d * d);
        product(d, d, d, Wv, 1, d, d_maps_all + 2 * d, 0, P, g_o + k * d * d);
        block(d, m, d_maps, W, g_in + k * d * m);
        product(m, d, C, d_hl, 0, C, Wu, 1, C, g_out + k * m * d);
        block(d, C, d_maps + m, W, g_u + k * d * C);
        product_added(d, C, m, Wout, 1, d, d_hl, 0, C, g_u + k * d * C);
    }
    threads_back(threads);
}
