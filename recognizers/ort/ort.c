#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include "onnxruntime_c_api.h"
#include "ort.h"

static const OrtApi *api;
static OrtEnv *env;
static OrtMemoryInfo *cpu;
static const char *version = "";

static void copy_err(char *err, int errlen, const char *msg) {
    if (errlen <= 0) return;
    snprintf(err, (size_t)errlen, "%s", msg);
}

// status_err writes st's message to err and frees st; returns -1 if st was an error.
static int status_err(OrtStatus *st, char *err, int errlen) {
    if (st == NULL) return 0;
    copy_err(err, errlen, api->GetErrorMessage(st));
    api->ReleaseStatus(st);
    return -1;
}

int vigil_ort_load(const char *path, char *err, int errlen) {
    if (api != NULL) return 0;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        copy_err(err, errlen, dlerror());
        return -1;
    }
    typedef const OrtApiBase *(*base_fn)(void);
    base_fn base = (base_fn)dlsym(lib, "OrtGetApiBase");
    if (base == NULL) {
        copy_err(err, errlen, "no OrtGetApiBase in the library: not ONNX Runtime");
        dlclose(lib);
        return -1;
    }
    const OrtApi *a = base()->GetApi(ORT_API_VERSION);
    if (a == NULL) {
        snprintf(err, (size_t)errlen, "ONNX Runtime %s does not offer API version %d (1.24 or later needed)", base()->GetVersionString(), ORT_API_VERSION);
        dlclose(lib);
        return -1;
    }
    api = a;
    if (status_err(api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "vigil", &env), err, errlen)) { api = NULL; return -1; }
    if (status_err(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &cpu), err, errlen)) { api = NULL; return -1; }
    version = base()->GetVersionString();
    return 0;
}

const char *vigil_ort_version(void) { return version; }

void *vigil_ort_session(const void *model, size_t len, char *err, int errlen) {
    if (api == NULL) { copy_err(err, errlen, "ONNX Runtime is not loaded"); return NULL; }
    OrtSessionOptions *o = NULL;
    OrtSession *s = NULL;
    if (status_err(api->CreateSessionOptions(&o), err, errlen)) return NULL;
    if (status_err(api->SetIntraOpNumThreads(o, 1), err, errlen) ||
        status_err(api->SetInterOpNumThreads(o, 1), err, errlen) ||
        status_err(api->SetSessionExecutionMode(o, ORT_SEQUENTIAL), err, errlen) ||
        status_err(api->SetSessionGraphOptimizationLevel(o, ORT_ENABLE_ALL), err, errlen) ||
        status_err(api->CreateSessionFromArray(env, model, len, o, &s), err, errlen)) {
        api->ReleaseSessionOptions(o);
        return NULL;
    }
    api->ReleaseSessionOptions(o);
    return s;
}

void vigil_ort_session_free(void *s) {
    if (api != NULL && s != NULL) api->ReleaseSession((OrtSession *)s);
}

int vigil_ort_run(void *s, const char *in_name, float *in, const int64_t *shape, size_t ndim,
                  const char *const *out_names, size_t nout, void **values, float **data, size_t *counts,
                  char *err, int errlen) {
    size_t n = 1;
    for (size_t i = 0; i < ndim; i++) n *= (size_t)shape[i];
    OrtValue *input = NULL;
    if (status_err(api->CreateTensorWithDataAsOrtValue(cpu, in, n * sizeof(float), shape, ndim,
                                                       ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &input), err, errlen)) return -1;
    for (size_t i = 0; i < nout; i++) values[i] = NULL;
    const OrtValue *ins[1] = {input};
    int rc = status_err(api->Run((OrtSession *)s, NULL, &in_name, ins, 1, out_names, nout, (OrtValue **)values), err, errlen);
    api->ReleaseValue(input);
    for (size_t i = 0; rc == 0 && i < nout; i++) {
        OrtTensorTypeAndShapeInfo *info = NULL;
        rc = status_err(api->GetTensorTypeAndShape((OrtValue *)values[i], &info), err, errlen);
        if (rc == 0) {
            ONNXTensorElementDataType t;
            rc = status_err(api->GetTensorElementType(info, &t), err, errlen);
            if (rc == 0 && t != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
                copy_err(err, errlen, "an output is not float32");
                rc = -1;
            }
            if (rc == 0) rc = status_err(api->GetTensorShapeElementCount(info, &counts[i]), err, errlen);
            api->ReleaseTensorTypeAndShapeInfo(info);
        }
        if (rc == 0) rc = status_err(api->GetTensorMutableData((OrtValue *)values[i], (void **)&data[i]), err, errlen);
    }
    if (rc != 0) {
        for (size_t i = 0; i < nout; i++) {
            if (values[i] != NULL) api->ReleaseValue((OrtValue *)values[i]);
            values[i] = NULL;
        }
    }
    return rc;
}

void vigil_ort_value_free(void *v) {
    if (api != NULL && v != NULL) api->ReleaseValue((OrtValue *)v);
}
