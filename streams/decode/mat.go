package decode

import "gocv.io/x/gocv"

// Mat copies the frame into a new 8UC3 Mat that the caller owns and must Close.
func (f *Frame) Mat() (gocv.Mat, error) {
	view, err := gocv.NewMatFromBytes(f.Height, f.Width, gocv.MatTypeCV8UC3, f.BGR)
	if err != nil {
		return gocv.Mat{}, err
	}
	defer view.Close() // view borrows the decoder's buffer; the clone owns its pixels
	return view.Clone(), nil
}
