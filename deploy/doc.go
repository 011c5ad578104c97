// Package deploy holds what operators load into their monitoring: Grafana
// dashboards (grafana/*.json) and Prometheus alert rules with their
// promtool unit tests (prometheus/). It has no code; its tests hold the
// files to the code: well-formed dashboards, rules that promtool accepts
// and whose unit tests pass, and no metric name that the code does not
// register.
package deploy
