// conv.c: NHWC Conv2D (forward, backprop-input, backprop-filter) as im2col + OpenBLAS SGEMM, and max/avg pooling.
//
// Layouts are tfjs's: input [n, h, w, c], filter [kh][kw][c][cout], output [n, oh, ow, cout]. With NHWC
// one im2col row (one output pixel) is kh * kw runs of c contiguous floats, so the copy is memcpy-sized
// and the filter is already the [K = kh * kw * c, cout] right-hand matrix: the convolution is one GEMM
// Y[M = n * oh * ow, cout] = cols[M, K] x W[K, cout], its filter gradient dW = cols^T x dY, and its input
// gradient, with stride 1, a forward convolution of dY with the turned filter (strides > 1: dcols = dY x
// W^T scattered back, col2im).
//
// The column matrix is built for a block of output rows at a time (CHUNK_FLOATS floats, ~2 MB), never for
// the whole batch: a ResNet layer's full matrix would be 30-120 MB, this way it stays in cache and the
// memory does not grow with the batch. A 1x1, stride-1, unpadded convolution needs no im2col at all.
//
// Accumulation: the GEMMs accumulate in float (the stock kernels in double); tests bound the difference.
// Pooling matches the stock kernels' order and precision (avg in double, max with a strict `>` so that
// NaN is skipped and the first maximum wins, as tfjs-backend-cpu's pool_utils does).
#include "conv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#define CHUNK_FLOATS (1 << 19)

static int64_t filter_cols(const conv_geom *g) { return g->kh * g->kw * g->c; }

// How many output rows of the column matrix fit one chunk.
static int64_t chunk_rows(const conv_geom *g) {
  const int64_t k = filter_cols(g), m = g->n * g->oh * g->ow;
  int64_t rows = CHUNK_FLOATS / (k > 0 ? k : 1);
  if (rows < 1) rows = 1;
  return rows < m ? rows : m;
}

// A 1x1 unstrided unpadded convolution: the input itself is the column matrix.
static bool is_pointwise(const conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->oh == g->h &&
         g->ow == g->w;
}

// The taps j in [*j0, *j1) of a filter row that fall inside the image for output column ox.
static void valid_taps(const conv_geom *g, int64_t ox, int64_t *j0, int64_t *j1) {
  const int64_t start = ox * g->sw - g->pl;
  int64_t lo = 0, hi = g->kw;
  while (lo < hi && start + lo * g->dw < 0) lo++;
  while (hi > lo && start + (hi - 1) * g->dw >= g->w) hi--;
  *j0 = lo;
  *j1 = hi;
}

// cols[r - r0] = the receptive field of output pixel r (zeros where it falls in the padding). Without
// dilation the taps of one filter row are adjacent pixels, so they are one copy of (j1 - j0) * c floats:
// with c = 16 a per-tap memcpy call would cost more than the 64 bytes it moves.
static void im2col_rows(const float *x, const conv_geom *g, int64_t r0, int64_t r1, float *cols) {
  const int64_t c = g->c, plane = g->oh * g->ow, row_len = g->kw * c;
  float *dst = cols;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / plane, oy = (r % plane) / g->ow, ox = r % g->ow;
    const float *xb = x + b * g->h * g->w * c;
    int64_t j0, j1;
    valid_taps(g, ox, &j0, &j1);
    const int64_t ix0 = ox * g->sw - g->pl;
    for (int64_t i = 0; i < g->kh; i++, dst += row_len) {
      const int64_t iy = oy * g->sh - g->pt + i * g->dh;
      if (iy < 0 || iy >= g->h || j0 >= j1) {
        memset(dst, 0, (size_t)row_len * sizeof(float));
        continue;
      }
      memset(dst, 0, (size_t)(j0 * c) * sizeof(float));
      memset(dst + j1 * c, 0, (size_t)((g->kw - j1) * c) * sizeof(float));
      const float *src = xb + (iy * g->w + ix0) * c;
      if (g->dw == 1) {
        memcpy(dst + j0 * c, src + j0 * c, (size_t)((j1 - j0) * c) * sizeof(float));
      } else {
        for (int64_t j = j0; j < j1; j++) memcpy(dst + j * c, src + j * g->dw * c, (size_t)c * sizeof(float));
      }
    }
  }
}

