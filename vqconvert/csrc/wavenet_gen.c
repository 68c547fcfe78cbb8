/* Fast incremental WaveNet generation ("fast WaveNet": per-layer queues of past layer inputs, so a
 * sample costs O(layers)), batched over streams, for vqconvert.generate.fast (loaded with ctypes).
 *
 * Per sample and stream (see vqconvert/model/wavenet.py for the model):
 *   x = embed[prev]
 *   for each layer l (dilation d):  h = W0 q_l[t-d] + W1 x + cond_l[t]        (cond includes all biases)
 *       z = tanh(h_a) * sigmoid(h_b);  skip += Ws z;  q_l[t] = x;  x += Wr z + br  (no Wr in the last)
 *   logits = W2 relu(W1h relu(skip + sum bs) + b1h) + b2h;  prev = sample(logits)
 *
 * Matrices are stored row-tiled, [M/8][K][8] (fp32 or fp16), so 8 output rows come from one contiguous
 * stream and a broadcast input element: no horizontal sums.  The dilated weights interleave tanh and
 * sigmoid tiles (t0, s0, t1, s1, ...) so the gate is applied in registers.  The work of every step is
 * cut in two "parts" (gate rows + the matching columns of Wr/Ws, then head rows); with two threads each
 * part runs on its own core and threads meet at one spin barrier per layer plus two for the head.  With
 * one thread the same two parts run in turn, so results are bitwise identical for 1 and 2 threads.
 * Plain C with GCC vector extensions; AVX2/FMA/F16C intrinsics where the compiler targets them.
 */
#ifndef WG_TEMPLATE

#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#ifndef WG_BUILD_ID
#define WG_BUILD_ID "unknown"
#endif

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8 ld(const float *p) { return *(const v8u *)p; }
static inline void st(float *p, v8 v) { *(v8u *)p = v; }
static inline v8 bc(float x) { return (v8){x, x, x, x, x, x, x, x}; }
static inline v8 vsel(v8i m, v8 a, v8 b) { return (v8)(((v8i)a & m) | ((v8i)b & ~m)); }
static inline v8 vmax(v8 a, v8 b) { return vsel(a > b, a, b); }
static inline v8 vmin(v8 a, v8 b) { return vsel(a < b, a, b); }
static inline v8 vmax0(v8 a) { return vmax(a, (v8){0}); }

static inline float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0) {
        if (m == 0) u = s;
        else {  /* subnormal */
            e = 127 - 15 + 1;
            while (!(m & 0x400)) { m <<= 1; e--; }
            u = s | (e << 23) | ((m & 0x3ff) << 13);
        }
    } else if (e == 31) u = s | 0x7f800000u | (m << 13);
    else u = s | ((e + 127 - 15) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline v8 ldh(const uint16_t *p) {
#if defined(__F16C__)
    return (v8)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
#else
    v8 r;
    for (int i = 0; i < 8; i++) r[i] = half_to_float(p[i]);
    return r;
#endif
}

/* exp with ~1 ulp error on [-87.3, 88.3] (Cephes polynomial), inputs clamped to that range. */
static inline v8 vexp(v8 x) {
#if defined(__AVX2__) && defined(__FMA__)
    __m256 v = _mm256_min_ps(_mm256_max_ps((__m256)x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), v);
    v = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), v);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(v, v), v);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return (v8)_mm256_mul_ps(y, _mm256_castsi256_ps(e));
#else
    v8 r;
    for (int i = 0; i < 8; i++) r[i] = expf(fminf(fmaxf(x[i], -87.3f), 88.3f));
    return r;
#endif
}

/* tanh(a) * sigmoid(b) = (e^2a - 1) / ((e^2a + 1)(1 + e^-b)); a, b clamped where the result is flat in
 * float32 (|tanh(9)| rounds to 1; sigmoid(-30) < 1e-13), so the product cannot overflow. */
static inline v8 vgate(v8 a, v8 b) {
    a = vmin(vmax(a, bc(-9.0f)), bc(9.0f));
    b = vmin(vmax(b, bc(-30.0f)), bc(30.0f));
    v8 ea = vexp(a + a), eb = vexp(-b);
    return (ea - 1.0f) / ((ea + 1.0f) * (1.0f + eb));
}

