/* The training engine: sequential models (Dense, Flatten, Conv2D,
 * MaxPooling2D, Dropout, Activation) in float32, row-major, every dense
 * and convolution product through OpenBLAS sgemm. Models are read and
 * written in the TensorFlow.js LayersModel format (model.json + .bin).
 *
 * Memory (see shared/STYLE.md, llm.c): a model owns one contiguous
 * parameter arena; gradients, optimizer state and activations are arenas
 * allocated before a loop starts, never inside it. All functions return
 * FM_OK or a negative fm_err with a message (core/err.h) unless void.
 *
 * Threads: a model belongs to one thread at a time (it holds its
 * workspace); clone it to use it from several. Different models may be
 * used concurrently. Evaluation and prediction split large inputs across
 * the thread budget (ml_blas_threads) by themselves. */
#ifndef FM_ENGINE_ML_H
#define FM_ENGINE_ML_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define ML_VERSION "1.0"

/* Limits checked before anything is allocated. */
#define ML_MAX_RANK 3             /* per-sample shape: (features) .. (h,w,c) */
#define ML_MAX_LAYERS 256
#define ML_MAX_DIM (1 << 24)      /* any single dimension */
#define ML_MAX_PARAMS (1u << 28)  /* floats in a model (1 GiB) */
#define ML_MAX_SAMPLE (1u << 24)  /* floats in one sample's activation */
#define ML_MAX_MODEL_JSON (16u << 20)
#define ML_MAX_DATA_FLOATS (1ull << 31) /* floats in one data set (8 GiB) */
#define ML_NAME_MAX 128

/* ---- start-up --------------------------------------------------------- */

/* Call first in main of any program that uses the engine, before threads
 * start. When OPENBLAS_CORETYPE is unset and the kernels OpenBLAS chose are
 * slower than the CPU supports (cpuid), sets OPENBLAS_CORETYPE and
 * re-executes the program with the same argv (OpenBLAS reads it only when
 * it loads, so setenv afterwards is too late). Also sets the thread
 * budget at the number of online CPUs (unless OPENBLAS_NUM_THREADS
 * or OMP_NUM_THREADS is set). Returns only when no re-exec
 * happened (or it failed, which is harmless: the program just runs with
 * the slower kernels). An explicit OPENBLAS_CORETYPE is respected. */
void ml_blas_setup(int argc, char **argv);
/* Name of the kernel set OpenBLAS uses, e.g. "Cooperlake". Borrowed. */
const char *ml_blas_corename(void);
/* The engine's thread budget (clamped to 1..online CPUs; default
 * OPENBLAS_NUM_THREADS or the CPUs): OpenBLAS threads for products large
 * enough to gain from them, and inference threads. Small products (a
 * training batch of 32 or 128) always run on one thread: on two cores
 * the hand-off costs more than it saves. */
void ml_blas_threads(int n);

/* ---- random numbers (deterministic under a seed) ---------------------- */

struct ml_rng {
	uint64_t s[4];
};

