package main

import (
	"image"
	"image/png"
	"io"
)

func imageNRGBA(w, h int) image.Image              { return image.NewNRGBA(image.Rect(0, 0, w, h)) }
func pngEncode(w io.Writer, img image.Image) error { return png.Encode(w, img) }
