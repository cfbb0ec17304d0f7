//go:build !matprofile

package pipeline

func gocvMatCount() int { return 0 }
