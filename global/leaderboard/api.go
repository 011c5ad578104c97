package leaderboard

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/google/uuid"
)

// Register mounts
//
//	GET /leaderboards/{name}?limit=&cursor=&region=&around=me|{playerId}&season=
//
// behind requireAuth (around=me needs the caller).
func (l *Leaderboards) Register(mux httpapi.Mux, requireAuth func(http.Handler) http.Handler) {
	mux.Handle("GET /leaderboards/{name}", requireAuth(httpapi.Handle(l.handleRead)))
}

func (l *Leaderboards) handleRead(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := Query{Board: r.PathValue("name"), Region: v.Get("region")}
	if q.Region != "" && !regionRe.MatchString(q.Region) {
		return httpapi.BadRequest("invalid_region", "invalid region")
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > l.cfg.MaxLimit {
			return httpapi.BadRequest("invalid_limit", "limit must be 1.."+strconv.Itoa(l.cfg.MaxLimit))
		}
		q.Limit = n
	}
	if s := v.Get("season"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return httpapi.BadRequest("invalid_season", "season must be a non-negative integer")
		}
		q.Season = &n
	}
	if s := v.Get("cursor"); s != "" {
		off, ok := decodeCursor(s)
		if !ok {
			return httpapi.BadRequest("invalid_cursor", "invalid cursor")
		}
		q.Offset = off
	}
	switch a := v.Get("around"); {
	case a == "":
	case a == "me":
		c, ok := accesstoken.FromContext(r.Context())
		if !ok {
			return httpapi.Unauthorized("around=me needs an access token")
		}
		q.Around = c.PlayerID
	default:
		id, err := uuid.Parse(a)
		if err != nil {
			return httpapi.BadRequest("invalid_player_id", "around must be \"me\" or a player id")
		}
		q.Around = id.String()
	}
	if q.Around != "" && q.Offset != 0 {
		return httpapi.BadRequest("invalid_request", "around and cursor are exclusive")
	}
	page, err := l.Read(r.Context(), q)
	if err != nil {
		return wireErrors.Wire(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
	return nil
}

// wireErrors maps the package's sentinel errors to the wire, once.
var wireErrors = httpapi.ErrorTable{
	{Err: ErrUnknownBoard, Status: http.StatusNotFound, Code: "unknown_leaderboard", Message: "no such leaderboard"},
	{Err: ErrNotRanked, Status: http.StatusNotFound, Code: "not_ranked", Message: "player has no record on this leaderboard"},
	{Err: ErrUnknownSeason, Status: http.StatusNotFound, Code: "unknown_season", Message: "no such season"},
	{Err: ErrBadRegion, Status: http.StatusBadRequest, Code: "invalid_region", Message: "this leaderboard has no regional boards"},
}

var regionRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Cursors are opaque to clients: "o" + the offset, base64url.
func encodeCursor(offset int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.FormatInt(offset, 10)))
}

func decodeCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), "o")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil && n >= 0 && n < 1<<40
}
