package main

import (
	"os"

	"github.com/auditpipe/auditpipe/stage/auditsample"
)

func main() { os.Exit(auditsample.Main()) }
