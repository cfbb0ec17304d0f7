#include <stdint.h>
#define VG_DIM 128
void vg_l2_f32(const float *q, const float *base, int64_t n, float *out);
void vg_l2_f32_rows(const float *q, const float *base, const int32_t *rows, int64_t n, float *out);
void vg_dot_i8(const int8_t *q, const int8_t *base, int64_t n, int32_t *out);
