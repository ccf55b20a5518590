package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditcursor"
)

func main() { os.Exit(auditcursor.Main()) }
