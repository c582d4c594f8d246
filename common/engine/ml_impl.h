/* Engine internals shared between the engine's own files (ml_*.c).
 * Nothing outside common/engine/ml_*.c includes this. */
#ifndef FM_ENGINE_ML_IMPL_H
#define FM_ENGINE_ML_IMPL_H

#include "engine/ml.h"

#include <stdint.h>

/* Hot elementwise kernels get AVX-512 and AVX2 clones picked at load
 * time (the build targets baseline x86-64). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ML_VECTOR __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ML_VECTOR
#endif

/* Keras' fuzz factor for clipping probabilities. */
#define ML_EPSILON 1e-7f

enum ml_init_kind {
	ML_INIT_ZEROS,
	ML_INIT_ONES,
	ML_INIT_CONSTANT,
	ML_INIT_RANDOM_UNIFORM,
	ML_INIT_RANDOM_NORMAL,
	ML_INIT_TRUNCATED_NORMAL,
	ML_INIT_VARIANCE_SCALING,
	ML_INIT_UNSUPPORTED,
};

enum ml_fan_mode { ML_FAN_IN, ML_FAN_OUT, ML_FAN_AVG };
enum ml_distribution {
	ML_DIST_UNIFORM,
	ML_DIST_NORMAL,          /* Keras 2: truncated normal */
	ML_DIST_TRUNCATED_NORMAL,
	ML_DIST_UNTRUNCATED_NORMAL,
};

struct ml_init {
	enum ml_init_kind kind;
	double value;            /* constant */
	double minval, maxval;   /* random_uniform */
	double mean, stddev;     /* random_normal, truncated_normal */
	double scale;            /* variance_scaling */
	enum ml_fan_mode mode;
	enum ml_distribution distribution;
	char class_name[64];     /* as read, for messages */
};

struct ml_layer {
	enum ml_layer_kind kind;
	char name[ML_NAME_MAX];
	enum ml_activation act;
	int use_bias;
	int units;                     /* Dense */
	int filters;                   /* Conv2D */
	int kh, kw, sh, sw;            /* Conv2D kernel, pooling window; strides */
	int same;                      /* padding "same" */
	int pad_top, pad_left;         /* derived from shapes for "same" */
	double rate;                   /* Dropout */
	struct ml_shape in, out;
	size_t in_size, out_size;      /* floats per sample */
	int kernel_t, bias_t;          /* tensor index or -1 */
	struct ml_init kinit, binit;
	json_t *kinit_json, *binit_json; /* written back on save; owned */
};

struct ml_workspace {
	size_t batch;                  /* capacity in samples */
	int training;                  /* gradients and masks present */
	float *arena;                  /* one allocation for all below */
	float **act;                   /* [n_layers + 1]: act[0] = input */
	float **dact;                  /* same shapes, training only */
	float *col;                    /* im2col of one sample */
	float *dcol;
	int32_t *argmax;               /* max pooling, training only */
	float *mask;                   /* dropout, training only */
	size_t col_size;
};

struct ml_model {
	char name[ML_NAME_MAX];
	int n_layers;
	int cap_layers;                 /* allocated (the loader fills up) */
	struct ml_layer *layers;
	struct ml_shape in_shape;
	size_t in_size, out_size;
	size_t n_params;
	size_t max_params;               /* build refuses more; 0: the limit */
	float *params;                  /* the one parameter arena */
	size_t n_tensors;
	struct ml_tensor_info *tensors;
	char (*tensor_names)[2 * ML_NAME_MAX];
	float *grads;                   /* n_params, while training */
	struct ml_workspace ws;
	struct ml_rng rng;              /* dropout masks */
};

/* Checked size arithmetic: 0 on overflow or when over limit. */
size_t ml__mul(size_t a, size_t b, size_t limit);

/* ml_blas.c: C[M, N] = op(A) op(B) + beta C, row-major, on as many
 * OpenBLAS threads as the product's size is worth. */
void ml__sgemm(int trans_a, int trans_b, int M, int N, int K, const float *A,
	       int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* Threads for inference over n samples (1 when n is small or the thread
 * budget is 1). Between parallel_begin and parallel_end every product
 * runs on one OpenBLAS thread: the parallelism is the engine's own. */
int ml__infer_threads(size_t n);
/* In how many halves (1 or 2, one thread each) to cut a training batch
 * of B. */
int ml__train_halves(size_t B);
void ml__parallel_begin(void);
void ml__parallel_end(void);

/* ml_model.c */
int ml__model_alloc(struct ml_model **out, int n_layers);
/* Derives shapes from in_shape and layer options, names the tensors
 * (taking names from names[] when given) and allocates the arena. */
int ml__model_build(struct ml_model *m);
size_t ml__shape_size(const struct ml_shape *s);
void ml__init_default_kernel(struct ml_init *i);
void ml__init_default_bias(struct ml_init *i);

/* ml_tfjs_topo.c: a modelTopology (Sequential, or Functional as a single
 * chain) into m's name, input shape and layers. */
int ml__tfjs_parse_topology(struct ml_model *m, const json_t *topo);

/* ml_layers.c: kernels. Forward writes outputs; backward accumulates
 * into parameter gradients. Shapes in comments, B = batch. */
/* Sizes ws for batch samples of m (grows, never shrinks; training adds
 * gradients and masks). A model's own ws serves training and the calling
 * thread; parallel inference gives each extra thread its own. */
int ml__ws_ensure(const struct ml_model *m, struct ml_workspace *ws,
		  size_t batch, int training);
void ml__ws_free(struct ml_workspace *ws);
/* x [B, in_size] -> returns model output [B, out_size] (in ws). Only
 * reads m (dropout masks come from rng, or m->rng when NULL), so threads
 * with their own ws and rng may share m. */
const float *ml__forward(struct ml_model *m, struct ml_workspace *ws,
			 const float *x, size_t B, int training,
			 struct ml_rng *rng);
/* dout [B, out_size] is in ws->dact[n_layers]; fills grads [n_params]
 * (zeroed first). */
void ml__backward(const struct ml_model *m, struct ml_workspace *ws,
		  float *grads, size_t B);

/* ml_loss.c: loss summed over the batch (not averaged) into *loss_sum,
 * correct predictions into *correct; when grad is not NULL, writes
 * d(mean loss)/d(out) into grad [B, d], using scale 1/B_total. */
void ml__loss(enum ml_loss l, int from_logits, const float *out,
	      const float *y, size_t B, size_t d, size_t y_size,
	      float *grad, double grad_scale, double *loss_sum,
	      size_t *correct);

#endif