void ml_rng_seed(struct ml_rng *r, uint64_t seed);
uint64_t ml_rng_u64(struct ml_rng *r);
/* Uniform in [0, 1). */
double ml_rng_uniform(struct ml_rng *r);
/* Uniform integer in [0, n); n > 0. */
uint64_t ml_rng_below(struct ml_rng *r, uint64_t n);
/* Standard normal (mean 0, stddev 1). */
double ml_rng_normal(struct ml_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void ml_rng_shuffle(struct ml_rng *r, size_t *idx, size_t n);

/* ---- models ----------------------------------------------------------- */

struct ml_model; /* opaque */

enum ml_layer_kind {
	ML_LAYER_DENSE,
	ML_LAYER_FLATTEN,
	ML_LAYER_CONV2D,
	ML_LAYER_MAXPOOL2D,
	ML_LAYER_DROPOUT,
	ML_LAYER_ACTIVATION,
};

enum ml_activation {
	ML_ACT_LINEAR,
	ML_ACT_RELU,
	ML_ACT_SIGMOID,
	ML_ACT_TANH,
	ML_ACT_SOFTMAX,
};

/* A per-sample shape (the batch dimension is implicit). */
struct ml_shape {
	int rank;               /* 1..ML_MAX_RANK */
	int dim[ML_MAX_RANK];
};

/* One parameter tensor inside the flat vector (Keras layout: a Dense
 * kernel is [in, units], a Conv2D kernel [kh, kw, in_channels, filters]). */
struct ml_tensor_info {
	const char *name;       /* as in the weights manifest, "dense/kernel" */
	int rank;
	int shape[4];
	size_t offset;          /* in floats, into ml_model_params() */
	size_t size;            /* floats */
};

/* Loads dir/model.json and the weight files its manifest names. Every
 * field is checked; an unsupported layer or option is FM_EINVAL naming
 * the layer and the field; sizes are bounded before allocation; weight
 * files must hold exactly the manifest's bytes and stay inside dir; a
 * NaN or Inf weight is FM_EUNPROCESSABLE naming the tensor; a missing
 * model.json is FM_ENOTFOUND. */
int ml_model_load(struct ml_model **out, const char *dir);
/* Same, refusing a model of more than max_params parameters with
 * FM_ETOOLARGE before its weights are allocated or read (for untrusted
 * uploads; 0 means the engine's own limit). */
int ml_model_load_max(struct ml_model **out, const char *dir,
		      size_t max_params);
/* Same, from model.json text already in memory (weights read from dir). */
int ml_model_load_json(struct ml_model **out, const char *json, size_t len,
		       const char *dir);
/* Writes dir/model.json and dir/weights.bin (creating dir), each through a
 * temporary file and rename, so a reader never sees half a model. */
int ml_model_save(const struct ml_model *m, const char *dir);
void ml_model_free(struct ml_model *m);
/* A deep copy: architecture and parameters (no training state). */
int ml_model_clone(struct ml_model **out, const struct ml_model *m);

/* A fresh model from a short layer list:
 *   {"name": "fashion-mlp", "input_shape": [28, 28],
 *    "layers": [{"type": "flatten"},
 *               {"type": "dense", "units": 128, "activation": "relu"},
 *               {"type": "conv2d", "filters": 8, "kernel_size": 3,
 *                "strides": 1, "padding": "same", "activation": "relu"},
 *               {"type": "maxpool2d", "pool_size": 2},
 *               {"type": "dropout", "rate": 0.25},
 *               {"type": "activation", "activation": "softmax"}]}
 * Weights are initialized as Keras does (glorot uniform kernels, zero
 * biases) from seed. */
int ml_model_from_spec(struct ml_model **out, const json_t *spec,
		       uint64_t seed);
/* Re-initializes every parameter from its layer's initializers (as
 * written in model.json) with seed; FM_EINVAL if an initializer is not
 * supported. */
int ml_model_init_weights(struct ml_model *m, uint64_t seed);

/* The flat parameter vector: all tensors, layer by layer (kernel, then
 * bias), contiguous; the order the saved weights file uses.
 * Borrowed; writable; lives as long as m. */
float *ml_model_params(struct ml_model *m, size_t *n);
const float *ml_model_params_const(const struct ml_model *m, size_t *n);
size_t ml_model_param_count(const struct ml_model *m);
size_t ml_model_tensor_count(const struct ml_model *m);
/* Borrowed; i < ml_model_tensor_count(m). */
const struct ml_tensor_info *ml_model_tensor(const struct ml_model *m,
					     size_t i);
/* FM_OK when a and b have the same layers, shapes and tensors; otherwise
 * FM_EUNPROCESSABLE naming the first differing layer or tensor. */
int ml_model_same_arch(const struct ml_model *a, const struct ml_model *b);
/* FM_EUNPROCESSABLE naming the first tensor with a NaN or Inf. */
int ml_model_check_finite(const struct ml_model *m);

const char *ml_model_name(const struct ml_model *m);
struct ml_shape ml_model_input_shape(const struct ml_model *m);
struct ml_shape ml_model_output_shape(const struct ml_model *m);
size_t ml_model_input_size(const struct ml_model *m);  /* floats/sample */
size_t ml_model_output_size(const struct ml_model *m); /* floats/sample */
int ml_model_layer_count(const struct ml_model *m);
enum ml_layer_kind ml_model_layer_kind(const struct ml_model *m, int i);
const char *ml_model_layer_name(const struct ml_model *m, int i);
/* The activation that produces the model's output (the last Dense,
 * Conv2D or Activation layer's): ML_ACT_LINEAR means it outputs logits. */
enum ml_activation ml_model_output_activation(const struct ml_model *m);

/* {"name", "params", "input_shape": [null, ...], "output_shape",
 *  "layers": [{"name", "class_name", "output_shape", "params"}]}.
 * New reference. */
int ml_model_summary_json(const struct ml_model *m, json_t **out);
/* Keras-like table appended to out. */
int ml_model_summary_text(const struct ml_model *m, struct buf *out);
/* "Dense", "Conv2D", ... */
const char *ml_layer_kind_name(enum ml_layer_kind k);
const char *ml_activation_name(enum ml_activation a);
int ml_activation_parse(const char *s, enum ml_activation *out);
/* Shape as text, "(None, 28, 28)" style, into out. */
void ml_shape_format(char *out, size_t n, const struct ml_shape *s);

/* ---- data sets -------------------------------------------------------- */

/* n samples; x is [n, x_size] with per-sample shape x_shape, y is
 * [n, y_size]. Class labels are stored as float class indices with
 * y_size 1. The struct owns x and y (malloc). */
struct ml_dataset {
	size_t n;
	struct ml_shape x_shape;
	size_t x_size;
	size_t y_size;
	float *x;
	float *y;
};

/* IDX files (plain or gzip, detected by content): images of any IDX type
 * (ubyte, byte, short, int, float, double) with 1..3 dimensions after the
 * count, and labels [count] or [count, k]; counts must agree. labels may
 * be NULL (y_size 0). */
int ml_dataset_load_idx(struct ml_dataset *out, const char *images,
			const char *labels);
/* CSV with a header line; inputs and outputs are column names; every
 * value must be a finite number. */
int ml_dataset_load_csv(struct ml_dataset *out, const char *path,
			const char *const *inputs, size_t n_inputs,
			const char *const *outputs, size_t n_outputs);
/* The line of the CSV file path that holds sample (0-based, as loaded:
 * after the header, blank lines skipped), for messages a person can
 * follow. */
int ml_dataset_csv_line(size_t *line, const char *path, size_t sample);
void ml_dataset_cleanup(struct ml_dataset *d);
/* A new data set of the samples idx[0..n) of d, in that order. */
int ml_dataset_subset(struct ml_dataset *out, const struct ml_dataset *d,
		      const size_t *idx, size_t n);
/* Shuffles under seed, then puts the last `fraction` of samples in
 * *second (the validation split) and the rest in *first. */
int ml_dataset_split(struct ml_dataset *first, struct ml_dataset *second,
		     const struct ml_dataset *d, double fraction,
		     uint64_t seed);
/* x /= divisor. */
void ml_dataset_scale(struct ml_dataset *d, float divisor);
/* Per-feature mean and standard deviation of x into mean/std
 * (x_size floats each; std of a constant column is 1). */
void ml_dataset_stats(const struct ml_dataset *d, float *mean, float *std);
/* x = (x - mean) / std per feature. */
void ml_dataset_standardize(struct ml_dataset *d, const float *mean,
			    const float *std);
/* Bilinear resize of images (x_shape (h, w) or (h, w, c)) to (nh, nw). */
int ml_dataset_resize(struct ml_dataset *d, int nh, int nw);
/* FM_EINVAL naming the first sample whose label is not an integer in
 * [0, classes). */
int ml_dataset_check_labels(const struct ml_dataset *d, int classes);

/* ---- training --------------------------------------------------------- */

enum ml_loss {
	ML_LOSS_SPARSE_CE,      /* sparse_categorical_crossentropy */
	ML_LOSS_CATEGORICAL_CE, /* categorical_crossentropy (one-hot y) */
	ML_LOSS_BINARY_CE,      /* binary_crossentropy */
	ML_LOSS_MSE,            /* mean_squared_error */
};
/* Keras names ("sparse_categorical_crossentropy", "mse", ...). */
int ml_loss_parse(const char *s, enum ml_loss *out);
const char *ml_loss_name(enum ml_loss l);

enum ml_optimizer { ML_OPT_SGD, ML_OPT_ADAM };
int ml_optimizer_parse(const char *s, enum ml_optimizer *out);

struct ml_epoch_stats {
	int epoch;              /* 1-based */
	size_t samples;
	double loss;            /* mean over the epoch's samples */
	double accuracy;
	double seconds;         /* training loop only */
	double samples_per_s;
};

/* Called after each epoch; a non-zero return stops training early. The
 * callback may evaluate the model. */
typedef int (*ml_epoch_fn)(void *arg, struct ml_model *m,
			   const struct ml_epoch_stats *s);
/* Called after each batch (progress); done samples of total. */
typedef void (*ml_batch_fn)(void *arg, size_t done, size_t total,
			    double loss);

struct ml_train_opts {
	int epochs;
	int batch_size;
	enum ml_optimizer optimizer;
	double lr;
	double momentum;        /* SGD */
	int nesterov;           /* SGD */
	double beta1, beta2, epsilon; /* Adam */
	enum ml_loss loss;
	int from_logits;
	uint64_t seed;          /* shuffling and dropout */
	int shuffle;
	ml_epoch_fn on_epoch;
	ml_batch_fn on_batch;
	void *cb_arg;
};

/* Keras' defaults: Adam(lr 0.001, 0.9, 0.999, 1e-7), batch 32, 1 epoch,
 * sparse categorical cross-entropy, shuffle, seed 0. */
void ml_train_opts_init(struct ml_train_opts *o);

/* FM_OK when d's samples fit m's input and its targets fit the loss and
 * m's outputs (labels integers in range, finite targets); FM_EINVAL
 * naming the first mismatch otherwise. */
int ml_data_check(const struct ml_model *m, const struct ml_dataset *d,
		  enum ml_loss loss);

/* Trains m on d. Checks first that d's samples fit the model's input and
 * its labels fit the loss and output (FM_EINVAL naming the first bad
 * one, m unchanged); then nothing is allocated until it returns. A loss
 * that becomes NaN or infinite stops training with FM_EUNPROCESSABLE; m
 * then holds the diverged weights (reload or keep a clone to undo). */
int ml_train(struct ml_model *m, const struct ml_dataset *d,
	     const struct ml_train_opts *o);

struct ml_eval {
	size_t n;
	double loss;
	double accuracy;
};

/* Loss and accuracy over d, in batches of batch_size (0 = 1024). */
int ml_evaluate(struct ml_model *m, const struct ml_dataset *d,
		enum ml_loss loss, int from_logits, int batch_size,
		struct ml_eval *out);
/* out[n, output_size] = model(x[n, input_size]) in inference mode. */
int ml_predict(struct ml_model *m, const float *x, size_t n, float *out);

#endif
