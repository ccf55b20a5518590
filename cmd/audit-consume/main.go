package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditconsume"
)

func main() { os.Exit(auditconsume.Main()) }
