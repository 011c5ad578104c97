// Package sourcelimit rate-limits events per source (an IP, an ip:port) with
// one token bucket per source in a map of bounded size, so a flood from many
// sources costs bounded memory. The relay and the DGS use it to limit HELLOs
// before any signature check.
package sourcelimit
