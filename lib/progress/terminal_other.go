//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package progress

import "os"

// isTerminal is false where there is no termios: no progress line.
func isTerminal(f *os.File) bool { return false }

func openLock(f *os.File) int { return -1 }
func tryLockTTY(fd int) bool  { return true }
func unlockTTY(fd int)        {}
func closeLock(fd int)        {}
