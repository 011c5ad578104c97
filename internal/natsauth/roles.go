package natsauth

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/natscreds"
)

// Kind is a role's kind.
type Kind string

// The roles. Admin may do anything; it exists for tests and the dev
// stack's own readiness checks and is never handed to a component.
const (
	KindGlobal Kind = "global"
	KindCell   Kind = "cell"
	KindRelay  Kind = "relay"
	KindOps    Kind = "ops"
	KindDGS    Kind = "dgs"
	KindAdmin  Kind = "admin"
)

// Role is who a credential speaks for: a kind, and for cells, relays and
// DGSs the cell (and DGS id) it is bound to.
type Role struct {
	Kind Kind
	Cell string
	// ID is the DGS id (KindDGS only).
	ID string
}

// Global is the global layer's role.
func Global() Role { return Role{Kind: KindGlobal} }

// Cell is the role of cell id's processes.
func Cell(id string) Role { return Role{Kind: KindCell, Cell: id} }

// Relay is the role of a relay of cell id.
func Relay(cell string) Role { return Role{Kind: KindRelay, Cell: cell} }

// Ops is the operators' role: drain, undrain (and later failover).
func Ops() Role { return Role{Kind: KindOps} }

// DGS is the role of one game server of a cell.
func DGS(cell, id string) Role { return Role{Kind: KindDGS, Cell: cell, ID: id} }

// Admin may publish and subscribe anything (tests, readiness checks).
func Admin() Role { return Role{Kind: KindAdmin} }

// Name is the user name in the JWT; it is one subject token and names the
// role's private inbox prefix (_INBOX.<name>).
func (r Role) Name() string {
	switch r.Kind {
	case KindCell, KindRelay:
		return string(r.Kind) + "_" + r.Cell
	case KindDGS:
		return r.ID
	}
	return string(r.Kind)
}

func (r Role) validate() error {
	switch r.Kind {
	case KindGlobal, KindOps, KindAdmin:
		return nil
	case KindCell, KindRelay:
		if !token(r.Cell) {
			return fmt.Errorf("natsauth: role %s: bad cell id %q", r.Kind, r.Cell)
		}
		return nil
	case KindDGS:
		if !token(r.Cell) || !token(r.ID) {
			return fmt.Errorf("natsauth: dgs role: bad cell %q or id %q", r.Cell, r.ID)
		}
		return nil
	}
	return fmt.Errorf("natsauth: unknown role kind %q", r.Kind)
}

// token reports whether s is a usable single subject token.
func token(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c == '.' || c == '*' || c == '>' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			return false
		}
	}
	return true
}

// streamAPI lists the JetStream API subjects that manage one stream and its
// consumers (info, create, update, consumers, pull requests, acks), and
// nothing of any other stream.
func streamAPI(stream string) []string {
	return []string{
		"$JS.API.STREAM.*." + stream,
		"$JS.API.STREAM.*.*." + stream, // MSG.GET, MSG.DELETE
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.*." + stream,
		"$JS.API.CONSUMER.*." + stream + ".>",
		"$JS.API.CONSUMER.*.*." + stream + ".>",
		"$JS.ACK." + stream + ".>",
	}
}

func perms(pub, sub []string, respond bool) jwt.Permissions {
	p := jwt.Permissions{Pub: jwt.Permission{Allow: pub}, Sub: jwt.Permission{Allow: sub}}
	// An empty allow list means "anything" to NATS: deny everything
	// instead.
	if len(pub) == 0 {
		p.Pub.Deny = jwt.StringList{">"}
	}
	if len(sub) == 0 {
		p.Sub.Deny = jwt.StringList{">"}
	}
	if respond {
		// Answer requests received on an allowed subject (one reply
		// each, within a minute) without a publish grant on the
		// requester's inbox.
		p.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: time.Minute}
	}
	return p
}