// The transpose of im2col: adds each column-matrix row back onto the input pixels it was read from.
static void col2im_rows(const float *cols, const conv_geom *g, int64_t r0, int64_t r1, float *dx) {
  const int64_t c = g->c, plane = g->oh * g->ow, row_len = g->kw * c;
  const float *src = cols;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / plane, oy = (r % plane) / g->ow, ox = r % g->ow;
    float *xb = dx + b * g->h * g->w * c;
    int64_t j0, j1;
    valid_taps(g, ox, &j0, &j1);
    const int64_t ix0 = ox * g->sw - g->pl;
    for (int64_t i = 0; i < g->kh; i++, src += row_len) {
      const int64_t iy = oy * g->sh - g->pt + i * g->dh;
      if (iy < 0 || iy >= g->h) continue;
      float *p = xb + (iy * g->w + ix0) * c;
      if (g->dw == 1) {
        const float *restrict s = src + j0 * c;
        float *restrict q = p + j0 * c;
        for (int64_t k = 0; k < (j1 - j0) * c; k++) q[k] += s[k];
      } else {
        for (int64_t j = j0; j < j1; j++) {
          float *q = p + j * g->dw * c;
          for (int64_t k = 0; k < c; k++) q[k] += src[j * c + k];
        }
      }
    }
  }
}

bool conv2d_forward(const float *x, const float *w, float *y, const conv_geom *g) {
  const int64_t m = g->n * g->oh * g->ow, k = filter_cols(g), n = g->cout;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, x, (int)k, w, (int)n, 0.0f, y,
                (int)n);
    return true;
  }
  const int64_t rows = chunk_rows(g);
  float *cols = (float *)malloc((size_t)(rows * k) * sizeof(float));
  if (cols == NULL) return false;
  for (int64_t r0 = 0; r0 < m; r0 += rows) {
    const int64_t r1 = r0 + rows < m ? r0 + rows : m;
    im2col_rows(x, g, r0, r1, cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)n, (int)k, 1.0f, cols, (int)k, w,
                (int)n, 0.0f, y + r0 * n, (int)n);
  }
  free(cols);
  return true;
}

// With stride 1 the input gradient is itself a forward convolution: of dY (as an [n, oh, ow, cout]
// image) with the filter turned by 180 degrees and its channel axes swapped, padded by k - 1 - pad. That
// is one im2col copy and a GEMM with K = kh * kw * cout, where the col2im form is a GEMM with K = cout
// (memory-bound for cout = 16) and a scatter-add of the whole column matrix: ~2x faster at 28x28x16.
static bool backprop_input_as_conv(const float *dy, const float *w, float *dx, const conv_geom *g) {
  const int64_t kh = g->kh, kw = g->kw, c = g->c, cout = g->cout;
  float *turned = (float *)malloc((size_t)(kh * kw * c * cout) * sizeof(float));
  if (turned == NULL) return false;
  // turned[i][j][co][ci] = w[kh - 1 - i][kw - 1 - j][ci][co]
  for (int64_t i = 0; i < kh; i++) {
    for (int64_t j = 0; j < kw; j++) {
      const float *src = w + ((kh - 1 - i) * kw + (kw - 1 - j)) * c * cout;
      float *dst = turned + (i * kw + j) * cout * c;
      for (int64_t ci = 0; ci < c; ci++) {
        for (int64_t co = 0; co < cout; co++) dst[co * c + ci] = src[ci * cout + co];
      }
    }
  }
  const conv_geom t = {g->n, g->oh, g->ow, cout, g->h, g->w, c, kh, kw, 1, 1, 1, 1, kh - 1 - g->pt, kw - 1 - g->pl};
  const bool ok = conv2d_forward(dy, turned, dx, &t);
  free(turned);
  return ok;
}

// dx (zeroed by the caller: JavaScript's new Float32Array) += col2im(dY x W^T).
bool conv2d_backprop_input(const float *dy, const float *w, float *dx, const conv_geom *g) {
  const int64_t m = g->n * g->oh * g->ow, k = filter_cols(g), n = g->cout;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)n, 1.0f, dy, (int)n, w, (int)n, 0.0f,
                dx, (int)k);
    return true;
  }
  if (g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->pt <= g->kh - 1 && g->pl <= g->kw - 1) {
    return backprop_input_as_conv(dy, w, dx, g);
  }
  const int64_t rows = chunk_rows(g);
  float *cols = (float *)malloc((size_t)(rows * k) * sizeof(float));
  if (cols == NULL) return false;
  for (int64_t r0 = 0; r0 < m; r0 += rows) {
    const int64_t r1 = r0 + rows < m ? r0 + rows : m;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)k, (int)n, 1.0f, dy + r0 * n, (int)n, w,
                (int)n, 0.0f, cols, (int)k);
    col2im_rows(cols, g, r0, r1, dx);
  }
  free(cols);
  return true;
}

