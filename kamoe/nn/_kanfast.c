/* Native kernels for KANLinear on a uniform knot grid (CPU, float32 and float64).
 *
 * features: the layer's feature matrix, one block of 1 + nb values per (sample s, input i):
 *     [act(x_si), B_0(x_si), .., B_{nb-1}(x_si)]
 * The order-K B-splines of a uniform grid are shifted copies of the centred cardinal B-spline
 * (de Boor, "A Practical Guide to Splines", ch. IX):
 *     B_m(x) = N_K(u - m - (K+1)/2),   u = (x - t_0) / h,
 *     N_K(a) = sum_{j < (K+1)/2} (-1)^j C(K+1, j) / K! * ((K+1)/2 - j - |a|)_+^K,
 * so every block is computed densely, with no cell index, gather or scatter: one 32-byte vector
 * of consecutive splines at a time. features_backward: d loss/d x from d loss/d features,
 * through the splines and the base activation. It needs only the K + 1 splines live in x's knot
 * interval: their slopes are degree K-1 polynomials of the position inside the interval, with
 * coefficients `slopes` (K, K+1) from kan.py's _slope_matrix (row p: the f^p coefficient of
 * each live spline's slope), evaluated for a run of inputs at once, then dotted with
 * the matching K + 1 feature gradients (measured 30% faster than the dense form, and the
 * polynomials 35% faster than differentiating the closed form above).
 * stack_weights / weight_grads: the layer's stacked edge weights [w_base, w_spline * scaler]
 * and the parameter gradients from the stacked weights' gradient, one pass each.
 *
 * Base activations: NONE (column 0 stays 0), IDENTITY, RELU and SILU are applied here, a row
 * at a time so that they vectorise too; EXTERNAL takes act(x) precomputed by torch in `aux` and
 * hands its column's gradient back in `gbase` for torch to differentiate.
 *
 * kamoe/nn/kan.py checks devices, dtypes, contiguity and shapes before it passes raw data
 * pointers here: these functions trust what they are given. Orders K = 1..5 are compiled;
 * other orders use the layer's torch path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif

#ifdef _OPENMP
#define PARALLEL_FOR _Pragma("omp parallel for num_threads(threads) schedule(static) if(work > 16384)")
#define SIMD_SUM(acc) _Pragma("omp simd reduction(+:acc)")
#else
#define PARALLEL_FOR
#define SIMD_SUM(acc)
#endif

enum { ACT_NONE = 0, ACT_EXTERNAL = 1, ACT_IDENTITY = 2, ACT_RELU = 3, ACT_SILU = 4 };
enum { CHUNK = 256 }; /* (sample, input) pairs per tile: activation pass, then splines */

/* exp(x) in float without branches or tables, so that loops calling it vectorise: Cody-Waite
 * range reduction x = n ln2 + r and Cephes' degree-5 minimax polynomial for e^r (coefficients
 * from Cephes expf.c, S. L. Moshier); relative error about 2e-7 on [-80, 80]. The clamp keeps
 * results and the quotients built from them (x / (1 + e^80)) clear of subnormal floats, which
 * cost a microcode assist per lane: a clamp at -87 made the whole SiLU pass 20x slower. */
