//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package stagemetrics

import "os"

// isTerminal is false where there is no termios: no progress line.
func isTerminal(f *os.File) bool { return false }
