/* Float32 rows times a quantised matrix: y[k, r] = sum_i W[r, i] x[k, i], W never dequantised.
 *
 * Built on first use by kernels.py (with the C compiler torch.compile already needs, -O3 -march=native -fopenmp)
 * and called through ctypes. GGUF blocks come as the fields gguf_layouts.py keeps, row-major [rows, blocks...]:
 * fp16 block scales `d` (and Q4_1's fp16 minimums `m`), the 4-bit values `qs` (16 bytes a block: byte k holds
 * value k in its low nibble and value 16 + k in its high one) or Q8_0's int8 values `q` (32 a block). The K-quants'
 * super-blocks of 256 hold eight sub-blocks of 32: Q4_K with a 6-bit scale and minimum each (unpacked at load
 * into bytes `sc`, `mins`) times fp16 `d`, `dmin`; Q6_K with an int8 scale per 16 values times fp16 `d` (their
 * bit layouts: gguf_layouts.py). Int8Linear's matrices (quantized.py) are int8 rows with one bfloat16 scale a row:
 * blocks of 32 without a scale of their own.
 *
 * Activations stay float32, so each y[r] equals the dequantise-then-multiply product up to the order of its sums
 * (llama.cpp rounds x to 8 bits and multiplies integers instead). A block's 32 products are summed in float32
 * lanes and scaled by d once; a minimum (Q4_1) or offset (Q4_0's -8) is taken out once per row as
 * sum_b m_b * (the sum of x over block b), the split gguf_layouts.matvec uses too.
 *
 * With AVX2 + FMA + F16C the blocks are unpacked in registers. One row of x (a decoding step) takes 4-bit rows of W
 * two at a time, so that each piece of x is loaded once for both; several rows of x (a prompt, a batch) take
 * each unpacked block to four of them at a time. The variants measured are in benchmarks/README.md. Without
 * AVX2 the plain loops below are what the compiler makes of them.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define TF_AVX2 1
#endif

#define ROWS_AT_ONCE 2

static float half_to_float(uint16_t h) {
#ifdef TF_AVX2
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        exp = 113;
        while (!(man & 1024)) {
            man <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((man & 1023) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

/* n fp16 values as float32 (for the scales: a broadcast from memory then costs no shuffle). */
static void halves_to_floats(float *out, const uint16_t *h, long n) {
    long i = 0;
#ifdef TF_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
    for (; i < n; i++) out[i] = half_to_float(h[i]);
}

/* sum_i h_i v_i over n fp16 values h. */
static float dot_halves(const uint16_t *h, const float *v, long n) {
    float total = 0;
    long i = 0;
#ifdef TF_AVX2
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))), _mm256_loadu_ps(v + i), acc);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    total = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
#endif
    for (; i < n; i++) total += half_to_float(h[i]) * v[i];
    return total;
}

/* The sum of x over each block of 32: the factor of a block's minimum or offset. */
static void block_sums(float *sums, const float *x, long blocks) {
    for (long b = 0; b < blocks; b++) {
        float s = 0;
        for (int j = 0; j < 32; j++) s += x[32 * b + j];
        sums[b] = s;
    }
}

#ifdef TF_AVX2
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* A block's 32 values as 4 x 8 float32 lanes, in the order of x. 4-bit values: each 8 bytes widen to 32-bit
 * lanes as they load, then the low nibbles are masked out and the high ones shifted down. */
static inline __attribute__((always_inline)) void unpack(__m256 *v, const uint8_t *block, int bytes) {
    if (bytes == 16) {
        __m256i first = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)block));
        __m256i second = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(block + 8)));
        __m256i nibble = _mm256_set1_epi32(15);
        v[0] = _mm256_cvtepi32_ps(_mm256_and_si256(first, nibble));
        v[1] = _mm256_cvtepi32_ps(_mm256_and_si256(second, nibble));
        v[2] = _mm256_cvtepi32_ps(_mm256_srli_epi32(first, 4));
        v[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(second, 4));
    } else {
        for (int j = 0; j < 4; j++)
            v[j] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(block + 8 * j))));
    }
}

