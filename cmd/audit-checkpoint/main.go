package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditcheckpoint"
)

func main() { os.Exit(auditcheckpoint.Main()) }
