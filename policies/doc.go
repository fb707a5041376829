// Package policies reads, validates and documents lifeboat policy files.
//
// A policy is one YAML file (docs/policy.md) naming what to back up
// (targets), where (a primary repository and secondaries), when (a systemd
// calendar), how long to keep it (retention), what to promise (RPO/RTO
// objectives), how to prove it (drills), how to export sanitized dumps and
// whom to tell. Load and Parse are strict: unknown keys are errors, and
// every problem is reported at once with its file, line and column
// (ValidationErrors). Secrets are never inline: only *_file paths and
// env:NAME references. Defaults are applied after validation.
//
// The package does no I/O beyond reading the policy file (and the host
// name, time zone database and, when asked, the given environment); it
// knows nothing about viper or cobra.
package policies
