package testenv

import (
	"net/http"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// PlayerHeader is the header TrustPlayerHeader reads the caller from.
const PlayerHeader = "X-Player"

// AsPlayer returns r as an authenticated request from player, the way
// the access-token middleware leaves it (the token itself is
// accesstoken's concern, tested there).
func AsPlayer(r *http.Request, player string) *http.Request {
	return r.WithContext(accesstoken.WithClaims(r.Context(), accesstoken.Claims{PlayerID: player}))
}

// TrustPlayerHeader stands in for the access-token middleware in handler
// tests (pass it as requireAuth): the caller is the X-Player header, and
// a request without it gets 401.
func TrustPlayerHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.Header.Get(PlayerHeader)
		if p == "" {
			httpapi.WriteError(w, httpapi.Unauthorized("no player"))
			return
		}
		next.ServeHTTP(w, AsPlayer(r, p))
	})
}

// AuthAs stands in for the access-token middleware in handler tests:
// every request comes from player.
func AuthAs(player string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, AsPlayer(r, player))
		})
	}
}
