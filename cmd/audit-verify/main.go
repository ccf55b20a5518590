package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditverify"
)

func main() { os.Exit(auditverify.Main()) }
