//go:build unix && !linux

package vlogs

import (
	"os"
	"syscall"
)

// sysProcAttr puts the server in its own process group, so a terminal's
// Ctrl-C goes to the caller, which stops the server in order.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