/* sum_j v_j x_j over one block, as 8 float32 lanes. */
static inline __attribute__((always_inline)) __m256 dot(const __m256 *v, const float *x) {
    __m256 sum = _mm256_mul_ps(v[0], _mm256_loadu_ps(x));
    for (int j = 1; j < 4; j++) sum = _mm256_fmadd_ps(v[j], _mm256_loadu_ps(x + 8 * j), sum);
    return sum;
}
#else
/* A block's 32 values as floats, in the order of x. */
static inline void unpack(float *v, const uint8_t *block, int bytes) {
    for (int j = 0; j < 32; j++)
        v[j] = bytes == 16 ? (float)(j < 16 ? block[j] & 15 : block[j - 16] >> 4) : (float)(int8_t)block[j];
}

static inline float dot(const float *v, const float *x) {
    float sum = 0;
    for (int j = 0; j < 32; j++) sum += v[j] * x[j];
    return sum;
}
#endif

#ifdef TF_AVX2
#define VALUES __m256 v[4]
#define HALF_VALUES 2
#define ZERO _mm256_setzero_ps()
#define ADD(acc, sum) _mm256_add_ps(acc, sum)
#define SCALED_ADD(acc, scale, sum) _mm256_fmadd_ps(_mm256_broadcast_ss(&(scale)), sum, acc)
#define TOTAL(acc) hsum(acc)
typedef __m256 partial;
#else
#define VALUES float v[32]
#define HALF_VALUES 16
#define ZERO 0.0f
#define ADD(acc, sum) ((acc) + (sum))
#define SCALED_ADD(acc, scale, sum) ((acc) + (scale) * (sum))
#define TOTAL(acc) (acc)
typedef float partial;
#endif

/* One row of x against n <= ROWS_AT_ONCE rows of W (`bytes` bytes a block: 16 for 4-bit values, 32 for int8):
 * y[k] = sum_b d[k, b] * sum_j q[k, b, j] x[b, j], or without the d when d is NULL. */
static inline __attribute__((always_inline)) void rows_times_x(float *y, const uint16_t *d, const uint8_t *q, int bytes,
                                                               const float *x, long blocks, int n) {
    float scale[ROWS_AT_ONCE][blocks];
    partial acc[ROWS_AT_ONCE];
    for (int k = 0; k < n; k++) {
        if (d) halves_to_floats(scale[k], d + k * blocks, blocks);
        acc[k] = ZERO;
    }
    for (long b = 0; b < blocks; b++) {
        for (int k = 0; k < n; k++) {
            VALUES;
            unpack(v, q + bytes * (k * blocks + b), bytes);
            acc[k] = d ? SCALED_ADD(acc[k], scale[k][b], dot(v, x + 32 * b)) : ADD(acc[k], dot(v, x + 32 * b));
        }
    }
    for (int k = 0; k < n; k++) y[k] = TOTAL(acc[k]);
}

/* nx rows of x (`width` floats apart) against one row of W: y[k * y_stride] for each row k of x (d as above).
 * Each block is unpacked once for up to X_AT_ONCE rows of x. */
#define X_AT_ONCE 4
static inline __attribute__((always_inline)) void xs_group(float *y, long y_stride, const float *scale,
                                                           const uint8_t *q, int bytes, const float *x, long width,
                                                           long blocks, int n) {
    partial acc[X_AT_ONCE];
    for (int k = 0; k < n; k++) acc[k] = ZERO;
    for (long b = 0; b < blocks; b++) {
        VALUES;
        unpack(v, q + bytes * b, bytes);
        for (int k = 0; k < n; k++) {
            const float *xb = x + k * width + 32 * b;
            acc[k] = scale ? SCALED_ADD(acc[k], scale[b], dot(v, xb)) : ADD(acc[k], dot(v, xb));
        }
    }
    for (int k = 0; k < n; k++) y[k * y_stride] = TOTAL(acc[k]);
}

