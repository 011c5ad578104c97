package auth

import (
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

type loginRequest struct {
	Provider string `json:"provider"`
	IDToken  string `json:"id_token,omitempty"`
	DeviceID string `json:"device_id,omitempty"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// tokenResponse is the body of a successful login or refresh.
type tokenResponse struct {
	PlayerID     string `json:"player_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"` // seconds
	TokenType    string `json:"token_type"`
}

func writeTokens(w http.ResponseWriter, t Tokens) {
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, tokenResponse{
		PlayerID: t.PlayerID.String(), AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
		ExpiresIn: int(t.ExpiresIn / time.Second), TokenType: "Bearer",
	})
}

func (a *Auth) handle(h httpapi.Handler) http.Handler {
	return httpapi.Handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := h(w, r); err != nil {
			return a.httpError(r, err)
		}
		return nil
	})
}

// wireErrors maps the package's sentinel errors to the wire, once.
var wireErrors = httpapi.ErrorTable{
	{Err: ErrInvalidIDToken, Status: 401, Code: "invalid_id_token", Message: "id token refused"},
	{Err: ErrIssuerUnavailable, Status: 503, Code: "issuer_unavailable", Message: "identity provider unavailable", RetryAfter: discoveryRetry},
	{Err: ErrDeviceLoginDisabled, Status: 403, Code: "device_login_disabled", Message: "device login is disabled"},
	{Err: ErrInvalidDeviceID, Status: 400, Code: "invalid_device_id", Message: "device_id must be 16-128 characters of [A-Za-z0-9_.:-]"},
	{Err: ErrRefreshTokenReused, Status: 401, Code: "refresh_token_reused", Message: "refresh token already used; session revoked"},
	{Err: ErrInvalidRefreshToken, Status: 401, Code: "invalid_refresh_token", Message: "refresh token invalid, expired or revoked"},
	{Err: ErrNotYourToken, Status: 403, Code: "forbidden", Message: "refresh token belongs to another player"},
}

// httpError maps err through wireErrors and logs what is not a client
// error.
func (a *Auth) httpError(r *http.Request, err error) error {
	if !wireErrors.Known(err) {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	return wireErrors.Wire(err)
}

func (a *Auth) handleLogin(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	if a.limits != nil {
		if err := a.check(a.limits.loginSource, "login per source", a.limits.sourceKey(r)); err != nil {
			return err
		}
	}
	var req loginRequest
	if err := httpapi.DecodeJSON(w, r, &req, a.cfg.MaxBody); err != nil {
		return err
	}
	var (
		t   Tokens
		err error
	)
	switch req.Provider {
	case "oidc":
		if req.IDToken == "" || req.DeviceID != "" {
			return httpapi.BadRequest("invalid_request", "provider oidc needs id_token (and no device_id)")
		}
		t, err = a.loginOIDCLimited(r.Context(), req.IDToken)
	case "device":
		if req.DeviceID == "" || req.IDToken != "" {
			return httpapi.BadRequest("invalid_request", "provider device needs device_id (and no id_token)")
		}
		if a.limits != nil {
			if err := a.check(a.limits.loginIdentity, "login per identity", deviceIssuer+"\x00"+req.DeviceID); err != nil {
				return err
			}
		}
		t, err = a.LoginDevice(r.Context(), req.DeviceID)
	default:
		return httpapi.BadRequest("unknown_provider", `provider must be "oidc" or "device"`)
	}
	if he := (*httpapi.Error)(nil); errors.As(err, &he) && he.Status == http.StatusTooManyRequests {
		return err
	}
	switch {
	case err == nil && t.NewPlayer:
		a.m.logins.WithLabelValues(req.Provider, "new_player").Inc()
	case err == nil:
		a.m.logins.WithLabelValues(req.Provider, "ok").Inc()
	case errors.Is(err, ErrInvalidIDToken) || errors.Is(err, ErrDeviceLoginDisabled) || errors.Is(err, ErrInvalidDeviceID):
		a.m.logins.WithLabelValues(req.Provider, "refused").Inc()
		return err
	default:
		a.m.logins.WithLabelValues(req.Provider, "error").Inc()
		return err
	}
	a.m.loginDur.WithLabelValues(req.Provider).Observe(time.Since(start).Seconds())
	writeTokens(w, t)
	return nil
}

func (a *Auth) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	if a.limits != nil {
		if err := a.check(a.limits.refreshSource, "refresh per source", a.limits.sourceKey(r)); err != nil {
			return err
		}
	}
	var req refreshRequest
	if err := httpapi.DecodeJSON(w, r, &req, a.cfg.MaxBody); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return httpapi.BadRequest("invalid_request", "refresh_token is required")
	}
	if a.limits != nil {
		if err := a.check(a.limits.refreshIdentity, "refresh per token", string(hashRefresh(req.RefreshToken))); err != nil {
			return err
		}
	}
	t, err := a.Refresh(r.Context(), req.RefreshToken)
	switch {
	case err == nil:
		a.m.refreshes.WithLabelValues("ok").Inc()
	case errors.Is(err, ErrRefreshTokenReused):
		a.m.refreshes.WithLabelValues("reused").Inc()
		return err
	case errors.Is(err, ErrInvalidRefreshToken):
		a.m.refreshes.WithLabelValues("invalid").Inc()
		return err
	default:
		a.m.refreshes.WithLabelValues("error").Inc()
		return err
	}
	writeTokens(w, t)
	return nil
}

func (a *Auth) handleLogout(w http.ResponseWriter, r *http.Request) error {
	claims, ok := accesstoken.FromContext(r.Context())
	if !ok {
		return httpapi.Unauthorized("missing access token")
	}
	playerID, err := uuid.Parse(claims.PlayerID)
	if err != nil {
		return httpapi.Unauthorized("bad subject")
	}
	var req refreshRequest
	if r.ContentLength != 0 {
		if err := httpapi.DecodeJSON(w, r, &req, a.cfg.MaxBody); err != nil {
			return err
		}
	}
	var fam uuid.UUID
	if req.RefreshToken == "" {
		if fam, err = uuid.Parse(claims.Family); err != nil {
			return httpapi.BadRequest("invalid_request", "refresh_token is required")
		}
	}
	if err := a.Logout(r.Context(), playerID, req.RefreshToken, fam); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Auth) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	set, err := a.keys.JWKS(r.Context())
	if err != nil {
		return httpapi.Unavailable("signing keys unavailable", time.Second)
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	httpapi.WriteJSON(w, http.StatusOK, set)
	return nil
}