// dW[K, cout] = sum over chunks of cols^T x dY (beta = 1 after the first chunk).
bool conv2d_backprop_filter(const float *x, const float *dy, float *dw, const conv_geom *g) {
  const int64_t m = g->n * g->oh * g->ow, k = filter_cols(g), n = g->cout;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)n, (int)m, 1.0f, x, (int)k, dy, (int)n, 0.0f, dw,
                (int)n);
    return true;
  }
  const int64_t rows = chunk_rows(g);
  float *cols = (float *)malloc((size_t)(rows * k) * sizeof(float));
  if (cols == NULL) return false;
  for (int64_t r0 = 0; r0 < m; r0 += rows) {
    const int64_t r1 = r0 + rows < m ? r0 + rows : m;
    im2col_rows(x, g, r0, r1, cols);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)n, (int)(r1 - r0), 1.0f, cols, (int)k,
                dy + r0 * n, (int)n, r0 == 0 ? 0.0f : 1.0f, dw, (int)n);
  }
  free(cols);
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Pooling. Windows are clipped to the image as in pool_utils.js (padding is never read); channels are the
// innermost loop so that each window step is one vectorisable row of c values.

// The valid input range [lo, hi) of the window starting at `corner` of size k in a dimension of size n.
static void window_range(int64_t corner, int64_t k, int64_t n, int64_t *lo, int64_t *hi) {
  *lo = corner < 0 ? 0 : corner;
  *hi = corner + k < n ? corner + k : n;
}

bool max_pool_forward(const float *x, float *y, const conv_geom *g) {
  const int64_t c = g->c;
  for (int64_t b = 0; b < g->n; b++) {
    const float *xb = x + b * g->h * g->w * c;
    for (int64_t oy = 0; oy < g->oh; oy++) {
      int64_t y0, y1;
      window_range(oy * g->sh - g->pt, g->kh, g->h, &y0, &y1);
      for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t x0, x1;
        window_range(ox * g->sw - g->pl, g->kw, g->w, &x0, &x1);
        float *o = y + ((b * g->oh + oy) * g->ow + ox) * c;
        for (int64_t k = 0; k < c; k++) o[k] = -INFINITY;
        for (int64_t iy = y0; iy < y1; iy++) {
          for (int64_t ix = x0; ix < x1; ix++) {
            const float *p = xb + (iy * g->w + ix) * c;
            for (int64_t k = 0; k < c; k++) o[k] = p[k] > o[k] ? p[k] : o[k];
          }
        }
      }
    }
  }
  return true;
}

// Sum in double and divide by the number of pixels inside the image (the stock kernel's count).
bool avg_pool_forward(const float *x, float *y, const conv_geom *g) {
  const int64_t c = g->c;
  double *acc = (double *)malloc((size_t)c * sizeof(double));
  if (acc == NULL) return false;
  for (int64_t b = 0; b < g->n; b++) {
    const float *xb = x + b * g->h * g->w * c;
    for (int64_t oy = 0; oy < g->oh; oy++) {
      int64_t y0, y1;
      window_range(oy * g->sh - g->pt, g->kh, g->h, &y0, &y1);
      for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t x0, x1;
        window_range(ox * g->sw - g->pl, g->kw, g->w, &x0, &x1);
        for (int64_t k = 0; k < c; k++) acc[k] = 0.0;
        for (int64_t iy = y0; iy < y1; iy++) {
          for (int64_t ix = x0; ix < x1; ix++) {
            const float *p = xb + (iy * g->w + ix) * c;
            for (int64_t k = 0; k < c; k++) acc[k] += p[k];
          }
        }
        const double count = (double)((y1 > y0 ? y1 - y0 : 0) * (x1 > x0 ? x1 - x0 : 0));
        float *o = y + ((b * g->oh + oy) * g->ow + ox) * c;
        for (int64_t k = 0; k < c; k++) o[k] = (float)(acc[k] / count);
      }
    }
  }
  free(acc);
  return true;
}

