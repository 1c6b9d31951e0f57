// gradlens_native: N-API addon with float32 kernels (OpenBLAS SGEMM, element-wise, sums, NHWC convolution and pooling in conv.c) for tfjs's cpu backend, and float64 reductions for gradlens's statistics.
//
// Plain C over node_api.h so that the build needs no npm package, and N-API so that one binary serves
// every Node version from 18 on. Every function works in place on Float32Arrays owned by JavaScript (the
// tfjs backend's own value arrays, or a view of the wasm heap): nothing is copied and nothing is
// allocated here except scratch rows (column sums, pooling) and conv.c's im2col block (~2 MB, freed
// before returning).
//
// Numerics follow tfjs-backend-cpu 4.22.0, which computes in double and rounds once on store:
// - add, sub, mul, div, square and sqrt are done in float: for these operations rounding the exact
//   result to double and then to float gives the same float as rounding once (53 >= 2 * 24 + 2), so the
//   results are bit-identical to the stock kernels;
// - squared difference, sigmoid, tanh and every sum are done in double, in the stock summation order;
// - GEMM accumulates in float (OpenBLAS), like every BLAS, and differs from the stock kernel in the
//   last bits only.
// Compile with -ffp-contract=off: a fused multiply-add would change results.

#define NAPI_VERSION 8
#include <node_api.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "conv.h"

// Declared here as well so that a cblas.h from another BLAS still compiles; we link libopenblas.
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);
// OpenBLAS's own kernel dispatch (DYNAMIC_ARCH builds only: weak, so that other builds still load).
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

#define MAX_RANK 16

// ---------------------------------------------------------------------------------------------------
// Argument helpers: every failure throws a JavaScript TypeError/RangeError and returns false.

static bool throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return false;
}

static bool throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return false;
}

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_type(env, "bad call");
  if (argc < want) return throw_type(env, "too few arguments");
  return true;
}

static bool get_f32(napi_env env, napi_value v, float **data, int64_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return throw_type(env, "expected a Float32Array");
  napi_typedarray_type type;
  size_t length = 0;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok || type != napi_float32_array) {
    return throw_type(env, "expected a Float32Array");
  }
  // A zero-length array may have no backing store; callers never dereference it then.
  *data = (float *)ptr;
  *len = (int64_t)length;
  return true;
}

static bool get_i32array(napi_env env, napi_value v, int32_t **data, int64_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return throw_type(env, "expected an Int32Array");
  napi_typedarray_type type;
  size_t length = 0;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok || type != napi_int32_array) {
    return throw_type(env, "expected an Int32Array");
  }
  *data = (int32_t *)ptr;
  *len = (int64_t)length;
  return true;
}

static bool get_i64(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) return throw_type(env, "expected a number");
  return true;
}

static bool get_i32(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) return throw_type(env, "expected a number");
  return true;
}

static bool get_bool(napi_env env, napi_value v, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) return throw_type(env, "expected a boolean");
  return true;
}

static bool get_f64(napi_env env, napi_value v, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) return throw_type(env, "expected a number");
  return true;
}

// ---------------------------------------------------------------------------------------------------
// sgemm(a, aOffset, b, bOffset, c, cOffset, batch, batchA, batchB, m, n, k, transposeA, transposeB)
//
// Row-major C[bi] = op(A[bi % batchA]) x op(B[bi % batchB]) for bi < batch, the batch indexing of
// tfjs-backend-cpu's BatchMatMul. Offsets are in elements, so that the wasm backend can pass one view of
// its whole heap and the offsets of its tensors.

static napi_value js_sgemm(napi_env env, napi_callback_info info) {
  napi_value argv[14];
  if (!get_args(env, info, 14, argv)) return NULL;
  float *a, *b, *c;
  int64_t alen, blen, clen, aoff, boff, coff, batch, batch_a, batch_b, m, n, k;
  bool ta, tb;
  if (!get_f32(env, argv[0], &a, &alen) || !get_i64(env, argv[1], &aoff) || !get_f32(env, argv[2], &b, &blen) ||
      !get_i64(env, argv[3], &boff) || !get_f32(env, argv[4], &c, &clen) || !get_i64(env, argv[5], &coff) ||
      !get_i64(env, argv[6], &batch) || !get_i64(env, argv[7], &batch_a) || !get_i64(env, argv[8], &batch_b) ||
      !get_i64(env, argv[9], &m) || !get_i64(env, argv[10], &n) || !get_i64(env, argv[11], &k) ||
      !get_bool(env, argv[12], &ta) || !get_bool(env, argv[13], &tb)) {
    return NULL;
  }
  if (batch < 0 || batch_a < 1 || batch_b < 1 || m < 0 || n < 0 || k < 0 || aoff < 0 || boff < 0 || coff < 0 ||
      m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) {
    throw_range(env, "sgemm: bad dimensions");
    return NULL;
  }
  const int64_t a_size = m * k, b_size = k * n, c_size = m * n;
  if (aoff + batch_a * a_size > alen || boff + batch_b * b_size > blen || coff + batch * c_size > clen) {
    throw_range(env, "sgemm: arrays too short for the given dimensions");
    return NULL;
  }
  if (batch == 0 || c_size == 0) return NULL;
  if (k == 0) {
    // BLAS may return early on k == 0 without touching C, and a wasm-heap output is uninitialised.
    memset(c + coff, 0, (size_t)(batch * c_size) * sizeof(float));
    return NULL;
  }
  const int lda = (int)(ta ? m : k);
  const int ldb = (int)(tb ? k : n);
  for (int64_t bi = 0; bi < batch; bi++) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, 1.0f, a + aoff + (bi % batch_a) * a_size, lda, b + boff + (bi % batch_b) * b_size, ldb,
                0.0f, c + coff + bi * c_size, (int)n);
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------------
// binary(op, a, b, out, meta): out = a op b with numpy broadcasting.
// meta = [rank, outShape[rank], aShape[rank], bShape[rank]], a and b shapes right-aligned and padded with 1.

