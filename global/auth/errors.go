package auth

import "errors"

// Sentinel errors. The HTTP handlers map them to status codes in one place
// (wireErrors in handlers.go).
var (
	// ErrInvalidIDToken: the ID token failed verification (signature, alg,
	// issuer, audience, expiry) or lacks a subject.
	ErrInvalidIDToken = errors.New("invalid id token")
	// ErrIssuerUnavailable: the issuer's discovery document or keys could not
	// be fetched. Retryable.
	ErrIssuerUnavailable = errors.New("identity provider unavailable")
	// ErrDeviceLoginDisabled: guest/device login is off in this config.
	ErrDeviceLoginDisabled = errors.New("device login disabled")
	// ErrInvalidDeviceID: the device id is too short, too long or has
	// characters outside [A-Za-z0-9._:-].
	ErrInvalidDeviceID = errors.New("invalid device id")
	// ErrInvalidRefreshToken: unknown, expired or revoked refresh token.
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	// ErrRefreshTokenReused: the refresh token was already rotated; its
	// whole family has been revoked.
	ErrRefreshTokenReused = errors.New("refresh token reused")
	// ErrNotYourToken: the refresh token belongs to another player.
	ErrNotYourToken = errors.New("refresh token belongs to another player")
	// ErrBadKey: the encryption key is not 32 bytes, or sealed data does not
	// open under it.
	ErrBadKey = errors.New("bad encryption key")
	// ErrInvalidUsername: a username breaks the rules (3–20 chars of
	// [A-Za-z0-9_]).
	ErrInvalidUsername = errors.New("invalid username")
)
