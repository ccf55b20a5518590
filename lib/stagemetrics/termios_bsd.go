//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package stagemetrics

import "golang.org/x/sys/unix"

const ioctlReadTermios = unix.TIOCGETA
