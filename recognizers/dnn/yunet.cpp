#include <opencv2/core.hpp>
#include <opencv2/objdetect.hpp>
#include <cstring>
#include <string>
#include "yunet.h"

static void copy_err(char *err, int errlen, const std::string &msg) {
    if (errlen <= 0) return;
    std::strncpy(err, msg.c_str(), errlen - 1);
    err[errlen - 1] = 0;
}

VigilYuNet vigil_yunet_new(const char *model, int w, int h, float score, float nms, int topk, char *err, int errlen) {
    try {
        cv::Ptr<cv::FaceDetectorYN> d = cv::FaceDetectorYN::create(model, "", cv::Size(w, h), score, nms, topk);
        if (d.empty()) { copy_err(err, errlen, "FaceDetectorYN::create returned nothing"); return nullptr; }
        return new cv::Ptr<cv::FaceDetectorYN>(d);
    } catch (const cv::Exception &e) {
        copy_err(err, errlen, e.what());
    } catch (const std::exception &e) {
        copy_err(err, errlen, e.what());
    }
    return nullptr;
}

int vigil_yunet_detect(VigilYuNet d, void *mat, float *out, int max, char *err, int errlen) {
    try {
        cv::Ptr<cv::FaceDetectorYN> &det = *static_cast<cv::Ptr<cv::FaceDetectorYN> *>(d);
        cv::Mat &img = *static_cast<cv::Mat *>(mat);
        if (det->getInputSize() != img.size()) det->setInputSize(img.size());
        cv::Mat faces;
        det->detect(img, faces);
        int n = faces.empty() ? 0 : faces.rows;
        if (n > max) n = max;
        for (int i = 0; i < n; i++) {
            const float *row = faces.ptr<float>(i);
            std::memcpy(out + i * 15, row, 15 * sizeof(float));
        }
        return n;
    } catch (const cv::Exception &e) {
        copy_err(err, errlen, e.what());
    } catch (const std::exception &e) {
        copy_err(err, errlen, e.what());
    }
    return -1;
}

void vigil_yunet_free(VigilYuNet d) {
    delete static_cast<cv::Ptr<cv::FaceDetectorYN> *>(d);
}

void vigil_set_threads(int n) { cv::setNumThreads(n); }
