package achievement

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// Register mounts, behind requireAuth:
//
//	GET /player/{playerId}/achievements   ("me" = caller; achievements are public)
//	GET /player/me/storage/{key}
//	PUT /player/me/storage/{key}          (If-Match: "<v>" | If-None-Match: *)
func (a *Achievements) Register(mux httpapi.Mux, requireAuth func(http.Handler) http.Handler) {
	mux.Handle("GET /player/{playerId}/achievements", requireAuth(httpapi.Handle(a.handleList)))
	mux.Handle("GET /player/me/storage/{key}", requireAuth(httpapi.Handle(a.handleGet)))
	mux.Handle("PUT /player/me/storage/{key}", requireAuth(httpapi.Handle(a.handlePut)))
}

var keyRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (a *Achievements) handleList(w http.ResponseWriter, r *http.Request) error {
	me, err := accesstoken.Caller(r)
	if err != nil {
		return err
	}
	player := me
	if p := r.PathValue("playerId"); p != "me" {
		if player, err = uuid.Parse(p); err != nil {
			return httpapi.BadRequest("invalid_player_id", "player id must be a UUID or \"me\"")
		}
	}
	list, err := a.List(r.Context(), player)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"player_id": player, "achievements": list})
	return nil
}

func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

func (a *Achievements) storageKey(r *http.Request) (uuid.UUID, string, error) {
	me, err := accesstoken.Caller(r)
	if err != nil {
		return me, "", err
	}
	key := r.PathValue("key")
	if !keyRe.MatchString(key) {
		return me, "", httpapi.BadRequest("invalid_key", "key must match [A-Za-z0-9_.-]{1,64}")
	}
	return me, key, nil
}

func (a *Achievements) handleGet(w http.ResponseWriter, r *http.Request) error {
	me, key, err := a.storageKey(r)
	if err != nil {
		return err
	}
	v, ver, err := a.Get(r.Context(), me, key)
	if err != nil {
		return wireErrors.Wire(err)
	}
	w.Header().Set("ETag", etag(ver))
	if inm := r.Header.Get("If-None-Match"); inm == etag(ver) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(v)
	return nil
}

func (a *Achievements) handlePut(w http.ResponseWriter, r *http.Request) error {
	me, key, err := a.storageKey(r)
	if err != nil {
		return err
	}
	ifMatch, ifNone := strings.TrimSpace(r.Header.Get("If-Match")), strings.TrimSpace(r.Header.Get("If-None-Match"))
	var want int64
	switch {
	case ifNone == "*" && ifMatch == "":
	case ifMatch == "*" && ifNone == "":
		want = AnyVersion
	case ifMatch != "" && ifNone == "":
		n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(ifMatch, "W/"), `"`), 10, 64)
		if err != nil || n < 1 {
			return httpapi.BadRequest("invalid_if_match", "If-Match must be an ETag returned by GET")
		}
		want = n
	default:
		return wireErrors.Wire(ErrPreconditionRequired)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &httpapi.Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "body must be application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxValueBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return wireErrors.Wire(ErrTooLarge)
	}
	if err != nil {
		return httpapi.BadRequest("invalid_body", "could not read body")
	}
	if err := checkStorageValue(body); err != nil {
		return err
	}
	var ver int64
	status := http.StatusOK
	if ifNone == "*" {
		ver, err = a.Create(r.Context(), me, key, body)
		status = http.StatusCreated
	} else {
		ver, err = a.Update(r.Context(), me, key, body, want)
	}
	if err != nil {
		return wireErrors.Wire(err)
	}
	w.Header().Set("ETag", etag(ver))
	httpapi.WriteJSON(w, status, map[string]any{"key": key, "version": ver})
	return nil
}

// checkStorageValue accepts a stored value only as a JSON document in
// UTF-8 (RFC 8259): json.Valid alone lets invalid UTF-8 through, which GET
// and the data export would then hand back as malformed JSON.
func checkStorageValue(body []byte) error {
	if !utf8.Valid(body) {
		return httpapi.BadRequest("invalid_utf8", "value must be UTF-8")
	}
	if !json.Valid(body) {
		return httpapi.BadRequest("invalid_json", "value must be a JSON document")
	}
	return nil
}

// wireErrors maps the package's sentinel errors to the wire, once.
var wireErrors = httpapi.ErrorTable{
	{Err: ErrNotFound, Status: http.StatusNotFound, Code: "not_found", Message: "no such key"},
	{Err: ErrPreconditionFailed, Status: http.StatusPreconditionFailed, Code: "version_conflict", Message: "the stored version does not match the precondition"},
	{Err: ErrPreconditionRequired, Status: http.StatusPreconditionRequired, Code: "precondition_required", Message: "send If-Match: <etag> to update or If-None-Match: * to create"},
	{Err: ErrTooLarge, Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "value too large or too many keys"},
}