// Permissions returns what a role may publish and subscribe. A DGS's
// permissions come from its cell's scoped signing key (DGSTemplate); this
// returns the same subjects expanded for r.ID.
func (r Role) Permissions() jwt.Permissions {
	inbox := natscreds.InboxPrefix(r.Name()) + ".>"
	switch r.Kind {
	case KindGlobal:
		// The global layer creates its sourcing streams and consumers
		// (anywhere in the account), follows every cell's heartbeat and
		// pushes token revocations to the cells.
		// It is also the only writer of the region failover bucket and
		// answers the ops' region requests.
		return perms(
			// Its ops console drains cells for humans holding the ops role
			// (checked on their access token), so it may send drains too.
			[]string{"$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV." + events.RegionBucket + ".>", events.RevocationSubject,
				"cellgrid.cells.*.drain"},
			// (and its ops console follows every DGS and session, read only)
			[]string{events.CellHeartbeatFilter, events.RevocationListSubject, events.RegionOpsSubject,
				events.DGSHealthFilter("*"), "match.*.session.*", inbox},
			true)
	case KindCell:
		c, tok := r.Cell, events.MatchStream(r.Cell)
		pub := []string{
			events.CellHeartbeatSubject(c),
			fmt.Sprintf("cellgrid.%s.dgs.*.allocate", c),
			fmt.Sprintf("cellgrid.%s.dgs.*.shutdown", c),
			fmt.Sprintf("cellgrid.%s.dgs.*.cancel", c),
			fmt.Sprintf("match.%s.session.>", c),
			events.TelemetrySubjects(c),
			events.RevocationListSubject,
			events.CellOverflowSubject("*"), // ask a peer cell to host a match
			"$JS.API.INFO",
		}
		pub = append(pub, streamAPI(tok)...)
		pub = append(pub, streamAPI(events.TelemetryStream(c))...)
		// Read-only watch of the region failover bucket (an ordered
		// consumer on its stream; the cell never writes it).
		pub = append(pub, "$JS.API.STREAM.INFO.KV_"+events.RegionBucket,
			"$JS.API.CONSUMER.CREATE.KV_"+events.RegionBucket+".>", "$JS.API.CONSUMER.DELETE.KV_"+events.RegionBucket+".>",
			"$JS.API.CONSUMER.INFO.KV_"+events.RegionBucket+".>", "$JS.FC.KV_"+events.RegionBucket+".>")
		return perms(pub,
			[]string{events.DGSHealthFilter(c), events.CellDrainSubject(c), events.CellOverflowSubject(c),
				events.CellHeartbeatFilter, events.RevocationSubject, inbox},
			true)
	case KindRelay:
		// Relays run inside the cell process today and use no NATS; a
		// separate relay may follow revocations and its cell's drains.
		return perms(nil, []string{events.RevocationSubject, inbox}, false)
	case KindOps:
		// Drain, undrain; `cell remove` also watches a cell's DGS
		// heartbeats (read only) to know when its matches are over.
		return perms([]string{"cellgrid.cells.*.drain", events.RegionOpsSubject}, []string{events.DGSHealthFilter("*"), inbox}, false)
	case KindDGS:
		return expandName(DGSTemplate(r.Cell), r.ID)
	case KindAdmin:
		return perms([]string{">"}, []string{">"}, true)
	}
	return jwt.Permissions{}
}

// DGSTemplate is the permission template of a cell's DGS signing key;
// {{name()}} is the DGS id (the user JWT's name). A DGS may: publish its
// own heartbeat and its own results (JetStream publish, plus the stream
// info the SDK checks first); receive its own allocation and shutdown
// requests and answer them; read its own inbox. Nothing else: not a cell
// heartbeat, not a drain, not another DGS's result or heartbeat.
func DGSTemplate(cell string) jwt.Permissions {
	const id = "{{name()}}"
	return perms(
		[]string{
			events.DGSHealthSubject(cell, id),
			events.MatchResultSubject(cell, id),
			"$JS.API.STREAM.INFO." + events.MatchStream(cell),
		},
		[]string{fmt.Sprintf("cellgrid.%s.dgs.%s.>", cell, id), natscreds.InboxPrefix(id) + ".>"},
		true)
}

func expandName(p jwt.Permissions, name string) jwt.Permissions {
	exp := func(l jwt.StringList) jwt.StringList {
		out := make(jwt.StringList, len(l))
		for i, s := range l {
			out[i] = strings.ReplaceAll(s, "{{name()}}", name)
		}
		return out
	}
	p.Pub.Allow, p.Sub.Allow = exp(p.Pub.Allow), exp(p.Sub.Allow)
	return p
}
