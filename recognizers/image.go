package recognizers

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig knows these formats' headers
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"

	"gocv.io/x/gocv"
	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"
)

// Limits for pictures handed to vigil (uploads, analyze, enrolment).
const (
	MaxImageBytes  = 32 << 20 // 32 MiB
	MaxImagePixels = 40e6     // 40 megapixels: a 20000×20000 header is refused before decoding
	MaxImageSide   = 16384
)

// ErrTooLarge means a picture exceeds the size limits.
var ErrTooLarge = errors.New("recognizers: image too large")

// DecodeImage checks a picture's header against the limits, then decodes it to 8-bit BGR. The
// caller closes the Mat.
func DecodeImage(data []byte) (gocv.Mat, error) {
	if len(data) == 0 {
		return gocv.Mat{}, fmt.Errorf("%w: empty file", ErrBadImage)
	}
	if len(data) > MaxImageBytes {
		return gocv.Mat{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxImageBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return gocv.Mat{}, fmt.Errorf("%w: not a JPEG, PNG, GIF, BMP or WebP image (%v)", ErrBadImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxImageSide || cfg.Height > MaxImageSide ||
		float64(cfg.Width)*float64(cfg.Height) > MaxImagePixels {
		return gocv.Mat{}, fmt.Errorf("%w: %s header says %dx%d (limits %d px a side, %.0f megapixels)",
			ErrTooLarge, format, cfg.Width, cfg.Height, MaxImageSide, MaxImagePixels/1e6)
	}
	m, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || m.Empty() {
		if err == nil {
			m.Close()
		}
		return gocv.Mat{}, fmt.Errorf("%w: %s data is corrupt", ErrBadImage, format)
	}
	return m, nil
}

// LoadImage reads and decodes a picture file within the limits.
func LoadImage(path string) (gocv.Mat, error) {
	f, err := os.Open(path)
	if err != nil {
		return gocv.Mat{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxImageBytes+1))
	if err != nil {
		return gocv.Mat{}, err
	}
	return DecodeImage(data)
}
