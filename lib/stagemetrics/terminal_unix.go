//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package stagemetrics

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal: the terminal-attributes
// ioctl succeeds only on one.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlReadTermios)
	return err == nil
}