static inline __attribute__((always_inline)) float exp_float(float x) {
    x = x < 80.0f ? x : 80.0f;
    x = x > -80.0f ? x : -80.0f;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const float t = x * 1.44269504088896341f + shifter;
    const float n = t - shifter;
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

static inline __attribute__((always_inline)) double exp_double(double x) { return exp(x); }

/* (-1)^j C(K+1, j) / K! for j < (K+1)/2, per order K. */
static const double COEF[6][3] = {
    {0, 0, 0},
    {1.0, 0, 0},
    {1.0 / 2, -3.0 / 2, 0},
    {1.0 / 6, -4.0 / 6, 0},
    {1.0 / 24, -5.0 / 24, 10.0 / 24},
    {1.0 / 120, -6.0 / 120, 15.0 / 120},
};

/* 32-byte vectors (GCC/Clang vector extensions): the dense spline pass computes one vector of
 * consecutive splines per (sample, input) pair. MASK_T is the matching integer vector, for the
 * bit tricks |a| = a & 0x7f..f and max(z, 0) = z & (z > 0). */
typedef float VEC_float __attribute__((vector_size(32)));
typedef int32_t MASK_float __attribute__((vector_size(32)));
typedef double VEC_double __attribute__((vector_size(32)));
typedef int64_t MASK_double __attribute__((vector_size(32)));
enum { LANES_float = 8, LANES_double = 4 };

/* Per-dtype helpers: the activation passes, and the weight stacking / weight-gradient
 * kernels. */
#define DEFINE_HELPERS(T)                                                                   \
/* act(x_i) for a run of inputs into out: one loop per activation, in a function of its own   \
 * so that the compiler's cost model sees each loop alone and vectorises it. */              \
MULTIVERSION __attribute__((noinline)) static void activation_##T(                          \
        int act, const T *restrict x, const T *restrict aux, int64_t len, T *restrict out) { \
    switch (act) {                                                                           \
    case ACT_EXTERNAL: for (int64_t i = 0; i < len; ++i) out[i] = aux[i]; break;             \
    case ACT_IDENTITY: for (int64_t i = 0; i < len; ++i) out[i] = x[i]; break;               \
    case ACT_RELU: for (int64_t i = 0; i < len; ++i) out[i] = x[i] > 0 ? x[i] : (T)0; break; \
    case ACT_SILU:                                                                           \
        for (int64_t i = 0; i < len; ++i) out[i] = x[i] / ((T)1 + exp_##T(-x[i]));           \
        break;                                                                               \
    default: for (int64_t i = 0; i < len; ++i) out[i] = 0;                                   \
    }                                                                                        \
}                                                                                            \
/* act'(x_i) for a run of inputs (0 for NONE and EXTERNAL: torch differentiates an external   \
 * activation). Contiguous reads only: strided loads become gathers, which are microcoded and  \
 * slow on many CPUs. */                                                                     \
MULTIVERSION __attribute__((noinline)) static void activation_slope_##T(                    \
        int act, const T *restrict x, int64_t len, T *restrict out) {                        \
    switch (act) {                                                                           \
    case ACT_IDENTITY: for (int64_t i = 0; i < len; ++i) out[i] = 1; break;                  \
    case ACT_RELU: for (int64_t i = 0; i < len; ++i) out[i] = x[i] > 0 ? (T)1 : (T)0; break; \
    case ACT_SILU:                                                                           \
        for (int64_t i = 0; i < len; ++i) {                                                  \
            const T sig = (T)1 / ((T)1 + exp_##T(-x[i]));                                    \
            out[i] = sig * ((T)1 + x[i] * ((T)1 - sig));                                     \
        }                                                                                    \
        break;                                                                               \
    default: for (int64_t i = 0; i < len; ++i) out[i] = 0;                                   \
    }                                                                                        \
}                                                                                            \
MULTIVERSION static void stack_weights_##T(                                                  \
        const T *restrict bw, const T *restrict sw, const T *restrict sc, int64_t edges,      \
        int nb, T *restrict out, int threads) {                                               \
    const int64_t work = edges * (1 + nb);                                                    \
    (void)work; (void)threads;                                                                \
    PARALLEL_FOR                                                                              \
    for (int64_t e = 0; e < edges; ++e) {                                                     \
        T *restrict row = out + e * (1 + nb);                                                 \
        const T s = sc ? sc[e] : (T)1;                                                        \
        row[0] = bw[e];                                                                       \
        for (int m = 0; m < nb; ++m) row[1 + m] = sw[e * nb + m] * s;                         \
    }                                                                                         \
}                                                                                             \
MULTIVERSION static void weight_grads_##T(                                                   \
        const T *restrict gw, const T *restrict sw, const T *restrict sc, int64_t edges,      \
        int nb, T *restrict g_bw, T *restrict g_sw, T *restrict g_sc, int threads) {          \
    const int64_t work = edges * (1 + nb);                                                    \
    (void)work; (void)threads;                                                                \
    PARALLEL_FOR                                                                              \
    for (int64_t e = 0; e < edges; ++e) {                                                     \
        const T *restrict row = gw + e * (1 + nb);                                            \
        if (g_bw) g_bw[e] = row[0];                                                           \
        if (g_sw) {                                                                           \
            const T s = sc ? sc[e] : (T)1;                                                    \
            for (int m = 0; m < nb; ++m) g_sw[e * nb + m] = row[1 + m] * s;                   \
        }                                                                                     \
        if (g_sc) {                                                                           \
            T acc = 0;                                                                        \
            SIMD_SUM(acc)                                                                     \
            for (int m = 0; m < nb; ++m) acc += row[1 + m] * sw[e * nb + m];                  \
            g_sc[e] = acc;                                                                    \
        }                                                                                     \
    }                                                                                         \
}