enum { OP_ADD = 0, OP_SUB = 1, OP_MUL = 2, OP_DIV = 3, OP_SQDIFF = 4 };

#define BIN_ADD(x, y) ((x) + (y))
#define BIN_SUB(x, y) ((x) - (y))
#define BIN_MUL(x, y) ((x) * (y))
#define BIN_DIV(x, y) ((x) / (y))
#define BIN_SQDIFF(x, y) ((float)(((double)(x) - (double)(y)) * ((double)(x) - (double)(y))))

// The three inner-loop shapes that matter get their own loops so that the compiler vectorises them.
#define DEFINE_BINARY_ROW(name, OP)                                                                          \
  static void row_##name(const float *restrict a, int64_t sa, const float *restrict b, int64_t sb,          \
                         float *restrict o, int64_t n) {                                                     \
    if (sa == 1 && sb == 1) {                                                                                \
      for (int64_t i = 0; i < n; i++) o[i] = OP(a[i], b[i]);                                                 \
    } else if (sa == 1 && sb == 0) {                                                                         \
      const float y = b[0];                                                                                  \
      for (int64_t i = 0; i < n; i++) o[i] = OP(a[i], y);                                                    \
    } else if (sa == 0 && sb == 1) {                                                                         \
      const float x = a[0];                                                                                  \
      for (int64_t i = 0; i < n; i++) o[i] = OP(x, b[i]);                                                    \
    } else {                                                                                                 \
      for (int64_t i = 0; i < n; i++) o[i] = OP(a[i * sa], b[i * sb]);                                       \
    }                                                                                                        \
  }

DEFINE_BINARY_ROW(add, BIN_ADD)
DEFINE_BINARY_ROW(sub, BIN_SUB)
DEFINE_BINARY_ROW(mul, BIN_MUL)
DEFINE_BINARY_ROW(div, BIN_DIV)
DEFINE_BINARY_ROW(sqdiff, BIN_SQDIFF)

typedef void (*row_fn)(const float *, int64_t, const float *, int64_t, float *, int64_t);

