// Package ndjson reads and writes newline-delimited JSON as raw lines: the
// input and output layer of every binary. The Reader returns each line's
// bytes exactly as they are (never parsed), undoes gzip or zstd, and
// reports a line that is too long, truncated, holds a NUL or is not UTF-8
// as a *LineError the caller may step past; any other error is fatal. The
// Writer writes each line plus "\n" and its errors are sticky. The rules
// every stage thereby applies to its input: docs/design.md, "lib/ndjson".

package ndjson
