#include <stdint.h>
// dim: the vectors' length, a multiple of 16.
void vg_l2_f32(const float *q, const float *base, int64_t n, int dim, float *out);
void vg_l2_f32_rows(const float *q, const float *base, const int32_t *rows, int64_t n, int dim, float *out);
void vg_dot_i8(const int8_t *q, const int8_t *base, int64_t n, int dim, int32_t *out);
void vg_dot_i4(const int8_t *q, const uint8_t *base, int64_t n, int dim, int32_t *out);
