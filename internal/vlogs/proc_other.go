//go:build !unix

package vlogs

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate kills at once: there is no SIGTERM here.
func terminate(p *os.Process) error { return p.Kill() }
