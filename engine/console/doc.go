// Package console is the operator's web console (lifeboat serve): an
// overview of every policy (last run, next run, snapshot age against the
// RPO, replication and archive lag, the last drill) with red/amber/green
// and the reason in words, run and drill history with charts, a snapshot
// browser (metadata with the host key, downloads with the owner key),
// optional actions (run or drill now), /metrics and /healthz. Pages are
// rendered on the server with html/template; assets are embedded.
package console
