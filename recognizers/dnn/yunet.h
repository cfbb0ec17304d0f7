#ifndef VIGIL_YUNET_H
#define VIGIL_YUNET_H
#ifdef __cplusplus
extern "C" {
#endif

typedef void *VigilYuNet;

// vigil_yunet_new loads a YuNet model for w×h inputs; on failure it returns NULL and writes err.
VigilYuNet vigil_yunet_new(const char *model, int w, int h, float score, float nms, int topk, char *err, int errlen);
// vigil_yunet_detect runs detection on a BGR cv::Mat (passed as void*), writing up to max rows
// of 15 floats. Returns the number of faces, or -1 with err written.
int vigil_yunet_detect(VigilYuNet d, void *mat, float *out, int max, char *err, int errlen);
void vigil_yunet_free(VigilYuNet d);
// vigil_set_threads sets OpenCV's worker thread count (cv::setNumThreads).
void vigil_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
