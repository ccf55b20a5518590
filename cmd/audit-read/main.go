package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditread"
)

func main() { os.Exit(auditread.Main()) }
