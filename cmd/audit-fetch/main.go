package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditfetch"
)

func main() { os.Exit(auditfetch.Main()) }
