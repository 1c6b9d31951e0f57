// conv.h: NHWC convolution and pooling kernels (conv.c) behind the N-API wrapper in gradlens_native.c.
#ifndef GRADLENS_CONV_H
#define GRADLENS_CONV_H

#include <stdbool.h>
#include <stdint.h>

// The geometry tfjs's computeConv2DInfo / computePool2DInfo give, as plain integers (the TypeScript side
// computes it exactly as the stock kernel does and passes it in this order).
typedef struct {
  int64_t n, h, w, c;     // input [n, h, w, c]
  int64_t oh, ow, cout;   // output [n, oh, ow, cout] (cout = c for pooling)
  int64_t kh, kw;         // filter (or pooling window) size
  int64_t sh, sw;         // strides
  int64_t dh, dw;         // dilations (1 for pooling)
  int64_t pt, pl;         // padding before the first row / column
} conv_geom;

#define CONV_GEOM_FIELDS 15

// Each returns false only when it could not allocate its scratch buffer.
bool conv2d_forward(const float *x, const float *w, float *y, const conv_geom *g);
bool conv2d_backprop_input(const float *dy, const float *w, float *dx, const conv_geom *g);
bool conv2d_backprop_filter(const float *x, const float *dy, float *dw, const conv_geom *g);
bool max_pool_forward(const float *x, float *y, const conv_geom *g);
bool avg_pool_forward(const float *x, float *y, const conv_geom *g);
bool max_pool_backward(const float *x, const float *dy, float *dx, const conv_geom *g);
bool avg_pool_backward(const float *dy, float *dx, const conv_geom *g);

#endif