typedef struct {
    int L, R, G, S, H, Q; /* layers, residual, gate (both halves), skip, head, classes */
    int fp16;             /* weights below are uint16 half floats instead of float */
    const int32_t *dil;   /* [L] dilations, powers of two */
    const float *embed;   /* [Q][R] */
    const void *wd;       /* [L][G/8][2R][8]  rows of [W0 | W1], tiles ordered tanh0, sig0, tanh1, ... */
    const void *wr;       /* [L-1][R/8][G/2][8] */
    const void *ws;       /* [L][S/8][G/2][8] */
    const float *br;      /* [L-1][R] */
    const float *bs;      /* [S] sum of the skip biases */
    const void *wh1;      /* [H/8][S][8] */
    const float *bh1;     /* [H] */
    const void *wh2;      /* [Q/8][H][8] */
    const float *bh2;     /* [Q] */
} wg_model;

typedef struct {
    int32_t nact, nsteps, nthreads, greedy;
    float inv_temp;
    const int32_t *idx;   /* [nact] state row of each active stream */
    float *queues;        /* [streams][sum(dil) * R] */
    int64_t qstride;      /* floats per stream */
    int32_t *prev;        /* [streams] previous mu-law index (in/out) */
    int64_t *tpos;        /* [streams] samples generated so far (in/out) */
    const float *cond;    /* conditioning rows of L*G floats (gate rows permuted like wd) */
    const int32_t *cidx;  /* [nact] cond block row of each active stream */
    int64_t cbs, cts;     /* floats between streams / rows of cond */
    int64_t cbase;        /* sample index of cond row 0 */
    int32_t cdiv;         /* samples per cond row (64 for per-frame conditioning, 1 per sample) */
    const double *unif;   /* [nact][nsteps] uniforms in [0, 1), or NULL (greedy / forced) */
    const int32_t *forced; /* [nact][nsteps] teacher-forced samples, or NULL */
    float *logits;        /* [nact][nsteps][Q] logits out, or NULL */
    int32_t *out;         /* [nact][nsteps] generated mu-law indices */
    int32_t solo_step;    /* out: step from which a 2-thread job ran on one thread (-1: never) */
} wg_job;

typedef struct {
    _Atomic long v;
    char pad[64 - sizeof(long)];
} padded_counter;

typedef struct {
    const wg_model *m;
    const wg_job *j;
    float *r;      /* [2 parity][2 parts][nact][R] residual partial sums */
    float *skp;    /* [2 parts][nact][S] skip partial sums */
    float *a;      /* [nact][H] */
    float *logits; /* [nact][Q] */
    int nthr;
    int err;
    int solo;      /* set by thread 0 before the last barrier of a step: thread 1 leaves after it */
    int32_t solo_step;
    padded_counter arrive[2];
} shared_t;

