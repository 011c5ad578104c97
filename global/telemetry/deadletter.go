package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/proto/events"
)

// deadLetterNS names the ids of dead letters that carry no UUID of their
// own (uuid.NewSHA1 of the raw bytes): a redelivered one is stored once.
var deadLetterNS = uuid.MustParse("6f1d3c2a-5b8e-4f0a-9d7c-1e2b3a4c5d6e")

// deadLetter is one row of telemetry_dead_letter.
type deadLetter struct {
	id                      uuid.UUID
	player                  *uuid.UUID
	cell, eventType, reason string
	raw                     []byte
}

func newDeadLetter(e *events.TelemetryEvent, reason string) deadLetter {
	raw, err := json.Marshal(e)
	if err != nil {
		raw = []byte(fmt.Sprintf("%q", fmt.Sprint(*e)))
	}
	d := deadLetter{cell: e.Cell, eventType: e.EventType, reason: reason, raw: raw}
	if id, err := uuid.Parse(e.EventID); err == nil {
		d.id = id
	} else {
		d.id = uuid.NewSHA1(deadLetterNS, raw)
	}
	if p, err := uuid.Parse(e.PlayerID); err == nil {
		d.player = &p
	}
	return d
}

// refused reports whether err is the database refusing the data itself
// (SQLSTATE class 22 data exception, e.g. 22P05 "unsupported Unicode escape
// sequence" for \u0000 in JSONB or 22021 for a NUL byte in text; class 23
// integrity constraint; class 54 program limit exceeded). Redelivery cannot
// change such an answer, so the event is dead-lettered. Any other error
// (connection, timeout, a bug in our SQL) is transient: the batch is
// redelivered, nothing is dead-lettered.
func refused(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// clean makes s storable in a TEXT column: valid UTF-8, no NUL, at most
// max bytes.
func clean(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// storeDeadLetters inserts letters in one transaction, once each.
func (t *Telemetry) storeDeadLetters(ctx context.Context, letters []deadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	err := db.RunTx(ctx, t.db, func(ctx context.Context, tx pgx.Tx) error {
		for _, d := range letters {
			if _, err := tx.Exec(ctx, `INSERT INTO telemetry_dead_letter (id, player_id, cell, event_type, reason, raw)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
				d.id, d.player, clean(d.cell, 64), clean(d.eventType, 128), clean(d.reason, 1000), d.raw); err != nil {
				return fmt.Errorf("insert dead letter: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("telemetry dead letters (%d): %w", len(letters), err)
	}
	return nil
}

// deadLetterMessages stores messages that are not telemetry batches at all.
func (t *Telemetry) deadLetterMessages(ctx context.Context, msgs []jetstream.Msg) error {
	letters := make([]deadLetter, 0, len(msgs))
	for _, m := range msgs {
		var b events.TelemetryBatch
		err := json.Unmarshal(m.Data(), &b)
		reason := "message is not a telemetry batch"
		if err != nil {
			reason += ": " + err.Error()
		}
		t.log.Error("telemetry: undecodable batch, dead-lettered", "err", err)
		letters = append(letters, deadLetter{id: uuid.NewSHA1(deadLetterNS, m.Data()), reason: reason, raw: m.Data()})
	}
	return t.storeDeadLetters(ctx, letters)
}
