#ifndef VIGIL_ORT_H
#define VIGIL_ORT_H
#include <stddef.h>
#include <stdint.h>

// vigil_ort_load opens ONNX Runtime's shared library (dlopen) and creates the process's one
// environment. Returns 0, or -1 with err written.
int vigil_ort_load(const char *path, char *err, int errlen);
// vigil_ort_version is the loaded library's version string ("" before a load).
const char *vigil_ort_version(void);
// vigil_ort_session builds a session from an ONNX model in memory, run on the caller's thread
// (one intra-op and one inter-op thread, sequential, every graph optimisation). NULL with err.
void *vigil_ort_session(const void *model, size_t len, char *err, int errlen);
void vigil_ort_session_free(void *s);
// vigil_ort_run runs s on one float tensor. On success the outputs are OrtValues in values
// (free each with vigil_ort_value_free), their data in data and element counts in counts.
int vigil_ort_run(void *s, const char *in_name, float *in, const int64_t *shape, size_t ndim,
                  const char *const *out_names, size_t nout, void **values, float **data, size_t *counts,
                  char *err, int errlen);
void vigil_ort_value_free(void *v);
#endif
