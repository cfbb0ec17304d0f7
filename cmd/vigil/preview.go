package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"time"

	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/storage/footage"
	"github.com/vigil-oss/vigil/streams/decode"
)

// previewWidth is the width of a footage still (the review timeline's scrub preview).
const previewWidth = 320

// footagePreview makes stills of the recordings: the key frame at or before a time, decoded,
// its privacy masks blacked out, and scaled to width, as JPEG, with the time it was taken.
func footagePreview(c footage.Clipper) func(ctx context.Context, camera string, at time.Time, width int, masks privacy.Masks) ([]byte, time.Time, error) {
	return func(ctx context.Context, camera string, at time.Time, width int, masks privacy.Masks) ([]byte, time.Time, error) {
		u, t, err := c.KeyFrame(ctx, camera, at)
		if err != nil {
			return nil, time.Time{}, err
		}
		d, err := decode.New(u.Codec, decode.Options{Mode: decode.KeyOnly})
		if err != nil {
			return nil, time.Time{}, err
		}
		defer d.Close()
		f, err := d.Decode(u)
		if err != nil {
			return nil, time.Time{}, err
		}
		if f == nil {
			return nil, time.Time{}, errors.New("preview: the key frame gave no picture")
		}
		privacy.NewPainter(masks).BGR(f.BGR, f.Width, f.Height, f.Stride)
		return stillJPEG(f.BGR, f.Width, f.Height, f.Stride, cmp.Or(width, previewWidth)), t, nil
	}
}

// stillJPEG scales a BGR picture to width w (each output pixel the mean of the 2×2 source pixels
// nearest it) and encodes it.
func stillJPEG(bgr []byte, sw, sh, stride, w int) []byte {
	if w > sw {
		w = sw
	}
	h := sh * w / sw
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		y0 := y * sh / h
		y1 := min(y0+1, sh-1)
		for x := 0; x < w; x++ {
			x0 := x * sw / w
			x1 := min(x0+1, sw-1)
			var b, g, r int
			for _, p := range [4]int{y0*stride + x0*3, y0*stride + x1*3, y1*stride + x0*3, y1*stride + x1*3} {
				b, g, r = b+int(bgr[p]), g+int(bgr[p+1]), r+int(bgr[p+2])
			}
			o := img.PixOffset(x, y)
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = uint8(r/4), uint8(g/4), uint8(b/4), 255
		}
	}
	var out bytes.Buffer
	_ = jpeg.Encode(&out, img, &jpeg.Options{Quality: 80})
	return out.Bytes()
}
