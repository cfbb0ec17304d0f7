package pipeline

import (
	"bytes"
	"image"
	"image/jpeg"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// Kinds of recognizer pool; each makes events of the same kind.
const (
	KindFace  = event.KindFace
	KindPlate = event.KindPlate
)

// Crop is a piece of a frame in BGR, in Go memory so it can cross goroutines.
type Crop struct {
	W, H int
	BGR  []byte
}

// JPEG encodes a crop (quality 85).
func (c *Crop) JPEG() []byte {
	if c == nil || c.W == 0 {
		return nil
	}
	img := image.NewRGBA(image.Rect(0, 0, c.W, c.H))
	for i, j := 0, 0; i < len(c.BGR); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = c.BGR[i+2], c.BGR[i+1], c.BGR[i], 255
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 85})
	return b.Bytes()
}