static inline __attribute__((always_inline)) void row_times_xs(float *y, long y_stride, const uint16_t *d,
                                                               const uint8_t *q, int bytes, const float *x,
                                                               long width, long nx, long blocks) {
    float scale[blocks];
    if (d) halves_to_floats(scale, d, blocks);
    const float *s = d ? scale : NULL;
    for (long k0 = 0; k0 < nx; k0 += X_AT_ONCE) {
        int n = nx - k0 < X_AT_ONCE ? (int)(nx - k0) : X_AT_ONCE;
        /* a literal count for whole groups, so that the compiler keeps their sums in registers (~20 % faster at
         * eight rows than a count known only when it runs, benchmarks/README.md) */
        if (n == X_AT_ONCE) xs_group(y + k0 * y_stride, y_stride, s, q, bytes, x + k0 * width, width, blocks, X_AT_ONCE);
        else xs_group(y + k0 * y_stride, y_stride, s, q, bytes, x + k0 * width, width, blocks, n);
    }
}

/* y [nx, rows] = x [nx, 32 * blocks] times W^T, rows of W split between the threads, plus
 * factor * sum_b term[r, b] * (the sum of x over block b) when a per-block term is given, times row_scale[r]
 * (bfloat16) when given. One row of x takes 4-bit rows two at a time and int8 ones one at a time (which measured
 * faster for them). Literal arguments let the compiler specialise each inlined call. */
static void multiply(float *y, const float *x, long nx, const uint16_t *d, const uint8_t *q, int bytes,
                     const uint16_t *term, float factor, const uint16_t *row_scale, long rows, long blocks,
                     int threads) {
    long width = 32 * blocks;
    float *sums = term ? malloc(sizeof(float) * nx * blocks) : NULL;
    for (long k = 0; term && k < nx; k++) block_sums(sums + k * blocks, x + k * width, blocks);
    int step = nx == 1 && bytes == 16 ? ROWS_AT_ONCE : 1;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long r = 0; r < rows; r += step) {
        int n = r + step <= rows ? step : 1;
        const uint8_t *rows_q = q + (long)bytes * r * blocks;
        if (!d && nx > 1) row_times_xs(y + r, rows, NULL, rows_q, 32, x, width, nx, blocks);
        else if (!d) rows_times_x(y + r, NULL, rows_q, 32, x, blocks, 1);
        else if (nx > 1 && bytes == 16) row_times_xs(y + r, rows, d + r * blocks, rows_q, 16, x, width, nx, blocks);
        else if (nx > 1) row_times_xs(y + r, rows, d + r * blocks, rows_q, 32, x, width, nx, blocks);
        else if (bytes == 32) rows_times_x(y + r, d + r * blocks, rows_q, 32, x, blocks, 1);
        else if (n == ROWS_AT_ONCE) rows_times_x(y + r, d + r * blocks, rows_q, 16, x, blocks, ROWS_AT_ONCE);
        else rows_times_x(y + r, d + r * blocks, rows_q, 16, x, blocks, 1);
        for (int i = 0; term && i < n; i++)
            for (long k = 0; k < nx; k++)
                y[k * rows + r + i] += factor * dot_halves(term + (r + i) * blocks, sums + k * blocks, blocks);
        for (int i = 0; row_scale && i < n; i++) {
            uint32_t bits = (uint32_t)row_scale[r + i] << 16; /* bfloat16: the top half of a float32 */
            float scale;
            memcpy(&scale, &bits, 4);
            for (long k = 0; k < nx; k++) y[k * rows + r + i] *= scale;
        }
    }
    free(sums);
}

void tf_q4_0(float *y, const float *x, long nx, const uint16_t *d, const uint8_t *q, long rows, long blocks,
             int threads) {
    multiply(y, x, nx, d, q, 16, d, -8, NULL, rows, blocks, threads);
}

void tf_q4_1(float *y, const float *x, long nx, const uint16_t *d, const uint16_t *m, const uint8_t *q, long rows,
             long blocks, int threads) {
    multiply(y, x, nx, d, q, 16, m, 1, NULL, rows, blocks, threads);
}

void tf_q8_0(float *y, const float *x, long nx, const uint16_t *d, const uint8_t *q, long rows, long blocks,
             int threads) {
    multiply(y, x, nx, d, q, 32, NULL, 0, NULL, rows, blocks, threads);
}

