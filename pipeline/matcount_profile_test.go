//go:build matprofile

package pipeline

import "gocv.io/x/gocv"

func gocvMatCount() int { return gocv.MatProfile.Count() }
