//go:build !unix

package main

import "os/exec"

// killGroupOnCancel leaves cmd's default cancellation (kill the process):
// process groups are a Unix notion.
func killGroupOnCancel(*exec.Cmd) {}
