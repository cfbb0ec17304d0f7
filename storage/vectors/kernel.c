// Distance kernels of the vector index: one call scans many vectors, so the cgo call is paid once
// per block, not per vector. GCC vectorises the loops (AVX-512 or AVX2 chosen at run time through
// target_clones, plain SSE2 otherwise).
#include <stdint.h>
#include "kernel.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VG_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VG_CLONES
#endif

// Squared L2 distances from q to n vectors of dim float32 (a multiple of 16) laid out one after another.
VG_CLONES void vg_l2_f32(const float *q, const float *base, int64_t n, int dim, float *out) {
	for (int64_t i = 0; i < n; i++) {
		const float *v = base + i * dim;
		float acc[16] = {0};
		for (int j = 0; j < dim; j += 16) {
			for (int l = 0; l < 16; l++) {
				float d = v[j + l] - q[j + l];
				acc[l] += d * d;
			}
		}
		float s = 0;
		for (int l = 0; l < 16; l++) s += acc[l];
		out[i] = s;
	}
}

// Same, for rows picked by index (re-ranking, k-means assignment of a sample).
VG_CLONES void vg_l2_f32_rows(const float *q, const float *base, const int32_t *rows, int64_t n, int dim, float *out) {
	for (int64_t i = 0; i < n; i++) {
		const float *v = base + (int64_t)rows[i] * dim;
		float acc[16] = {0};
		for (int j = 0; j < dim; j += 16) {
			for (int l = 0; l < 16; l++) {
				float d = v[j + l] - q[j + l];
				acc[l] += d * d;
			}
		}
		float s = 0;
		for (int l = 0; l < 16; l++) s += acc[l];
		out[i] = s;
	}
}

// Dot products of an int8 query with n int8 vectors.
VG_CLONES void vg_dot_i8(const int8_t *q, const int8_t *base, int64_t n, int dim, int32_t *out) {
	for (int64_t i = 0; i < n; i++) {
		const int8_t *v = base + i * dim;
		int32_t s = 0; // integer sums reassociate freely: GCC vectorises this as a dot product
		for (int j = 0; j < dim; j++) s += (int16_t)v[j] * (int16_t)q[j];
		out[i] = s;
	}
}

// Dot products of an int8 query with n vectors of signed 4-bit codes, two per byte (the even
// value in the low nibble).
VG_CLONES void vg_dot_i4(const int8_t *q, const uint8_t *base, int64_t n, int dim, int32_t *out) {
	int half = dim / 2;
	for (int64_t i = 0; i < n; i++) {
		const uint8_t *v = base + i * half;
		int32_t s = 0;
		for (int j = 0; j < half; j++) {
			int8_t lo = (int8_t)(uint8_t)(v[j] << 4) >> 4;
			int8_t hi = (int8_t)v[j] >> 4;
			s += (int16_t)lo * (int16_t)q[2 * j] + (int16_t)hi * (int16_t)q[2 * j + 1];
		}
		out[i] = s;
	}
}
