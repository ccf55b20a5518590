package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditack"
)

func main() { os.Exit(auditack.Main()) }
