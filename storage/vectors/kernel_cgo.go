//go:build cgo

package vectors

// #cgo CFLAGS: -O3 -std=c11
// #include "kernel.h"
import "C"

import "unsafe"

// l2 writes the squared L2 distance from q to each dim-float vector of base into out.
func l2(q []float32, base []float32, out []float32) {
	dim := len(q)
	n := len(base) / dim
	if n == 0 {
		return
	}
	_ = out[n-1]
	C.vg_l2_f32((*C.float)(unsafe.Pointer(&q[0])), (*C.float)(unsafe.Pointer(&base[0])), C.int64_t(n), C.int(dim), (*C.float)(unsafe.Pointer(&out[0])))
}

// l2Rows is l2 over the rows of base picked by rows.
func l2Rows(q []float32, base []float32, rows []int32, out []float32) {
	if len(rows) == 0 {
		return
	}
	_ = out[len(rows)-1]
	C.vg_l2_f32_rows((*C.float)(unsafe.Pointer(&q[0])), (*C.float)(unsafe.Pointer(&base[0])), (*C.int32_t)(unsafe.Pointer(&rows[0])), C.int64_t(len(rows)), C.int(len(q)), (*C.float)(unsafe.Pointer(&out[0])))
}

// dot8 writes the dot product of q with each dim-byte vector of base into out.
func dot8(q []int8, base []int8, out []int32) {
	dim := len(q)
	n := len(base) / dim
	if n == 0 {
		return
	}
	_ = out[n-1]
	C.vg_dot_i8((*C.int8_t)(unsafe.Pointer(&q[0])), (*C.int8_t)(unsafe.Pointer(&base[0])), C.int64_t(n), C.int(dim), (*C.int32_t)(unsafe.Pointer(&out[0])))
}

// dot4 writes the dot product of q with each vector of signed 4-bit codes (dim/2 bytes) of base.
func dot4(q []int8, base []byte, out []int32) {
	half := len(q) / 2
	n := len(base) / half
	if n == 0 {
		return
	}
	_ = out[n-1]
	C.vg_dot_i4((*C.int8_t)(unsafe.Pointer(&q[0])), (*C.uint8_t)(unsafe.Pointer(&base[0])), C.int64_t(n), C.int(len(q)), (*C.int32_t)(unsafe.Pointer(&out[0])))
}
