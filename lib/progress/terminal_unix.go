//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package progress

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal: the terminal-attributes
// ioctl succeeds only on one.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlReadTermios)
	return err == nil
}

// openLock opens the terminal f is, anew: a descriptor of its own, whose
// flock excludes the other stages' (a pipeline's stages share the shell's
// descriptor of the terminal, and a flock on that would not). -1 if it
// cannot be opened.
func openLock(f *os.File) int {
	fd, err := unix.Open(fmt.Sprintf("/dev/fd/%d", f.Fd()), unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1
	}
	return fd
}

func tryLockTTY(fd int) bool { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil }
func unlockTTY(fd int)       { unix.Flock(fd, unix.LOCK_UN) }
func closeLock(fd int)       { unix.Close(fd) }
