package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditbatch"
)

func main() { os.Exit(auditbatch.Main()) }
