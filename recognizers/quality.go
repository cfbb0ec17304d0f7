package recognizers

import (
	"image"
	"math"

	"gocv.io/x/gocv"
)

// Assess measures a face's quality: size, sharpness and pose.
func Assess(img gocv.Mat, f Face) Quality {
	q := Quality{}
	q.Size = clamp01(f.Box.H / 112)
	// Sharpness: variance of the Laplacian over the face box, on grey.
	r := image.Rect(int(f.Box.X), int(f.Box.Y), int(f.Box.X+f.Box.W), int(f.Box.Y+f.Box.H)).
		Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Dx() >= 8 && r.Dy() >= 8 {
		roi := img.Region(r)
		grey := gocv.NewMat()
		gocv.CvtColor(roi, &grey, gocv.ColorBGRToGray)
		lap := gocv.NewMat()
		gocv.Laplacian(grey, &lap, gocv.MatTypeCV64F, 3, 1, 0, gocv.BorderDefault)
		mean, std := gocv.NewMat(), gocv.NewMat()
		gocv.MeanStdDev(lap, &mean, &std)
		sd := std.GetDoubleAt(0, 0)
		q.Sharp = clamp01(float32(sd * sd / 300))
		for _, m := range []*gocv.Mat{&roi, &grey, &lap, &mean, &std} {
			m.Close()
		}
	}
	q.Yaw, q.Roll = Pose(f)
	q.Pose = clamp01(float32(math.Cos(float64(q.Yaw)*math.Pi/180) * math.Cos(float64(q.Roll)*math.Pi/180)))
	if a := float32(math.Abs(float64(q.Yaw))); a > 45 {
		q.Pose = 0
	}
	q.Score = q.Size * q.Sharp * q.Pose
	return q
}

// Pose estimates yaw (from the nose's offset between the eyes) and roll (from the eye line), in
// degrees. Crude but monotonic, which is all best-shot ranking and the enrolment gate need.
func Pose(f Face) (yaw, roll float32) {
	re, le, n := f.Landmarks[RightEye], f.Landmarks[LeftEye], f.Landmarks[Nose]
	dx, dy := float64(le.X-re.X), float64(le.Y-re.Y)
	eyes := math.Hypot(dx, dy)
	if eyes < 1 {
		return 90, 0
	}
	roll = float32(math.Atan2(dy, dx) * 180 / math.Pi)
	// Project the nose onto the eye line: 0.5 is centred.
	t := ((float64(n.X-re.X))*dx + (float64(n.Y-re.Y))*dy) / (eyes * eyes)
	off := math.Max(-1, math.Min(1, (t-0.5)*2))
	yaw = float32(math.Asin(off) * 180 / math.Pi)
	return yaw, roll
}

func clamp01(v float32) float32 {
	return float32(math.Max(0, math.Min(1, float64(v))))
}