DEFINE_HELPERS(float)
DEFINE_HELPERS(double)

/* The kernels walk the (sample, input) pairs in tiles of at most CHUNK consecutive pairs:
 * several whole rows when a row has at most CHUNK inputs, else one CHUNK-long part of a row.
 * Each tile is contiguous in x, so its activation pass is one vectorised loop. */
static inline int64_t tile_count(int64_t n, int64_t in) {
    return in <= CHUNK ? (n + CHUNK / in - 1) / (CHUNK / in) : n * ((in + CHUNK - 1) / CHUNK);
}

static inline void tile_bounds(int64_t t, int64_t n, int64_t in, int64_t *s0, int64_t *s1,
                               int64_t *i0, int64_t *i1) {
    if (in <= CHUNK) {
        const int64_t rows = CHUNK / in;
        *s0 = t * rows;
        *s1 = *s0 + rows < n ? *s0 + rows : n;
        *i0 = 0;
        *i1 = in;
    } else {
        const int64_t parts = (in + CHUNK - 1) / CHUNK;
        *s0 = t / parts;
        *s1 = *s0 + 1;
        *i0 = (t % parts) * CHUNK;
        *i1 = *i0 + CHUNK < in ? *i0 + CHUNK : in;
    }
}

/* Each (sample, input) pair of a tile as a position u on the grid (in knot steps from t_0,
 * minus `offset`): contiguous in x, so the loop vectorises. */
#define DEFINE_POSITIONS(T)                                                                   \
static inline __attribute__((always_inline)) void positions_##T(                             \
        const T *restrict x, const T *restrict scale, const T *restrict shift, int64_t in,    \
        int64_t s0, int64_t s1, int64_t i0, int64_t i1, T offset, T *restrict u) {            \
    for (int64_t s = s0, q = 0; s < s1; ++s)                                                  \
        for (int64_t i = i0; i < i1; ++i, ++q)                                                \
            u[q] = x[s * in + i] * scale[i] + shift[i] - offset;                              \
}
DEFINE_POSITIONS(float)
DEFINE_POSITIONS(double)