static napi_value js_binary(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t op;
  float *a, *b, *o;
  int64_t alen, blen, olen, mlen;
  int32_t *meta;
  if (!get_i32(env, argv[0], &op) || !get_f32(env, argv[1], &a, &alen) || !get_f32(env, argv[2], &b, &blen) ||
      !get_f32(env, argv[3], &o, &olen) || !get_i32array(env, argv[4], &meta, &mlen)) {
    return NULL;
  }
  row_fn row;
  switch (op) {
    case OP_ADD: row = row_add; break;
    case OP_SUB: row = row_sub; break;
    case OP_MUL: row = row_mul; break;
    case OP_DIV: row = row_div; break;
    case OP_SQDIFF: row = row_sqdiff; break;
    default: throw_range(env, "binary: unknown op"); return NULL;
  }
  if (mlen < 1 || meta[0] < 0 || meta[0] > MAX_RANK || mlen < 1 + 3 * (int64_t)meta[0]) {
    throw_range(env, "binary: bad shape description");
    return NULL;
  }
  const int rank = meta[0];
  const int32_t *out_shape = meta + 1, *a_shape = meta + 1 + rank, *b_shape = meta + 1 + 2 * rank;

  // Element strides of a and b in the output's index space (0 along broadcast dimensions).
  int64_t shape[MAX_RANK], sa[MAX_RANK], sb[MAX_RANK];
  int64_t size = 1, asize = 1, bsize = 1;
  for (int d = rank - 1; d >= 0; d--) {
    const int64_t od = out_shape[d], ad = a_shape[d], bd = b_shape[d];
    if (od < 0 || (ad != od && ad != 1) || (bd != od && bd != 1)) {
      throw_range(env, "binary: shapes do not broadcast");
      return NULL;
    }
    shape[d] = od;
    sa[d] = ad == 1 ? 0 : asize;
    sb[d] = bd == 1 ? 0 : bsize;
    size *= od;
    asize *= ad;
    bsize *= bd;
  }
  if (size != olen || asize > alen || bsize > blen) {
    throw_range(env, "binary: array lengths do not match the shapes");
    return NULL;
  }
  if (size == 0) return NULL;

  // Merge neighbouring dimensions that both operands walk through contiguously (or both skip), so that a
  // bias add over [128, 256] becomes rows of 256 and a same-shape op a single row.
  int r = 0;
  int64_t cs[MAX_RANK], ca[MAX_RANK], cb[MAX_RANK];
  for (int d = 0; d < rank; d++) {
    if (shape[d] == 1) continue;
    if (r > 0 && ca[r - 1] == sa[d] * shape[d] && cb[r - 1] == sb[d] * shape[d]) {
      cs[r - 1] *= shape[d];
      ca[r - 1] = sa[d];
      cb[r - 1] = sb[d];
    } else {
      cs[r] = shape[d];
      ca[r] = sa[d];
      cb[r] = sb[d];
      r++;
    }
  }
  if (r == 0) {
    row(a, 0, b, 0, o, 1);
    return NULL;
  }
  const int64_t n = cs[r - 1], inner_a = ca[r - 1], inner_b = cb[r - 1];
  const int outer_rank = r - 1;
  int64_t idx[MAX_RANK] = {0};
  int64_t aoff = 0, boff = 0;
  for (int64_t ooff = 0; ooff < size; ooff += n) {
    row(a + aoff, inner_a, b + boff, inner_b, o + ooff, n);
    // Odometer over the outer dimensions.
    for (int d = outer_rank - 1; d >= 0; d--) {
      if (++idx[d] < cs[d]) {
        aoff += ca[d];
        boff += cb[d];
        break;
      }
      aoff -= ca[d] * (cs[d] - 1);
      boff -= cb[d] * (cs[d] - 1);
      idx[d] = 0;
    }
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------------
// unary(op, x, out, alpha)

enum { OP_RELU = 0, OP_STEP = 1, OP_SQUARE = 2, OP_SQRT = 3, OP_SIGMOID = 4, OP_TANH = 5 };

static napi_value js_unary(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  int32_t op;
  float *restrict x, *restrict o;
  int64_t xlen, olen;
  double alpha_d;
  if (!get_i32(env, argv[0], &op) || !get_f32(env, argv[1], (float **)&x, &xlen) ||
      !get_f32(env, argv[2], (float **)&o, &olen) || !get_f64(env, argv[3], &alpha_d)) {
    return NULL;
  }
  if (xlen != olen) {
    throw_range(env, "unary: input and output lengths differ");
    return NULL;
  }
  const int64_t n = xlen;
  switch (op) {
    case OP_RELU:
      // Math.max(0, x): NaN stays NaN and -0 becomes +0.
      for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        o[i] = v > 0.0f ? v : (v != v ? v : 0.0f);
      }
      break;
    case OP_STEP: {
      const float alpha = (float)alpha_d;
      for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        o[i] = v > 0.0f ? 1.0f : (v != v ? v : alpha);
      }
      break;
    }
    case OP_SQUARE:
      for (int64_t i = 0; i < n; i++) o[i] = x[i] * x[i];
      break;
    case OP_SQRT:
      for (int64_t i = 0; i < n; i++) o[i] = sqrtf(x[i]);
      break;
    case OP_SIGMOID:
      for (int64_t i = 0; i < n; i++) o[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
      break;
    case OP_TANH:
      for (int64_t i = 0; i < n; i++) o[i] = (float)tanh((double)x[i]);
      break;
    default:
      throw_range(env, "unary: unknown op");
      return NULL;
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------------
// sum(x, out, outer, reduce, inner): x viewed as [outer, reduce, inner], out[o, i] = sum over r.
// Accumulates in double in increasing r, the order and precision of the stock kernel (which transposes
// the reduced axes innermost and sums them with a JavaScript number).

static napi_value js_sum(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  float *x, *o;
  int64_t xlen, olen, outer, reduce, inner;
  if (!get_f32(env, argv[0], &x, &xlen) || !get_f32(env, argv[1], &o, &olen) || !get_i64(env, argv[2], &outer) ||
      !get_i64(env, argv[3], &reduce) || !get_i64(env, argv[4], &inner)) {
    return NULL;
  }
  if (outer < 0 || reduce < 0 || inner < 0 || outer * reduce * inner != xlen || outer * inner != olen) {
    throw_range(env, "sum: lengths do not match [outer, reduce, inner]");
    return NULL;
  }
  if (inner == 1) {
    for (int64_t q = 0; q < outer; q++) {
      const float *p = x + q * reduce;
      double s = 0.0;
      for (int64_t r = 0; r < reduce; r++) s += p[r];
      o[q] = (float)s;
    }
    return NULL;
  }
  double stack_acc[512];
  double *acc = inner <= 512 ? stack_acc : (double *)malloc((size_t)inner * sizeof(double));
  if (acc == NULL) {
    napi_throw_error(env, NULL, "sum: out of memory");
    return NULL;
  }
  for (int64_t q = 0; q < outer; q++) {
    for (int64_t i = 0; i < inner; i++) acc[i] = 0.0;
    const float *p = x + q * reduce * inner;
    for (int64_t r = 0; r < reduce; r++) {
      const float *row = p + r * inner;
      for (int64_t i = 0; i < inner; i++) acc[i] += row[i];
    }
    float *dst = o + q * inner;
    for (int64_t i = 0; i < inner; i++) dst[i] = (float)acc[i];
  }
  if (acc != stack_acc) free(acc);
  return NULL;
}

// ---------------------------------------------------------------------------------------------------
// mean(x, out, outer, reduce, inner, divisor): the stock Mean kernel, which divides every element by the
// count first (a float32 RealDiv: x / divisor rounded to float) and then sums the quotients like Sum (in
// double, in increasing r). Done here in one pass instead of a division array and a transposed copy.

static napi_value js_mean(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  float *x, *o;
  int64_t xlen, olen, outer, reduce, inner;
  double divisor_d;
  if (!get_f32(env, argv[0], &x, &xlen) || !get_f32(env, argv[1], &o, &olen) || !get_i64(env, argv[2], &outer) ||
      !get_i64(env, argv[3], &reduce) || !get_i64(env, argv[4], &inner) || !get_f64(env, argv[5], &divisor_d)) {
    return NULL;
  }
  if (outer < 0 || reduce < 0 || inner < 0 || outer * reduce * inner != xlen || outer * inner != olen) {
    throw_range(env, "mean: lengths do not match [outer, reduce, inner]");
    return NULL;
  }
  const float divisor = (float)divisor_d;
  double *acc = (double *)malloc((size_t)(inner > 0 ? inner : 1) * sizeof(double));
  if (acc == NULL) {
    napi_throw_error(env, NULL, "mean: out of memory");
    return NULL;
  }
  for (int64_t q = 0; q < outer; q++) {
    for (int64_t i = 0; i < inner; i++) acc[i] = 0.0;
    const float *p = x + q * reduce * inner;
    for (int64_t r = 0; r < reduce; r++) {
      const float *row = p + r * inner;
      for (int64_t i = 0; i < inner; i++) acc[i] += (double)(row[i] / divisor);
    }
    float *dst = o + q * inner;
    for (int64_t i = 0; i < inner; i++) dst[i] = (float)acc[i];
  }
  free(acc);
  return NULL;
}

// ---------------------------------------------------------------------------------------------------
// Reductions for gradlens's per-layer statistics (src/engine/batch-stats.ts has the same in JavaScript,
// which is the reference the tests hold these to). Everything accumulates in double, so no float32
// max-scaling is needed; the order of the additions is free (the results are compared to a relative
// 1e-12), which lets the compiler keep several partial sums in vector registers.

static bool get_f64array(napi_env env, napi_value v, double **data, int64_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return throw_type(env, "expected a Float64Array");
  napi_typedarray_type type;
  size_t length = 0;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok || type != napi_float64_array) {
    return throw_type(env, "expected a Float64Array");
  }
  *data = (double *)ptr;
  *len = (int64_t)length;
  return true;
}

// moments(x, out): out[0] = Σx, out[1] = Σx², out[2] = max|x| (NaN when any x is NaN).
static napi_value js_moments(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  float *x;
  double *out;
  int64_t n, olen;
  if (!get_f32(env, argv[0], &x, &n) || !get_f64array(env, argv[1], &out, &olen)) return NULL;
  if (olen < 3) {
    throw_range(env, "moments: out needs 3 entries");
    return NULL;
  }
  double s = 0.0, q = 0.0;
  float m = 0.0f;
#pragma omp simd reduction(+ : s, q) reduction(max : m)
  for (int64_t i = 0; i < n; i++) {
    const double v = (double)x[i];
    s += v;
    q += v * v;
    const float a = fabsf(x[i]);
    m = a > m ? a : m;
  }
  out[0] = s;
  out[1] = q;
  // A NaN anywhere makes Σx² NaN; max must say so too (the comparison above skips NaN).
  out[2] = isnan(q) ? q : (double)m;
  return NULL;
}

// centered(x, mean) -> Σ(x - mean)², the second pass of a variance.
static napi_value js_centered(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  float *x;
  int64_t n;
  double mean;
  if (!get_f32(env, argv[0], &x, &n) || !get_f64(env, argv[1], &mean)) return NULL;
  double q = 0.0;
#pragma omp simd reduction(+ : q)
  for (int64_t i = 0; i < n; i++) {
    const double d = (double)x[i] - mean;
    q += d * d;
  }
  napi_value result;
  napi_create_double(env, q, &result);
  return result;
}

// derivativeStats(d, units, limit, out[, deadFlags]): d is [rows, units]; out[0] = units whose derivative
// is exactly 0 in every row (NaN counts as non-zero), out[1] = entries with |d| < limit (NaN is not);
// deadFlags (a Uint8Array of units), when given, gets 1 for each dead unit (shards combine them).
static napi_value js_derivative_stats(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t argc = 5;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    throw_type(env, "derivativeStats: too few arguments");
    return NULL;
  }
  float *d;
  double *out;
  int64_t n, units, olen;
  double limit_d;
  if (!get_f32(env, argv[0], &d, &n) || !get_i64(env, argv[1], &units) || !get_f64(env, argv[2], &limit_d) ||
      !get_f64array(env, argv[3], &out, &olen)) {
    return NULL;
  }
  unsigned char *flags = NULL;
  if (argc >= 5) {
    napi_valuetype vt;
    napi_typeof(env, argv[4], &vt);
    if (vt != napi_undefined) {
      bool is_ta = false;
      napi_typedarray_type type;
      size_t flen = 0;
      void *fptr = NULL;
      if (napi_is_typedarray(env, argv[4], &is_ta) != napi_ok || !is_ta ||
          napi_get_typedarray_info(env, argv[4], &type, &flen, &fptr, NULL, NULL) != napi_ok || type != napi_uint8_array) {
        throw_type(env, "derivativeStats: deadFlags must be a Uint8Array");
        return NULL;
      }
      if ((int64_t)flen < units) {
        throw_range(env, "derivativeStats: deadFlags is shorter than units");
        return NULL;
      }
      flags = (unsigned char *)fptr;
    }
  }
  if (units <= 0 || n % units != 0 || olen < 2) {
    throw_range(env, "derivativeStats: length is not a multiple of units, or out is too short");
    return NULL;
  }
  unsigned char stack_alive[4096];
  unsigned char *alive = units <= 4096 ? stack_alive : (unsigned char *)malloc((size_t)units);
  if (alive == NULL) {
    napi_throw_error(env, NULL, "derivativeStats: out of memory");
    return NULL;
  }
  memset(alive, 0, (size_t)units);
  const float limit = (float)limit_d;
  int64_t saturated = 0;
  const int64_t rows = n / units;
  for (int64_t r = 0; r < rows; r++) {
    const float *row = d + r * units;
    int64_t sat = 0;
    for (int64_t j = 0; j < units; j++) {
      const float v = row[j];
      alive[j] |= (unsigned char)(v != 0.0f);
      sat += fabsf(v) < limit;
    }
    saturated += sat;
  }
  int64_t dead = 0;
  for (int64_t j = 0; j < units; j++) dead += alive[j] == 0;
  if (flags != NULL) for (int64_t j = 0; j < units; j++) flags[j] = alive[j] == 0;
  if (alive != stack_alive) free(alive);
  out[0] = (double)dead;
  out[1] = (double)saturated;
  return NULL;
}

// rowSumSq(x, cols, out): out[r] = Σ_j x[r, j]² for each row of a [rows, cols] array.
static napi_value js_row_sumsq(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  float *x;
  double *out;
  int64_t n, cols, olen;
  if (!get_f32(env, argv[0], &x, &n) || !get_i64(env, argv[1], &cols) || !get_f64array(env, argv[2], &out, &olen)) return NULL;
  if (cols <= 0 || n % cols != 0 || olen < n / cols) {
    throw_range(env, "rowSumSq: length is not a multiple of cols, or out is too short");
    return NULL;
  }
  const int64_t rows = n / cols;
  for (int64_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    double q = 0.0;
#pragma omp simd reduction(+ : q)
    for (int64_t j = 0; j < cols; j++) q += (double)row[j] * (double)row[j];
    out[r] = q;
  }
  return NULL;
}


// ---------------------------------------------------------------------------------------------------
// fdlibm_exp: e^x as V8's Math.exp computes it (src/base/ieee754.cc, from FreeBSD msun e_exp.c), bit for bit,
// so that the Ziggurat's wedge test below accepts exactly the draws that JavaScript accepts. Only finite x
// with |x| < 709 reach it (x = -z²/2 with 0 <= z < 3.7).

static double fdlibm_exp(double x) {
  static const double halF[2] = {0.5, -0.5};
  static const double ln2HI[2] = {6.93147180369123816490e-01, -6.93147180369123816490e-01};
  static const double ln2LO[2] = {1.90821492927058770002e-10, -1.90821492927058770002e-10};
  static const double invln2 = 1.44269504088896338700e+00;
  static const double P1 = 1.66666666666666019037e-01, P2 = -2.77777777770155933842e-03, P3 = 6.61375632143793436117e-05,
                      P4 = -1.65339022054652515390e-06, P5 = 4.13813679705723846039e-08;
  double hi = 0.0, lo = 0.0;
  int32_t k = 0;
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  uint32_t hx = (uint32_t)(bits >> 32);
  const int32_t xsb = (int32_t)((hx >> 31) & 1);
  hx &= 0x7fffffff;
  if (hx > 0x3fd62e42) {
    if (hx < 0x3FF0A2B2) {
      hi = x - ln2HI[xsb];
      lo = ln2LO[xsb];
      k = 1 - xsb - xsb;
    } else {
      k = (int32_t)(invln2 * x + halF[xsb]);
      const double t = k;
      hi = x - t * ln2HI[0];
      lo = t * ln2LO[0];
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    return 1.0 + x;
  } else {
    k = 0;
  }
  const double t = x * x;
  uint64_t pk = (uint64_t)(uint32_t)(0x3ff00000 + (k << 20)) << 32;
  double twopk;
  memcpy(&twopk, &pk, sizeof twopk);
  const double c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  const double y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  return y * twopk;
}

// ---------------------------------------------------------------------------------------------------
// zigguratFill(out, start, scale, state, x, f, slow) -> index
//
// The Ziggurat normal sampler of src/engine/common/random.ts (Rng.fillNormal and normalSlow), bit for bit:
// two sfc32 steps on the int32 state (uint32 here: the same bits), the 53-bit uniform from them (exact in
// double), one product with the layer's width x[layer] (one rounding, as in JavaScript: -ffp-contract=off),
// out[i] = (float)(scale * ±z); the wedge test with fdlibm_exp (V8's Math.exp). It stops at the first draw
// that reaches the tail (layer 0 outside its rectangle: Math.log, rare) and returns its index, with that
// attempt's layer, z and second draw in slow[0..2] and the state after it: JavaScript finishes that draw and
// calls again from the next index. Returns out.length when it filled everything.
static inline uint32_t sfc32_next(uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
  const uint32_t t = *a + *b + *d;
  *d += 1;
  *a = *b ^ (*b >> 9);
  *b = *c + (*c << 3);
  *c = (*c << 21) | (*c >> 11);
  *c += t;
  return t;
}

static napi_value js_ziggurat_fill(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  float *out;
  int32_t *state;
  double *x, *f, *slow;
  int64_t n, start, slen, xlen, flen, wlen;
  double scale;
  if (!get_f32(env, argv[0], &out, &n) || !get_i64(env, argv[1], &start) || !get_f64(env, argv[2], &scale) ||
      !get_i32array(env, argv[3], &state, &slen) || !get_f64array(env, argv[4], &x, &xlen) ||
      !get_f64array(env, argv[5], &f, &flen) || !get_f64array(env, argv[6], &slow, &wlen)) return NULL;
  if (slen < 4 || xlen < 257 || flen < 257 || wlen < 3 || start < 0) {
    throw_range(env, "zigguratFill: state needs 4 entries, x and f 257, slow 3, and start must not be negative");
    return NULL;
  }
  uint32_t a = (uint32_t)state[0], b = (uint32_t)state[1], c = (uint32_t)state[2], d = (uint32_t)state[3];
  int64_t i = start;
  for (; i < n; i++) {
    uint32_t t1 = sfc32_next(&a, &b, &c, &d);
    uint32_t t2 = sfc32_next(&a, &b, &c, &d);
    uint32_t layer = t2 & 0xffu;
    double z = ((double)t1 * 2097152.0 + (double)(t2 >> 11)) * (1.0 / 9007199254740992.0) * x[layer];
    bool tail = false;
    while (!(z < x[layer + 1])) {
      if (layer == 0) {
        tail = true;
        break;
      }
      // Wedge: accept if a uniform height in the layer lies under the density at z.
      const double f0 = f[layer];
      const double y = f0 + (f[layer + 1] - f0) * ((double)sfc32_next(&a, &b, &c, &d) / 4294967296.0);
      if (y < fdlibm_exp(-0.5 * z * z)) break;
      // Rejected: a fresh attempt.
      t1 = sfc32_next(&a, &b, &c, &d);
      t2 = sfc32_next(&a, &b, &c, &d);
      layer = t2 & 0xffu;
      z = ((double)t1 * 2097152.0 + (double)(t2 >> 11)) * (1.0 / 9007199254740992.0) * x[layer];
    }
    if (tail) {
      slow[0] = (double)layer;
      slow[1] = z;
      slow[2] = (double)(int32_t)t2;
      break;
    }
    out[i] = (float)(scale * ((t2 & 0x100u) == 0 ? z : -z));
  }
  state[0] = (int32_t)a;
  state[1] = (int32_t)b;
  state[2] = (int32_t)c;
  state[3] = (int32_t)d;
  napi_value result;
  napi_create_int64(env, i, &result);
  return result;
}

// ---------------------------------------------------------------------------------------------------
// convKernel(op, a, b, out, geom): the NHWC convolution and pooling kernels of conv.c.
// geom = Int32Array [n, h, w, c, oh, ow, cout, kh, kw, sh, sw, dh, dw, pt, pl]. Every array length is
// checked against it here, and conv.c bounds-checks every input pixel it reads, so no geometry a caller
// passes can make it read or write outside the arrays.
//   op 0 forward:         a = x,  b = filter, out = y
//   op 1 backprop input:  a = dy, b = filter, out = dx (zeroed)
//   op 2 backprop filter: a = x,  b = dy,     out = dW
//   op 3 max pool, 4 avg pool: a = x, out = y (b unused)
//   op 5 max pool grad:   a = x,  b = dy,     out = dx (zeroed)
//   op 6 avg pool grad:   a = dy, out = dx (b unused)

enum { CONV_FWD = 0, CONV_BP_INPUT = 1, CONV_BP_FILTER = 2, POOL_MAX = 3, POOL_AVG = 4, POOL_MAX_GRAD = 5, POOL_AVG_GRAD = 6 };

// a * b * c * d without overflow (all positive here).
static bool product4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t *out) {
  int64_t ab, abc;
  return !__builtin_mul_overflow(a, b, &ab) && !__builtin_mul_overflow(ab, c, &abc) && !__builtin_mul_overflow(abc, d, out);
}

static bool read_geom(napi_env env, napi_value v, conv_geom *g) {
  int32_t *m;
  int64_t len;
  if (!get_i32array(env, v, &m, &len)) return false;
  if (len < CONV_GEOM_FIELDS) return throw_range(env, "convKernel: geometry needs 15 entries");
  int64_t f[CONV_GEOM_FIELDS];
  for (int i = 0; i < CONV_GEOM_FIELDS; i++) f[i] = m[i];
  *g = (conv_geom){f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], f[14]};
  // Sizes and steps at least 1, paddings at least 0: anything else is not a geometry tfjs produces.
  for (int i = 0; i < 13; i++) if (f[i] < 1) return throw_range(env, "convKernel: sizes, strides and dilations must be positive");
  if (g->pt < 0 || g->pl < 0) return throw_range(env, "convKernel: padding must not be negative");
  // Every product below (array lengths, GEMM dimensions) must not overflow, and each GEMM dimension must
  // fit BLAS's int (the stride-1 input gradient uses kh * kw * cout as its K).
  int64_t xs, ys, ws, m_out, m_in, k_in, k_out;
  if (!product4(g->n, g->h, g->w, g->c, &xs) || !product4(g->n, g->oh, g->ow, g->cout, &ys) ||
      !product4(g->kh, g->kw, g->c, g->cout, &ws) || !product4(g->n, g->oh, g->ow, 1, &m_out) ||
      !product4(g->n, g->h, g->w, 1, &m_in) || !product4(g->kh, g->kw, g->c, 1, &k_in) ||
      !product4(g->kh, g->kw, g->cout, 1, &k_out) || m_out > INT32_MAX || m_in > INT32_MAX || k_in > INT32_MAX ||
      k_out > INT32_MAX) {
    return throw_range(env, "convKernel: too large for a BLAS call");
  }
  return true;
}

