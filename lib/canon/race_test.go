//go:build race

package canon

// canonRace is true under the race detector, where sync.Pool drops items at
// random and allocation counts mean nothing.
const canonRace = true