void tf_int8(float *y, const float *x, long nx, const uint16_t *row_scale, const uint8_t *q, long rows, long blocks,
             int threads) {
    multiply(y, x, nx, NULL, q, 32, NULL, 0, row_scale, rows, blocks, threads);
}

/* The K-quants, one row of W against nx rows of x (`width` floats apart), y[k * y_stride]: each sub-block of 32 is
 * unpacked once for up to X_AT_ONCE rows of x, with its scales (and Q4_K's minimum) made float32 first. */
#define Q4_K 12
#define Q6_K 14

/* Sub-block s (0-7) of a super-block as 4 x 8 values in the order of x. Q4_K: the low (even s) or high (odd s)
 * nibbles of run s / 2 of 32 bytes. Q6_K: in half h = s / 4, value 32a + t (a = s % 4) takes 4 bits from ql byte
 * 32 (a % 2) + t of the half's 64 (its high nibble when a >= 2) and 2 bits from qh byte t of its 32, minus 32. */
#ifdef TF_AVX2
static inline __attribute__((always_inline)) void unpack_k(__m256 *v, int kind, const uint8_t *ql, const uint8_t *qh,
                                                           int s) {
    for (int j = 0; j < 4; j++) {
        if (kind == Q4_K) {
            __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ql + 32 * (s / 2) + 8 * j)));
            bytes = s % 2 ? _mm256_srli_epi32(bytes, 4) : _mm256_and_si256(bytes, _mm256_set1_epi32(15));
            v[j] = _mm256_cvtepi32_ps(bytes);
        } else {
            int half = s / 4, a = s % 4;
            __m256i low = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(ql + 64 * half + 32 * (a % 2) + 8 * j)));
            __m256i high = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qh + 32 * half + 8 * j)));
            low = _mm256_and_si256(_mm256_srli_epi32(low, 4 * (a / 2)), _mm256_set1_epi32(15));
            high = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(high, 2 * a), _mm256_set1_epi32(3)), 4);
            v[j] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(low, high), _mm256_set1_epi32(32)));
        }
    }
}

/* sum_j v_j x_j over 16 values (two vectors), as 8 float32 lanes. */
static inline __attribute__((always_inline)) __m256 dot16(const __m256 *v, const float *x) {
    return _mm256_fmadd_ps(v[1], _mm256_loadu_ps(x + 8), _mm256_mul_ps(v[0], _mm256_loadu_ps(x)));
}
#else
static inline void unpack_k(float *v, int kind, const uint8_t *ql, const uint8_t *qh, int s) {
    for (int t = 0; t < 32; t++) {
        if (kind == Q4_K) {
            uint8_t byte = ql[32 * (s / 2) + t];
            v[t] = (float)(s % 2 ? byte >> 4 : byte & 15);
        } else {
            int half = s / 4, a = s % 4;
            int low = (ql[64 * half + 32 * (a % 2) + t] >> (4 * (a / 2))) & 15;
            int high = (qh[32 * half + t] >> (2 * a)) & 3;
            v[t] = (float)((low | high << 4) - 32);
        }
    }
}

static inline float dot16(const float *v, const float *x) {
    float sum = 0;
    for (int j = 0; j < 16; j++) sum += v[j] * x[j];
    return sum;
}
#endif