// The lengths op needs for a, b and out (b = -1: unused).
static void conv_lengths(int32_t op, const conv_geom *g, int64_t *la, int64_t *lb, int64_t *lo) {
  const int64_t xs = g->n * g->h * g->w * g->c, ys = g->n * g->oh * g->ow * g->cout, ws = g->kh * g->kw * g->c * g->cout;
  switch (op) {
    case CONV_FWD: *la = xs; *lb = ws; *lo = ys; break;
    case CONV_BP_INPUT: *la = ys; *lb = ws; *lo = xs; break;
    case CONV_BP_FILTER: *la = xs; *lb = ys; *lo = ws; break;
    case POOL_MAX: case POOL_AVG: *la = xs; *lb = -1; *lo = ys; break;
    case POOL_MAX_GRAD: *la = xs; *lb = ys; *lo = xs; break;
    default: *la = ys; *lb = -1; *lo = xs; break;  // POOL_AVG_GRAD
  }
}

static napi_value js_conv_kernel(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t op;
  float *a, *b, *o;
  int64_t alen, blen, olen;
  conv_geom g;
  if (!get_i32(env, argv[0], &op) || !get_f32(env, argv[1], &a, &alen) || !get_f32(env, argv[2], &b, &blen) ||
      !get_f32(env, argv[3], &o, &olen) || !read_geom(env, argv[4], &g)) {
    return NULL;
  }
  if (op < CONV_FWD || op > POOL_AVG_GRAD) {
    throw_range(env, "convKernel: unknown op");
    return NULL;
  }
  if (op >= POOL_MAX && (g.cout != g.c || g.dh != 1 || g.dw != 1)) {
    throw_range(env, "convKernel: pooling keeps the channels and has no dilation");
    return NULL;
  }
  int64_t la, lb, lo;
  conv_lengths(op, &g, &la, &lb, &lo);
  if (alen != la || (lb >= 0 && blen != lb) || olen != lo) {
    throw_range(env, "convKernel: array lengths do not match the geometry");
    return NULL;
  }
  bool ok;
  switch (op) {
    case CONV_FWD: ok = conv2d_forward(a, b, o, &g); break;
    case CONV_BP_INPUT: ok = conv2d_backprop_input(a, b, o, &g); break;
    case CONV_BP_FILTER: ok = conv2d_backprop_filter(a, b, o, &g); break;
    case POOL_MAX: ok = max_pool_forward(a, o, &g); break;
    case POOL_AVG: ok = avg_pool_forward(a, o, &g); break;
    case POOL_MAX_GRAD: ok = max_pool_backward(a, b, o, &g); break;
    default: ok = avg_pool_backward(a, o, &g); break;
  }
  if (!ok) napi_throw_error(env, NULL, "convKernel: out of memory");
  return NULL;
}

