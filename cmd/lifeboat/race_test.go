//go:build race

package main

// raceEnabled: the race detector is on (tests that repeat a command
// hundreds of times cut their length).
const raceEnabled = true