/* Q4_K: sub-block scale d * sc and minimum dmin * mins; Q6_K: a scale per 16 values, d * sc. */
/* n <= X_AT_ONCE rows of x against one row of K-quants, its scales (and Q4_K's minimums) already float32. */
static inline __attribute__((always_inline)) void k_group(float *y, long y_stride, int kind, const float *scale,
                                                          const float *minimum, const uint8_t *ql, const uint8_t *qh,
                                                          const float *x, long width, const float *sums, long blocks,
                                                          int n) {
    partial acc[X_AT_ONCE];
    for (int k = 0; k < n; k++) acc[k] = ZERO;
    for (long b = 0; b < blocks; b++) {
        long sb = b / 8;
        VALUES;
        unpack_k(v, kind, ql + 128 * sb, kind == Q4_K ? NULL : qh + 64 * sb, (int)(b % 8));
        for (int k = 0; k < n; k++) {
            const float *xb = x + k * width + 32 * b;
            if (kind == Q4_K) {
                acc[k] = SCALED_ADD(acc[k], scale[b], dot(v, xb));
            } else {
                acc[k] = SCALED_ADD(acc[k], scale[2 * b], dot16(v, xb));
                acc[k] = SCALED_ADD(acc[k], scale[2 * b + 1], dot16(v + HALF_VALUES, xb + 16));
            }
        }
    }
    for (int k = 0; k < n; k++) {
        float total = TOTAL(acc[k]);
        if (kind == Q4_K)
            for (long b = 0; b < blocks; b++) total -= minimum[b] * sums[k * blocks + b];
        y[k * y_stride] = total;
    }
}

static inline __attribute__((always_inline)) void k_row(float *y, long y_stride, int kind, const uint16_t *d,
                                                        const uint16_t *dmin, const uint8_t *sc, const uint8_t *mins,
                                                        const uint8_t *ql, const uint8_t *qh, const float *x,
                                                        long width, long nx, const float *sums, long blocks) {
    long supers = blocks / 8;
    float scale[2 * blocks], minimum[blocks];
    for (long sb = 0; sb < supers; sb++) {
        float dd = half_to_float(d[sb]);
        if (kind == Q4_K) {
            float dm = half_to_float(dmin[sb]);
            for (int s = 0; s < 8; s++) {
                scale[8 * sb + s] = dd * sc[8 * sb + s];
                minimum[8 * sb + s] = dm * mins[8 * sb + s];
            }
        } else {
            for (int s = 0; s < 16; s++) scale[16 * sb + s] = dd * (int8_t)sc[16 * sb + s];
        }
    }
    for (long k0 = 0; k0 < nx; k0 += X_AT_ONCE) {
        int n = nx - k0 < X_AT_ONCE ? (int)(nx - k0) : X_AT_ONCE;
        const float *xk = x + k0 * width, *sums_k = sums ? sums + k0 * blocks : NULL;
        float *yk = y + k0 * y_stride;
        /* a literal count for whole groups, as in row_times_xs */
        if (n == X_AT_ONCE) k_group(yk, y_stride, kind, scale, minimum, ql, qh, xk, width, sums_k, blocks, X_AT_ONCE);
        else k_group(yk, y_stride, kind, scale, minimum, ql, qh, xk, width, sums_k, blocks, n);
    }
}

static void multiply_k(float *y, const float *x, long nx, int kind, const uint16_t *d, const uint16_t *dmin,
                       const uint8_t *sc, const uint8_t *mins, const uint8_t *ql, const uint8_t *qh, long rows,
                       long blocks, int threads) {
    long width = 32 * blocks, supers = blocks / 8;
    float *sums = malloc(sizeof(float) * nx * blocks);
    for (long k = 0; k < nx; k++) block_sums(sums + k * blocks, x + k * width, blocks);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long r = 0; r < rows; r++) {
        if (kind == Q4_K)
            k_row(y + r, rows, Q4_K, d + r * supers, dmin + r * supers, sc + r * blocks, mins + r * blocks,
                  ql + r * supers * 128, NULL, x, width, nx, sums, blocks);
        else
            k_row(y + r, rows, Q6_K, d + r * supers, NULL, sc + r * supers * 16, NULL, ql + r * supers * 128,
                  qh + r * supers * 64, x, width, nx, sums, blocks);
    }
    free(sums);
}

void tf_q4_k(float *y, const float *x, long nx, const uint16_t *d, const uint16_t *dmin, const uint8_t *sc,
             const uint8_t *mins, const uint8_t *qs, long rows, long blocks, int threads) {
    multiply_k(y, x, nx, Q4_K, d, dmin, sc, mins, qs, NULL, rows, blocks, threads);
}

void tf_q6_k(float *y, const float *x, long nx, const uint8_t *ql, const uint8_t *qh, const uint8_t *sc,
             const uint16_t *d, long rows, long blocks, int threads) {
    multiply_k(y, x, nx, Q6_K, d, NULL, sc, NULL, ql, qh, rows, blocks, threads);
}

