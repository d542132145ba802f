//go:build !unix

package bench

// syncAll would flush the file systems' dirty pages; off Unix the file
// rows run without it.
func syncAll() {}
