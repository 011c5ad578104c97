package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config configures a Client.
type Config struct {
	// GlobalURL is the base URL of the global layer, e.g. http://127.0.0.1:8080.
	GlobalURL string
	// HTTP is the HTTP client; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

// Client is one player's view of cellgrid. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client

	mu      sync.Mutex
	session Session // guarded by mu
}

// Session is the result of a login.
type Session struct {
	PlayerID     string `json:"player_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// APIError is an error answer of a cellgrid HTTP API.
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("cellgrid api: %d %s: %s", e.Status, e.Code, e.Message)
}

// New returns a Client for the global layer at cfg.GlobalURL.
func New(cfg Config) (*Client, error) {
	if cfg.GlobalURL == "" {
		return nil, errors.New("client: GlobalURL required")
	}
	cfg.GlobalURL = strings.TrimRight(cfg.GlobalURL, "/")
	h := cfg.HTTP
	if h == nil {
		h = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{cfg: cfg, http: h}, nil
}

// PlayerID returns the logged-in player's id ("" before login).
func (c *Client) PlayerID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session.PlayerID
}

// LoginDevice logs in as a guest identified by deviceID (dev stacks only).
func (c *Client) LoginDevice(ctx context.Context, deviceID string) (Session, error) {
	return c.login(ctx, map[string]string{"provider": "device", "device_id": deviceID})
}

// LoginOIDC logs in with an ID token from a configured OIDC provider.
func (c *Client) LoginOIDC(ctx context.Context, idToken string) (Session, error) {
	return c.login(ctx, map[string]string{"provider": "oidc", "id_token": idToken})
}

func (c *Client) login(ctx context.Context, body any) (Session, error) {
	var s Session
	if err := c.do(ctx, http.MethodPost, c.cfg.GlobalURL+"/auth/login", body, &s, false); err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	c.mu.Lock()
	c.session = s
	c.mu.Unlock()
	return s, nil
}

// Refresh rotates the refresh token and gets a new access token.
func (c *Client) Refresh(ctx context.Context) (Session, error) {
	c.mu.Lock()
	rt := c.session.RefreshToken
	c.mu.Unlock()
	var s Session
	if err := c.do(ctx, http.MethodPost, c.cfg.GlobalURL+"/auth/refresh", map[string]string{"refresh_token": rt}, &s, false); err != nil {
		return Session{}, fmt.Errorf("refresh: %w", err)
	}
	c.mu.Lock()
	if s.PlayerID == "" {
		s.PlayerID = c.session.PlayerID
	}
	c.session = s
	c.mu.Unlock()
	return s, nil
}

// Get performs an authenticated GET of url into out (for APIs the SDK does
// not wrap yet, e.g. leaderboards or the wallet).
func (c *Client) Get(ctx context.Context, url string, out any) error {
	return c.do(ctx, http.MethodGet, url, nil, out, true)
}

// GlobalURL returns the global layer base URL.
func (c *Client) GlobalURL() string { return c.cfg.GlobalURL }

// do sends a JSON request and decodes a JSON answer; non-2xx answers become
// *APIError.
func (c *Client) do(ctx context.Context, method, url string, body, out any, auth bool) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		c.mu.Lock()
		tok := c.session.AccessToken
		c.mu.Unlock()
		if tok == "" {
			return errors.New("not logged in")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode}
		var env struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &env) == nil {
			ae.Code, ae.Message = env.Error.Code, env.Error.Message
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			var secs int
			if _, err := fmt.Sscan(ra, &secs); err == nil {
				ae.RetryAfter = time.Duration(secs) * time.Second
			}
		}
		return ae
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %s %s: %w", method, url, err)
		}
	}
	return nil
}