/* Float32 rows times a float32 matrix, W [rows, width] as nn.Linear keeps it: y[k, r] = sum_i W[r, i] x[k, i]
 * (+ bias[r]), for the few rows of a batched decoding step. Each step of 8 floats loads W_ROWS_AT_ONCE rows of W
 * once for four rows of x (12 sums in registers); more rows of x go four at a time over the same rows of W, then
 * in L1. What makes it faster than oneDNN's inner product here is less the arithmetic than the memory: a step
 * streams every matrix once, and prefetching the rows of W two blocks ahead keeps enough of it in flight
 * (benchmarks/README.md). width must be a multiple of 8 (kernels.py checks). */
#define W_ROWS_AT_ONCE 3
#define PREFETCH_AHEAD (2 * W_ROWS_AT_ONCE)

#ifdef TF_AVX2
static inline __attribute__((always_inline)) void f32_block(float *y, long y_stride, const float *x, long width,
                                                            const float *w, int nx, int nw) {
    __m256 acc[W_ROWS_AT_ONCE][X_AT_ONCE];
    for (int i = 0; i < W_ROWS_AT_ONCE; i++)
        for (int k = 0; k < X_AT_ONCE; k++) acc[i][k] = _mm256_setzero_ps();
    const float *ahead = w + PREFETCH_AHEAD * width;
    for (long j = 0; j < width; j += 8) {
        __m256 wv[W_ROWS_AT_ONCE];
        for (int i = 0; i < W_ROWS_AT_ONCE; i++) wv[i] = _mm256_loadu_ps(w + (i < nw ? i : 0) * width + j);
        if ((j & 15) == 0) /* one prefetch a cache line */
            for (int i = 0; i < W_ROWS_AT_ONCE; i++) _mm_prefetch((const char *)(ahead + i * width + j), _MM_HINT_T0);
        for (int k = 0; k < nx; k++) {
            __m256 xv = _mm256_loadu_ps(x + k * width + j);
            for (int i = 0; i < W_ROWS_AT_ONCE; i++) acc[i][k] = _mm256_fmadd_ps(wv[i], xv, acc[i][k]);
        }
    }
    for (int i = 0; i < nw; i++)
        for (int k = 0; k < nx; k++) y[k * y_stride + i] = hsum(acc[i][k]);
}
#else
static inline void f32_block(float *y, long y_stride, const float *x, long width, const float *w, int nx, int nw) {
    for (int i = 0; i < nw; i++)
        for (int k = 0; k < nx; k++) {
            float s = 0;
            for (long j = 0; j < width; j++) s += w[i * width + j] * x[k * width + j];
            y[k * y_stride + i] = s;
        }
}
#endif

void tf_f32(float *y, const float *x, long nx, const float *w, const float *bias, long rows, long width,
            int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long r = 0; r < rows; r += W_ROWS_AT_ONCE) {
        int nw = rows - r < W_ROWS_AT_ONCE ? (int)(rows - r) : W_ROWS_AT_ONCE;
        for (long k = 0; k < nx; k += X_AT_ONCE) {
            int n = nx - k < X_AT_ONCE ? (int)(nx - k) : X_AT_ONCE;
            const float *xk = x + k * width, *wr = w + r * width;
            float *yk = y + k * rows + r;
            /* literal counts for the common cases, so that the compiler unrolls them */
            if (nw == W_ROWS_AT_ONCE && n == X_AT_ONCE) f32_block(yk, rows, xk, width, wr, X_AT_ONCE, W_ROWS_AT_ONCE);
            else if (nw == W_ROWS_AT_ONCE && n == 1) f32_block(yk, rows, xk, width, wr, 1, W_ROWS_AT_ONCE);
            else f32_block(yk, rows, xk, width, wr, n, nw);
        }
        if (bias)
            for (int i = 0; i < nw; i++)
                for (long k = 0; k < nx; k++) y[k * rows + r + i] += bias[r + i];
    }
}
