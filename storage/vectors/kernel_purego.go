//go:build !cgo

package vectors

// Portable kernels for builds without cgo (several times slower than the C ones).

func l2(q []float32, base []float32, out []float32) {
	dim := len(q)
	for i := range len(base) / dim {
		out[i] = l2One(q, base[i*dim:(i+1)*dim])
	}
}

func l2Rows(q []float32, base []float32, rows []int32, out []float32) {
	dim := len(q)
	for i, r := range rows {
		out[i] = l2One(q, base[int(r)*dim:(int(r)+1)*dim])
	}
}

func l2One(q, v []float32) float32 {
	dim := len(q)
	var a, b, c, d float32
	for j := 0; j < dim; j += 4 {
		x0, x1, x2, x3 := v[j]-q[j], v[j+1]-q[j+1], v[j+2]-q[j+2], v[j+3]-q[j+3]
		a, b, c, d = a+x0*x0, b+x1*x1, c+x2*x2, d+x3*x3
	}
	return a + b + c + d
}

func dot8(q []int8, base []int8, out []int32) {
	dim := len(q)
	for i := range len(base) / dim {
		v := base[i*dim : (i+1)*dim]
		var s int32
		for j := range dim {
			s += int32(v[j]) * int32(q[j])
		}
		out[i] = s
	}
}

func dot4(q []int8, base []byte, out []int32) {
	half := len(q) / 2
	for i := range len(base) / half {
		v := base[i*half : (i+1)*half]
		var s int32
		for j, b := range v {
			s += int32(int8(b<<4)>>4)*int32(q[2*j]) + int32(int8(b)>>4)*int32(q[2*j+1])
		}
		out[i] = s
	}
}