// ---------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------
// OpenBLAS 0.3.21 picks its kernels from the CPU model; for a model it does not know (a VM that reports a
// generic "Intel(R) Xeon(R) Processor", for one) it falls back to Prescott, its SSE3 kernels, although the
// CPU has AVX-512 or AVX2: GEMMs 3-7x slower (measured on such a VM: a 3136x576x64 sgemm 44 ms on
// Prescott, 12 ms on Haswell, 6.4 ms on SkylakeX). Unless the user chose a core (OPENBLAS_CORETYPE), rerun
// OpenBLAS's own dispatch once per process, before our first BLAS call, with the core the instruction set
// supports. Only the Prescott fallback is touched: a detected core is never overridden.

static pthread_once_t core_once = PTHREAD_ONCE_INIT;
static char core_note[96];

static const char *supported_core(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return NULL;
}

static void fix_blas_core(void) {
  if (gotoblas_dynamic_init == NULL || gotoblas_dynamic_quit == NULL || getenv("OPENBLAS_CORETYPE") != NULL) return;
  const char *detected = openblas_get_corename();
  if (detected == NULL || strcmp(detected, "Prescott") != 0) return;
  const char *core = supported_core();
  if (core == NULL) return;
  // gotoblas_dynamic_init reads the core from the environment; leave the environment as we found it.
  setenv("OPENBLAS_CORETYPE", core, 0);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
  snprintf(core_note, sizeof core_note, "%s instead of the Prescott fallback OpenBLAS detected", core);
}

