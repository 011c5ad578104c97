package profile

import (
	"net/http"
	"strconv"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/google/uuid"
)

type patchRequest struct {
	Username *string `json:"username"`
}

// statusWriter remembers the status for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (p *Profiles) handle(op string, h httpapi.Handler) http.Handler {
	inner := httpapi.Handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := h(w, r); err != nil {
			return p.httpError(r, err)
		}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		inner(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		p.requests.WithLabelValues(op, strconv.Itoa(sw.status)).Inc()
	})
}

// wireErrors maps the package's sentinel errors to the wire, once.
var wireErrors = httpapi.ErrorTable{
	{Err: ErrNotFound, Status: 404, Code: "not_found", Message: "player not found"},
	{Err: ErrUsernameTaken, Status: 409, Code: "username_taken", Message: "username is taken"},
	{Err: auth.ErrInvalidUsername, Status: 400, Code: "invalid_username", Message: "username must be 3-20 characters of A-Z, a-z, 0-9 and _"},
}

// httpError maps err through wireErrors and logs what is not a client
// error.
func (p *Profiles) httpError(r *http.Request, err error) error {
	if !wireErrors.Known(err) {
		p.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	return wireErrors.Wire(err)
}

func (p *Profiles) handleGet(w http.ResponseWriter, r *http.Request) error {
	var id uuid.UUID
	if s := r.PathValue("playerId"); s == "me" {
		var err error
		if id, err = accesstoken.Caller(r); err != nil {
			return err
		}
	} else {
		var err error
		if id, err = uuid.Parse(s); err != nil {
			return httpapi.NotFound("player not found")
		}
	}
	pub, err := p.Get(r.Context(), id)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, pub)
	return nil
}

func (p *Profiles) handlePatch(w http.ResponseWriter, r *http.Request) error {
	id, err := accesstoken.Caller(r)
	if err != nil {
		return err
	}
	var req patchRequest
	if err := httpapi.DecodeJSON(w, r, &req, p.cfg.MaxBody); err != nil {
		return err
	}
	if req.Username == nil {
		return httpapi.BadRequest("invalid_request", "nothing to change")
	}
	pub, err := p.SetUsername(r.Context(), id, *req.Username)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, pub)
	return nil
}

func (p *Profiles) handleExport(w http.ResponseWriter, r *http.Request) error {
	id, err := accesstoken.Caller(r)
	if err != nil {
		return err
	}
	ex, err := p.Export(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="cellgrid-export-`+id.String()+`.json"`)
	httpapi.WriteJSON(w, http.StatusOK, ex)
	return nil
}

func (p *Profiles) handleErase(w http.ResponseWriter, r *http.Request) error {
	id, err := accesstoken.Caller(r)
	if err != nil {
		return err
	}
	if err := p.Erase(r.Context(), id); err != nil {
		return err
	}
	p.log.Info("player erased", "player_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