// Each window's gradient goes to its first strict maximum in row-major order (maxPoolPositions in the
// stock kernel); a window of only NaN / -Infinity passes none. Two branch-free passes per window so that
// the channel loops vectorise: the maximum, then the first tap that equals it (a NaN equals nothing, and
// a -Infinity maximum means no strict maximum; +0 and -0 tie, as with `>`). dx is zeroed by the caller.
bool max_pool_backward(const float *x, const float *dy, float *dx, const conv_geom *g) {
  const int64_t c = g->c;
  float *best = (float *)malloc((size_t)c * sizeof(float));
  int32_t *at = (int32_t *)malloc((size_t)c * sizeof(int32_t));
  if (best == NULL || at == NULL) {
    free(best);
    free(at);
    return false;
  }
  for (int64_t b = 0; b < g->n; b++) {
    const float *xb = x + b * g->h * g->w * c;
    float *db = dx + b * g->h * g->w * c;
    for (int64_t oy = 0; oy < g->oh; oy++) {
      int64_t y0, y1;
      window_range(oy * g->sh - g->pt, g->kh, g->h, &y0, &y1);
      for (int64_t ox = 0; ox < g->ow; ox++) {
        int64_t x0, x1;
        window_range(ox * g->sw - g->pl, g->kw, g->w, &x0, &x1);
        for (int64_t k = 0; k < c; k++) best[k] = -INFINITY;
        for (int64_t iy = y0; iy < y1; iy++) {
          for (int64_t ix = x0; ix < x1; ix++) {
            const float *p = xb + (iy * g->w + ix) * c;
            for (int64_t k = 0; k < c; k++) best[k] = p[k] > best[k] ? p[k] : best[k];
          }
        }
        // Backwards through the window, so that the last tap equal to the maximum is the first one.
        for (int64_t k = 0; k < c; k++) at[k] = -1;
        for (int64_t iy = y1 - 1; iy >= y0; iy--) {
          for (int64_t ix = x1 - 1; ix >= x0; ix--) {
            const int32_t pixel = (int32_t)(iy * g->w + ix);
            const float *p = xb + (int64_t)pixel * c;
            for (int64_t k = 0; k < c; k++) at[k] = p[k] == best[k] ? pixel : at[k];
          }
        }
        const float *d = dy + ((b * g->oh + oy) * g->ow + ox) * c;
        for (int64_t k = 0; k < c; k++) {
          if (at[k] >= 0 && best[k] > -INFINITY) db[(int64_t)at[k] * c + k] += d[k];
        }
      }
    }
  }
  free(best);
  free(at);
  return true;
}

// dx[p] = (sum of dy over the windows that contain p) / (kh * kw): the stock kernel divides by the full
// window size even where the forward pass divided by fewer pixels (tfjs's behaviour, kept so that the
// backends agree). Gathered per input pixel, in double, like the stock kernel.
bool avg_pool_backward(const float *dy, float *dx, const conv_geom *g) {
  const int64_t c = g->c;
  const double scale = 1.0 / (double)(g->kh * g->kw);
  double *acc = (double *)malloc((size_t)c * sizeof(double));
  if (acc == NULL) return false;
  for (int64_t b = 0; b < g->n; b++) {
    for (int64_t iy = 0; iy < g->h; iy++) {
      // Windows oy with oy * sh - pt <= iy < oy * sh - pt + kh.
      const int64_t lo_y = iy + g->pt - g->kh + 1, hi_y = (iy + g->pt) / g->sh;
      const int64_t oy0 = lo_y <= 0 ? 0 : (lo_y + g->sh - 1) / g->sh, oy1 = hi_y < g->oh - 1 ? hi_y : g->oh - 1;
      for (int64_t ix = 0; ix < g->w; ix++) {
        const int64_t lo_x = ix + g->pl - g->kw + 1, hi_x = (ix + g->pl) / g->sw;
        const int64_t ox0 = lo_x <= 0 ? 0 : (lo_x + g->sw - 1) / g->sw, ox1 = hi_x < g->ow - 1 ? hi_x : g->ow - 1;
        for (int64_t k = 0; k < c; k++) acc[k] = 0.0;
        for (int64_t oy = oy0; oy <= oy1; oy++) {
          for (int64_t ox = ox0; ox <= ox1; ox++) {
            const float *d = dy + ((b * g->oh + oy) * g->ow + ox) * c;
            for (int64_t k = 0; k < c; k++) acc[k] += d[k];
          }
        }
        float *o = dx + ((b * g->h + iy) * g->w + ix) * c;
        for (int64_t k = 0; k < c; k++) o[k] = (float)(acc[k] * scale);
      }
    }
  }
  free(acc);
  return true;
}