static inline uint64_t ticks(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* Two-thread spin barrier (one flag per thread).  Spins briefly, then yields: when the other core is
 * taken by another process, waiting politely is all one can do (and the worker goes solo, see below). */
static void barrier(shared_t *sh, int tid, long *gen, int nthr) {
    if (nthr == 1) return;
    long g = ++*gen;
    atomic_store_explicit(&sh->arrive[tid].v, g, memory_order_release);
    int spins = 0;
    while (atomic_load_explicit(&sh->arrive[1 - tid].v, memory_order_acquire) < g) {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
        if (++spins > 500) {  /* the other core is busy with something else: let it run */
            sched_yield();
            spins = 0;
        }
    }
}

static void *xalloc(size_t n) {
    size_t sz = (n * sizeof(float) + 63) / 64 * 64 + 64;
    float *p = aligned_alloc(64, sz);
    if (p) memset(p, 0, sz);
    return p;
}

static int sample_one(const float *lg, int Q, float inv_t, int greedy, double u) {
    float m = lg[0];
    int best = 0;
    for (int i = 1; i < Q; i++)
        if (lg[i] > m) { m = lg[i]; best = i; }
    if (greedy) return best;
    float p[Q];
    int i = 0;
    for (; i + 8 <= Q; i += 8) st(p + i, vexp((ld(lg + i) - m) * inv_t));
    for (; i < Q; i++) p[i] = expf((lg[i] - m) * inv_t);
    double cum[Q], c = 0.0;
    for (i = 0; i < Q; i++) { c += (double)p[i]; cum[i] = c; }
    double target = u * c;
    for (i = 0; i < Q; i++)
        if (cum[i] > target) return i;
    return Q - 1;
}

#define WG_TEMPLATE 1
#define WT float
#define SUF f32
#define LOADW(p) ld(p)
#include __FILE__
#undef WT
#undef SUF
#undef LOADW
#define WT uint16_t
#define SUF f16
#define LOADW(p) ldh(p)
#include __FILE__
#undef WT
#undef SUF
#undef LOADW

static void *thread1_f32(void *arg) { worker_f32((shared_t *)arg, 1); return NULL; }
static void *thread1_f16(void *arg) { worker_f16((shared_t *)arg, 1); return NULL; }

/* also findable in the file itself, so a stale library is recognised without loading it */
__attribute__((used)) static const char wg_id_tag[] = "WGBUILDID:" WG_BUILD_ID ";";
const char *wg_build_id(void) { return wg_id_tag + 10; }

/* bit 0: AVX2+FMA kernels, bit 1: hardware fp16 conversion (F16C). */
int wg_caps(void) {
    int c = 0;
#if defined(__AVX2__) && defined(__FMA__)
    c |= 1;
#endif
#if defined(__F16C__)
    c |= 2;
#endif
    return c;
}

int wg_sizeof_model(void) { return (int)sizeof(wg_model); }
int wg_sizeof_job(void) { return (int)sizeof(wg_job); }

/* Run j->nsteps samples for j->nact streams. Returns 0, or -1 (bad shapes), -2 (out of memory). */
int wg_run(const wg_model *m, const wg_job *j) {
    if (m->R % 8 || m->G % 16 || m->S % 8 || m->H % 8 || m->Q % 8 || m->L < 1 || j->nact < 1) return -1;
    if (j->nsteps <= 0) return 0;
    int nb = j->nact;
    shared_t sh;
    memset(&sh, 0, sizeof sh);
    sh.m = m;
    sh.j = j;
    sh.nthr = j->nthreads >= 2 ? 2 : 1;
    sh.solo_step = -1;
    sh.r = xalloc((size_t)4 * nb * m->R);
    sh.skp = xalloc((size_t)2 * nb * m->S);
    sh.a = xalloc((size_t)nb * m->H);
    sh.logits = xalloc((size_t)nb * m->Q);
    int rc = 0;
    if (!sh.r || !sh.skp || !sh.a || !sh.logits) rc = -2;
    pthread_t th;
    int started = 0;
    if (!rc && sh.nthr == 2) {
        started = pthread_create(&th, NULL, m->fp16 ? thread1_f16 : thread1_f32, &sh) == 0;
        if (!started) sh.nthr = 1;
    }
    if (!rc) {
        if (m->fp16) worker_f16(&sh, 0);
        else worker_f32(&sh, 0);
    }
    if (started) pthread_join(th, NULL);
    if (sh.err) rc = sh.err;
    ((wg_job *)j)->solo_step = sh.solo_step;
    free(sh.r);
    free(sh.skp);
    free(sh.a);
    free(sh.logits);
    return rc;
}

#else /* ------------------------------------------------------------------ WG_TEMPLATE */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUF)

/* Block of MT tiles (8 rows each) x NB streams, k in [k0, k0 + kn).  mode 0: y = acc, 1: y = relu(acc),
 * 2: gate: tiles (2i, 2i+1) -> 8 outputs tanh * sigmoid at y + 8 * (tile / 2). */
#define DEF_BLK(MT, NB)                                                                                  \
    static void FN(blk_##MT##_##NB)(const WT *W, long ts, int t, int k0, int kn, const float *const *x,  \
                                    const float *const *init, float *const *y, int mode) {               \
        v8 acc[MT * NB];                                                                                 \
        _Pragma("GCC unroll 16") for (int m = 0; m < MT; m++)                                            \
            _Pragma("GCC unroll 16") for (int b = 0; b < NB; b++)                                        \
                acc[m * NB + b] = init ? ld(init[b] + 8 * (t + m)) : (v8){0};                            \
        const float *xp[NB];                                                                             \
        _Pragma("GCC unroll 16") for (int b = 0; b < NB; b++) xp[b] = x[b] + k0;                         \
        const WT *w = W + (long)t * ts + (long)k0 * 8;                                                   \
        for (int k = 0; k < kn; k++, w += 8) {                                                           \
            v8 xv[NB];                                                                                   \
            _Pragma("GCC unroll 16") for (int b = 0; b < NB; b++) xv[b] = bc(xp[b][k]);                  \
            _Pragma("GCC unroll 16") for (int m = 0; m < MT; m++) {                                      \
                v8 wv = LOADW(w + m * ts);                                                               \
                _Pragma("GCC unroll 16") for (int b = 0; b < NB; b++) acc[m * NB + b] += wv * xv[b];     \
            }                                                                                            \
        }                                                                                                \
        if (mode == 2) {                                                                                 \
            _Pragma("GCC unroll 16") for (int m = 0; m + 1 < MT; m += 2)                                 \
                _Pragma("GCC unroll 16") for (int b = 0; b < NB; b++)                                    \
                    st(y[b] + 4 * (t + m), vgate(acc[m * NB + b], acc[(m + 1) * NB + b]));               \
        } else {                                                                                         \
            _Pragma("GCC unroll 16") for (int m = 0; m < MT; m++)                                        \
                _Pragma("GCC unroll 16") for (int b = 0; b < NB; b++)                                    \
                    st(y[b] + 8 * (t + m), mode ? vmax0(acc[m * NB + b]) : acc[m * NB + b]);             \
        }                                                                                                \
    }

DEF_BLK(8, 1)
DEF_BLK(4, 1)
DEF_BLK(2, 1)
DEF_BLK(1, 1)
DEF_BLK(4, 2)
DEF_BLK(2, 2)
DEF_BLK(1, 2)
DEF_BLK(2, 3)
DEF_BLK(1, 3)
DEF_BLK(2, 4)
DEF_BLK(1, 4)

/* y[b] = f(init[b] + W[tiles t0..t1) x[b][k0..k1)) for nb streams.  W is [tiles][K][8].  In gate mode
 * t0 and t1 are even.  init may be NULL (zero) and may alias y. */
static void FN(gemv)(const WT *W, int K, int t0, int t1, int k0, int k1, const float *const *x, int nb,
                     const float *const *init, float *const *y, int mode) {
    long ts = (long)K * 8;
    int kn = k1 - k0;
    int t = t0;
    while (t < t1) {
        int left = t1 - t;
        int mt = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        if (nb > 1 && mt > 4) mt = 4;
        if (nb > 2 && mt > 2) mt = 2; /* every stream chunk below must handle exactly mt tiles */
        for (int b = 0; b < nb;) {
            int n = nb - b >= 4 ? 4 : nb - b;
            const float *const *xb = x + b;
            const float *const *ib = init ? init + b : NULL;
            float *const *yb = y + b;
            if (n == 1) {
                if (mt == 8) FN(blk_8_1)(W, ts, t, k0, kn, xb, ib, yb, mode);
                else if (mt == 4) FN(blk_4_1)(W, ts, t, k0, kn, xb, ib, yb, mode);
                else if (mt == 2) FN(blk_2_1)(W, ts, t, k0, kn, xb, ib, yb, mode);
                else FN(blk_1_1)(W, ts, t, k0, kn, xb, ib, yb, mode);
            } else if (n == 2) {
                if (mt == 4) FN(blk_4_2)(W, ts, t, k0, kn, xb, ib, yb, mode);
                else if (mt == 2) FN(blk_2_2)(W, ts, t, k0, kn, xb, ib, yb, mode);
                else FN(blk_1_2)(W, ts, t, k0, kn, xb, ib, yb, mode);
            } else if (n == 3) {
                if (mt == 2) FN(blk_2_3)(W, ts, t, k0, kn, xb, ib, yb, mode);
                else FN(blk_1_3)(W, ts, t, k0, kn, xb, ib, yb, mode);
            } else {
                if (mt == 2) FN(blk_2_4)(W, ts, t, k0, kn, xb, ib, yb, mode);
                else FN(blk_1_4)(W, ts, t, k0, kn, xb, ib, yb, mode);
            }
            b += n;
        }
        t += mt;
    }
}

static void FN(worker)(shared_t *sh, int tid) {
    const wg_model *m = sh->m;
    const wg_job *j = sh->j;
    const int L = m->L, R = m->R, G = m->G, G2 = m->G / 2, S = m->S, H = m->H, Q = m->Q;
    const int nb = j->nact, ns = j->nsteps;
    const WT *wd = (const WT *)m->wd, *wr = (const WT *)m->wr, *ws = (const WT *)m->ws;
    const WT *wh1 = (const WT *)m->wh1, *wh2 = (const WT *)m->wh2;
    const long wd_l = (long)G * 2 * R, wr_l = (long)R * G2, ws_l = (long)S * G2;
    int nthr = sh->nthr;
    int p_lo = nthr == 2 ? tid : 0, p_hi = nthr == 2 ? tid + 1 : 2;
    uint64_t waited = 0, win_start = ticks();
    const int P = G2 / 8;
    const int pp[3] = {0, P / 2, P};                     /* gate tile pairs of each part */
    const int th[3] = {0, H / 16, H / 8};                /* head1 tiles of each part */
    const int tq[3] = {0, Q / 16, Q / 8};                /* head2 tiles of each part */
    long gen = 0;
    /* thread 0 times its waits for thread 1: a duo step costs w / (1 - waiting fraction), a solo one
     * 2w; past 40% of the time spent waiting (every 64 steps), thread 0 carries on alone. */
#define BARRIER                                                  \
    do {                                                         \
        if (tid == 0 && nthr == 2) {                             \
            uint64_t t0_ = ticks();                              \
            barrier(sh, tid, &gen, nthr);                        \
            waited += ticks() - t0_;                             \
        } else                                                   \
            barrier(sh, tid, &gen, nthr);                        \
    } while (0)

    float *x = xalloc((size_t)nb * R), *xn = xalloc((size_t)nb * R), *xc = xalloc((size_t)nb * 2 * R);
    float *z = xalloc((size_t)nb * G2), *sv = xalloc((size_t)nb * S);
    int32_t *prev = malloc(sizeof(int32_t) * (size_t)nb);
    int64_t *t0 = malloc(sizeof(int64_t) * (size_t)nb);
    int64_t *qoff = malloc(sizeof(int64_t) * (size_t)L);
    const float **pp_x = malloc(sizeof(float *) * (size_t)nb * 8);
    float **pp_y = malloc(sizeof(float *) * (size_t)nb * 8);
    int ok = x && xn && xc && z && sv && prev && t0 && qoff && pp_x && pp_y;
    if (!ok) sh->err = -2;
    BARRIER; /* both threads must reach every barrier: agree on failure first */
    if (sh->err) {
        free(x); free(xn); free(xc); free(z); free(sv); free(prev); free(t0); free(qoff);
        free(pp_x); free(pp_y);
        return;
    }
    /* pointer tables */
    const float **xcp = pp_x, **zp = pp_x + nb, **svp = pp_x + 2 * nb, **ap = pp_x + 3 * nb;
    const float **condp = pp_x + 4 * nb, **skin0 = pp_x + 5 * nb, **skin1 = pp_x + 6 * nb;
    const float **bh1p = pp_x + 7 * nb;
    float **zo = pp_y, **sk0 = pp_y + nb, **sk1 = pp_y + 2 * nb, **r00 = pp_y + 3 * nb;
    float **r01 = pp_y + 4 * nb, **r10 = pp_y + 5 * nb, **r11 = pp_y + 6 * nb, **ao = pp_y + 7 * nb;
    float *lgo[nb];
    const float *bh2p[nb];
    for (int b = 0; b < nb; b++) {
        xcp[b] = xc + (size_t)b * 2 * R;
        zp[b] = zo[b] = z + (size_t)b * G2;
        svp[b] = sv + (size_t)b * S;
        ap[b] = ao[b] = sh->a + (size_t)b * H;
        skin0[b] = sk0[b] = sh->skp + (size_t)b * S;
        skin1[b] = sk1[b] = sh->skp + (size_t)(nb + b) * S;
        r00[b] = sh->r + (size_t)(0 * nb + b) * R;
        r01[b] = sh->r + (size_t)(1 * nb + b) * R;
        r10[b] = sh->r + (size_t)(2 * nb + b) * R;
        r11[b] = sh->r + (size_t)(3 * nb + b) * R;
        bh1p[b] = m->bh1 - 0; /* same init row for every stream */
        bh2p[b] = m->bh2;
        lgo[b] = sh->logits + (size_t)b * Q;
        prev[b] = j->prev[j->idx[b]];
        t0[b] = j->tpos[j->idx[b]];
    }
    {
        int64_t o = 0;
        for (int l = 0; l < L; l++) { qoff[l] = o; o += (int64_t)m->dil[l] * R; }
    }
    float *const *skout[2] = {sk0, sk1};
    const float *const *skin[2] = {skin0, skin1};
    float *const *rout[2][2] = {{r00, r01}, {r10, r11}};

    for (int s = 0; s < ns; s++) {
        for (int b = 0; b < nb; b++) {
            int64_t t = t0[b] + s;
            condp[b] = j->cond + (int64_t)j->cidx[b] * j->cbs + (t - j->cbase) / j->cdiv * j->cts;
            memcpy(x + (size_t)b * R, m->embed + (size_t)prev[b] * R, sizeof(float) * R);
        }
        for (int l = 0; l < L; l++) {
            const int64_t dm = m->dil[l] - 1;
            for (int b = 0; b < nb; b++) {
                const float *q = j->queues + (int64_t)j->idx[b] * j->qstride + qoff[l] + ((t0[b] + s) & dm) * R;
                memcpy(xc + (size_t)b * 2 * R, q, sizeof(float) * R);
                memcpy(xc + (size_t)b * 2 * R + R, x + (size_t)b * R, sizeof(float) * R);
            }
            const float *cl[nb];
            for (int b = 0; b < nb; b++) cl[b] = condp[b] + (size_t)l * G;
            for (int part = p_lo; part < p_hi; part++) {
                if (pp[part] == pp[part + 1] && l > 0) continue;
                FN(gemv)(wd + l * wd_l, 2 * R, 2 * pp[part], 2 * pp[part + 1], 0, 2 * R, xcp, nb, cl, zo, 2);
                FN(gemv)(ws + l * ws_l, G2, 0, S / 8, 8 * pp[part], 8 * pp[part + 1], zp, nb,
                         l == 0 ? NULL : skin[part], skout[part], 0);
                if (l < L - 1)
                    FN(gemv)(wr + l * wr_l, G2, 0, R / 8, 8 * pp[part], 8 * pp[part + 1], zp, nb, NULL,
                             rout[l & 1][part], 0);
            }
            BARRIER;
            if (tid == 0)
                for (int b = 0; b < nb; b++) {
                    float *q = j->queues + (int64_t)j->idx[b] * j->qstride + qoff[l] + ((t0[b] + s) & dm) * R;
                    memcpy(q, x + (size_t)b * R, sizeof(float) * R);
                }
            if (l < L - 1) {
                const float *brl = m->br + (size_t)l * R;
                for (int b = 0; b < nb; b++) {
                    const float *xa = x + (size_t)b * R, *ra = rout[l & 1][0][b], *rb = rout[l & 1][1][b];
                    float *xo = xn + (size_t)b * R;
                    for (int i = 0; i < R; i += 8)
                        st(xo + i, ld(xa + i) + (ld(ra + i) + ld(rb + i)) + ld(brl + i));
                }
                float *tmp = x; x = xn; xn = tmp;
            }
        }
        for (int b = 0; b < nb; b++)
            for (int i = 0; i < S; i += 8)
                st(sv + (size_t)b * S + i, vmax0(ld(skin0[b] + i) + ld(skin1[b] + i) + ld(m->bs + i)));
        FN(gemv)(wh1, S, th[p_lo], th[p_hi], 0, S, svp, nb, bh1p, ao, 1);
        BARRIER;
        FN(gemv)(wh2, H, tq[p_lo], tq[p_hi], 0, H, ap, nb, bh2p, lgo, 0);
        if (tid == 0 && nthr == 2 && (s & 63) == 63) {
            uint64_t now = ticks();
            if (waited * 5 > (now - win_start) * 2) sh->solo = 1; /* waited > 40% */
            waited = 0;
            win_start = now;
        }
        BARRIER;
        int going_solo = nthr == 2 && sh->solo;
        if (going_solo && tid == 1) break; /* thread 0 samples and carries on alone */
        for (int b = 0; b < nb; b++) {
            int v;
            if (j->forced) v = j->forced[(size_t)b * ns + s];
            else v = sample_one(lgo[b], Q, j->inv_temp, j->greedy, j->unif ? j->unif[(size_t)b * ns + s] : 0.0);
            prev[b] = v;
            if (tid == 0) {
                j->out[(size_t)b * ns + s] = v;
                if (j->logits) memcpy(j->logits + ((size_t)b * ns + s) * Q, lgo[b], sizeof(float) * Q);
            }
        }
        if (going_solo) {
            nthr = 1;
            p_lo = 0;
            p_hi = 2;
            sh->solo_step = s + 1;
        }
    }
    if (tid == 0)
        for (int b = 0; b < nb; b++) {
            j->prev[j->idx[b]] = prev[b];
            j->tpos[j->idx[b]] = t0[b] + ns;
        }
    free(x); free(xn); free(xc); free(z); free(sv); free(prev); free(t0); free(qoff);
    free(pp_x); free(pp_y);
}

#undef CAT_
#undef CAT
#undef FN
#undef DEF_BLK
#endif
