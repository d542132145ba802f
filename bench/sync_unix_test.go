//go:build unix

package bench

import "syscall"

// syncAll flushes every file system's dirty pages, as sync(1).
func syncAll() { syscall.Sync() }
