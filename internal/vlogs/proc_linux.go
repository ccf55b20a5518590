package vlogs

import (
	"os"
	"syscall"
)

// sysProcAttr puts the server in its own process group (a terminal's Ctrl-C
// goes to the caller, which stops the server in order) and has the kernel
// SIGKILL it if the caller dies without calling Stop (a test binary killed
// on timeout, say). Pdeathsig fires when the OS thread that started the
// server exits; Go keeps threads alive unless a goroutine exits while locked
// to one with runtime.LockOSThread, so do not call Start from such a
// goroutine.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
