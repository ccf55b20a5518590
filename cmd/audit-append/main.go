package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditappend"
)

func main() { os.Exit(auditappend.Main()) }
