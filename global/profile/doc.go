// Package profile serves what a player is to others and to themselves:
//
//	GET    /player/{playerId}/profile  public profile (username, level, XP,
//	                                   created_at, last_login_at; never the email).
//	                                   {playerId} may be "me".
//	PATCH  /player/me                  {"username"}: 3–20 of [A-Za-z0-9_],
//	                                   unique regardless of case (409 when taken).
//	GET    /player/me/export           everything stored about the caller (GDPR
//	                                   access): profile with the decrypted email,
//	                                   identities, refresh-family metadata, wallet,
//	                                   inventory, ledger, sessions, leaderboard
//	                                   records, event log.
//	DELETE /player/me                  erasure: username and email cleared,
//	                                   erased_at set, identities and refresh
//	                                   families deleted; ledger rows stay, keyed
//	                                   by the now anonymous player id.
//
// Every route needs an access token (requireAuth); the player is the
// token's subject.
package profile