static napi_value js_set_blas_threads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t n;
  if (!get_i32(env, argv[0], &n)) return NULL;
  if (n < 1) {
    throw_range(env, "setBlasThreads: need at least one thread");
    return NULL;
  }
  openblas_set_num_threads(n);
  return NULL;
}

static napi_value make_string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s != NULL ? s : "", NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj, threads;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "config", make_string(env, openblas_get_config()));
  napi_set_named_property(env, obj, "corename", make_string(env, openblas_get_corename()));
  napi_create_int32(env, openblas_get_num_threads(), &threads);
  napi_set_named_property(env, obj, "threads", threads);
  if (core_note[0] != '\0') napi_set_named_property(env, obj, "coreNote", make_string(env, core_note));
  return obj;
}

NAPI_MODULE_INIT() {
  pthread_once(&core_once, fix_blas_core);
  // 256-wide products gain nothing from a second BLAS thread and the pthread build would otherwise
  // start one per core; callers may raise it with setBlasThreads.
  openblas_set_num_threads(1);
  napi_property_descriptor props[] = {
      {"sgemm", NULL, js_sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"binary", NULL, js_binary, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, js_unary, NULL, NULL, NULL, napi_default, NULL},
      {"sum", NULL, js_sum, NULL, NULL, NULL, napi_default, NULL},
      {"mean", NULL, js_mean, NULL, NULL, NULL, napi_default, NULL},
      {"moments", NULL, js_moments, NULL, NULL, NULL, napi_default, NULL},
      {"centered", NULL, js_centered, NULL, NULL, NULL, napi_default, NULL},
      {"derivativeStats", NULL, js_derivative_stats, NULL, NULL, NULL, napi_default, NULL},
      {"rowSumSq", NULL, js_row_sumsq, NULL, NULL, NULL, napi_default, NULL},
      {"zigguratFill", NULL, js_ziggurat_fill, NULL, NULL, NULL, napi_default, NULL},
      {"convKernel", NULL, js_conv_kernel, NULL, NULL, NULL, napi_default, NULL},
      {"setBlasThreads", NULL, js_set_blas_threads, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}