/* One function per (dtype, order), so that K is a constant inside the vectorised loops. */
#define DEFINE_KERNELS(T, K)                                                                  \
MULTIVERSION static void features_##T##_##K(                                                 \
        const T *restrict x, const T *restrict aux, const T *restrict scale,                  \
        const T *restrict shift, int64_t n, int64_t in, int nb, int act, T *restrict out,     \
        int threads) {                                                                        \
    const int64_t w = 1 + nb, work = n * in * w, tiles = tile_count(n, in);                   \
    (void)work; (void)threads;                                                                \
    enum { L = LANES_##T };                                                                   \
    VEC_##T lane, sign;                                                                       \
    for (int l = 0; l < L; ++l) {                                                             \
        lane[l] = (T)l;                                                                       \
        sign[l] = -(T)0; /* only the sign bit set */                                          \
    }                                                                                         \
    const MASK_##T magnitude = ~(MASK_##T)sign;                                               \
    PARALLEL_FOR                                                                              \
    for (int64_t t = 0; t < tiles; ++t) {                                                     \
        T base[CHUNK], pos[CHUNK];                                                            \
        int64_t s0, s1, i0, i1;                                                               \
        tile_bounds(t, n, in, &s0, &s1, &i0, &i1);                                            \
        const int64_t k0 = s0 * in + i0, len = (s1 - s0) * (i1 - i0);                         \
        activation_##T(act, x + k0, aux ? aux + k0 : NULL, len, base);                        \
        positions_##T(x, scale, shift, in, s0, s1, i0, i1, (T)(K + 1) * (T)0.5, pos);         \
        T *restrict blk = out + k0 * w;                                                       \
        for (int64_t q = 0; q < len; ++q, blk += w) {                                         \
            blk[0] = base[q];                                                                 \
            /* splines m0 .. m0 + L - 1 at once: N_K(|u - m|), a sum of truncated powers */   \
            for (int m0 = 0; m0 < nb; m0 += L) {                                              \
                const VEC_##T a = (VEC_##T)((MASK_##T)((pos[q] - (T)m0) - lane) & magnitude); \
                VEC_##T v = {0};                                                              \
                for (int j = 0; 2 * j < K + 1; ++j) {                                         \
                    VEC_##T z = ((T)(K + 1) * (T)0.5 - (T)j) - a;                             \
                    z = (VEC_##T)((MASK_##T)z & (z > 0));                                     \
                    VEC_##T p = z;                                                            \
                    for (int e = 1; e < K; ++e) p *= z;                                       \
                    v += (T)COEF[K][j] * p;                                                   \
                }                                                                             \
                if (m0 + L <= nb) {                                                           \
                    memcpy(blk + 1 + m0, &v, sizeof v);                                       \
                } else {                                                                      \
                    for (int l = 0; l < nb - m0; ++l) blk[1 + m0 + l] = v[l];                 \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
MULTIVERSION static void backward_##T##_##K(                                                 \
        const T *restrict x, const T *restrict g, const T *restrict scale,                    \
        const T *restrict shift, const T *restrict slopes, int64_t n, int64_t in, int nb,     \
        int act, T *restrict gx, T *restrict gbase, int threads) {                            \
    const int64_t w = 1 + nb, work = n * in * w, tiles = tile_count(n, in);                   \
    (void)work; (void)threads;                                                                \
    PARALLEL_FOR                                                                              \
    for (int64_t t = 0; t < tiles; ++t) {                                                     \
        T dact[CHUNK], pos[CHUNK], step[CHUNK], slope[K + 1][CHUNK];                          \
        int cell[CHUNK];                                                                      \
        int64_t s0, s1, i0, i1;                                                               \
        tile_bounds(t, n, in, &s0, &s1, &i0, &i1);                                            \
        const int64_t k0 = s0 * in + i0, len = (s1 - s0) * (i1 - i0);                         \
        activation_slope_##T(act, x + k0, len, dact);                                         \
        positions_##T(x, scale, shift, in, s0, s1, i0, i1, (T)0, pos);                        \
        for (int64_t s = s0, q = 0; s < s1; ++s)                                              \
            for (int64_t i = i0; i < i1; ++i, ++q) step[q] = scale[i];                        \
        /* vectorised over pairs: knot interval c and the slopes (times 1/h) of its K + 1     \
         * live splines B_{c-K} .. B_c, from the local polynomials */                         \
        for (int64_t q = 0; q < len; ++q) {                                                   \
            T u = pos[q];                                                                     \
            u = u > (T)-1 ? u : (T)-1;  /* also NaN: no live spline at -1 or beyond */        \
            u = u < (T)(nb + K) ? u : (T)(nb + K);                                            \
            const int c = (int)(u + (T)1) - 1;  /* floor(u) for u >= -1 */                    \
            const T f = u - (T)c;                                                             \
            cell[q] = c;                                                                      \
            for (int r = 0; r <= K; ++r) {                                                    \
                T v = slopes[(K - 1) * (K + 1) + r];                                          \
                for (int p = K - 2; p >= 0; --p) v = v * f + slopes[p * (K + 1) + r];         \
                slope[r][q] = v * step[q];                                                    \
            }                                                                                 \
        }                                                                                     \
        for (int64_t q = 0; q < len; ++q) {                                                   \
            const T *restrict blk = g + (k0 + q) * w;                                         \
            T acc = blk[0] * dact[q];                                                         \
            for (int r = 0; r <= K; ++r) {                                                    \
                const int m = cell[q] - K + r;                                                \
                if ((unsigned)m < (unsigned)nb) acc += blk[1 + m] * slope[r][q];              \
            }                                                                                 \
            gx[k0 + q] = acc;                                                                 \
            if (gbase) gbase[k0 + q] = blk[0];                                                \
        }                                                                                     \
    }                                                                                         \
}

#define DEFINE_ORDERS(T) \
    DEFINE_KERNELS(T, 1) DEFINE_KERNELS(T, 2) DEFINE_KERNELS(T, 3) DEFINE_KERNELS(T, 4) \
    DEFINE_KERNELS(T, 5)
DEFINE_ORDERS(float)
DEFINE_ORDERS(double)

typedef void (*features_fn)(const void *, const void *, const void *, const void *, int64_t,
                            int64_t, int, int, void *, int);
typedef void (*backward_fn)(const void *, const void *, const void *, const void *,
                            const void *, int64_t, int64_t, int, int, void *, void *, int);
typedef void (*stack_fn)(const void *, const void *, const void *, int64_t, int, void *, int);
typedef void (*wgrad_fn)(const void *, const void *, const void *, int64_t, int, void *, void *,
                         void *, int);

#define BY_ORDER(prefix, T) \
    {NULL, (void *)prefix##_##T##_1, (void *)prefix##_##T##_2, (void *)prefix##_##T##_3, \
     (void *)prefix##_##T##_4, (void *)prefix##_##T##_5}
static void *const FEATURES[2][6] = {BY_ORDER(features, float), BY_ORDER(features, double)};
static void *const BACKWARD[2][6] = {BY_ORDER(backward, float), BY_ORDER(backward, double)};
static void *const STACK[2] = {(void *)stack_weights_float, (void *)stack_weights_double};
static void *const WGRAD[2] = {(void *)weight_grads_float, (void *)weight_grads_double};

/* Tensors arrive as data pointers (Python ints from tensor.data_ptr(); 0 means none). */
#define P(v) ((void *)(uintptr_t)(v))

static int check(int order, long long nb, int act) {
    if (order < 1 || order > 5 || nb < 1 || nb > INT32_MAX || act < ACT_NONE || act > ACT_SILU) {
        PyErr_SetString(PyExc_ValueError, "_kanfast: unsupported order, basis size or activation");
        return 0;
    }
    return 1;
}

static PyObject *py_features(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long x, aux, scale, shift, out;
    long long n, in, nb;
    int order, act, dbl, threads;
    if (!PyArg_ParseTuple(args, "KKKKKLLLiipi", &x, &aux, &scale, &shift, &out, &n, &in, &nb,
                          &order, &act, &dbl, &threads) || !check(order, nb, act))
        return NULL;
    features_fn fn = (features_fn)FEATURES[dbl][order];
    Py_BEGIN_ALLOW_THREADS
    fn(P(x), P(aux), P(scale), P(shift), n, in, (int)nb, act, P(out), threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_features_backward(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long x, g, scale, shift, slopes, gx, gbase;
    long long n, in, nb;
    int order, act, dbl, threads;
    if (!PyArg_ParseTuple(args, "KKKKKKKLLLiipi", &x, &g, &scale, &shift, &slopes, &gx, &gbase,
                          &n, &in, &nb, &order, &act, &dbl, &threads) || !check(order, nb, act))
        return NULL;
    backward_fn fn = (backward_fn)BACKWARD[dbl][order];
    Py_BEGIN_ALLOW_THREADS
    fn(P(x), P(g), P(scale), P(shift), P(slopes), n, in, (int)nb, act, P(gx), P(gbase),
       threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_stack_weights(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long bw, sw, sc, out;
    long long edges, nb;
    int dbl, threads;
    if (!PyArg_ParseTuple(args, "KKKKLLpi", &bw, &sw, &sc, &out, &edges, &nb, &dbl, &threads) ||
        !check(1, nb, ACT_NONE))
        return NULL;
    stack_fn fn = (stack_fn)STACK[dbl];
    Py_BEGIN_ALLOW_THREADS
    fn(P(bw), P(sw), P(sc), edges, (int)nb, P(out), threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_weight_grads(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long gw, sw, sc, g_bw, g_sw, g_sc;
    long long edges, nb;
    int dbl, threads;
    if (!PyArg_ParseTuple(args, "KKKKKKLLpi", &gw, &sw, &sc, &g_bw, &g_sw, &g_sc, &edges, &nb,
                          &dbl, &threads) || !check(1, nb, ACT_NONE))
        return NULL;
    wgrad_fn fn = (wgrad_fn)WGRAD[dbl];
    Py_BEGIN_ALLOW_THREADS
    fn(P(gw), P(sw), P(sc), edges, (int)nb, P(g_bw), P(g_sw), P(g_sc), threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef METHODS[] = {
    {"features", py_features, METH_VARARGS,
     "features(x, aux, scale, shift, out, n, in, nb, order, act, is_double, threads)"},
    {"features_backward", py_features_backward, METH_VARARGS,
     "features_backward(x, grad_features, scale, shift, slopes, grad_x, grad_base, n, in, nb, "
     "order, act, is_double, threads)"},
    {"stack_weights", py_stack_weights, METH_VARARGS,
     "stack_weights(base_weight, spline_weight, spline_scaler, out, edges, nb, is_double, "
     "threads)"},
    {"weight_grads", py_weight_grads, METH_VARARGS,
     "weight_grads(grad_stacked, spline_weight, spline_scaler, grad_base_weight, "
     "grad_spline_weight, grad_spline_scaler, edges, nb, is_double, threads)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_kanfast",
    .m_doc = "Native uniform-grid KANLinear kernels (see kamoe/nn/kan.py).",
    .m_size = -1,
    .m_methods = METHODS,
};

PyMODINIT_FUNC PyInit__kanfast(void) { return PyModule_Create(&MODULE); }
