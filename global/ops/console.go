package ops

import (
	"embed"
	"net/http"
)

// consoleFiles are the console's page and script: plain files, no build
// step, nothing fetched from elsewhere (the console works offline).
//
//go:embed console/console.html console/console.js
var consoleFiles embed.FS

func consoleHandler(name, contentType string) http.Handler {
	body, err := consoleFiles.ReadFile("console/" + name)
	if err != nil {
		panic("ops: console file missing: " + name) // embedded at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}
