package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditship"
)

func main() { os.Exit(auditship.Main()) }
