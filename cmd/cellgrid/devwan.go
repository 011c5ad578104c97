package main

import "github.com/cellgrid/cellgrid/devstack"

// wanLayout is the dev stack's WAN from --wan / --wan-config (nil: none).
func wanLayout(on bool, path string) (*devstack.WAN, error) {
	if path != "" {
		return devstack.LoadWAN(path)
	}
	if on {
		return devstack.DefaultWAN(), nil
	}
	return nil, nil
}
