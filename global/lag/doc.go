// Package lag exports how far the global layer's JetStream consumers are
// behind (match results, the telemetry sink, anything else with a durable
// consumer) as Prometheus gauges, read from the consumers' info at scrape
// time: the numbers the result-lag and sink-lag alerts watch.
package lag
