package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
)

// MaxEventSize is the largest encoded event, in bytes, that any tomkit sink
// accepts. A larger event is refused with [ErrEventTooLarge]; it is never
// truncated.
const MaxEventSize = 64 << 10

// Outcome is the result of the audited action.
type Outcome string

// The outcomes. An empty Outcome is invalid: a caller that does not know
// whether an action was allowed has not decided, and tomkit does not guess.
const (
	OutcomeAllow Outcome = "allow"
	OutcomeDeny  Outcome = "deny"
	OutcomeError Outcome = "error"
)

// Severity ranks an event for alerting. The zero Severity is [SeverityInfo].
type Severity string

// The severities, from least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityNotice   Severity = "notice"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Actor is who acted, and for which tenant. It is the one place in tomkit
// where identity and tenant are defined: every other package takes the
// caller's identity from an Actor, usually through [WithActor] and
// [ActorFrom].
type Actor struct {
	// Subject is the authenticated principal: a user id, a service
	// account. Empty means unauthenticated.
	Subject string `json:"subject"`
	// Tenant is the tenant the subject acts in. Empty means none, which
	// every tomkit guard treats as deny.
	Tenant string `json:"tenant"`
}

// Attr is one attribute of an event.
//
// An attribute marked Personal holds personal data (an e-mail address, a
// client's name). Sinks never write its plaintext: a [Pseudonymizer]
// replaces it with a keyed HMAC or a redaction marker first, and a sink that
// has none redacts it.
type Attr struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Personal bool   `json:"personal,omitempty"`
}

// String returns a plain attribute.
func String(key, value string) Attr { return Attr{Key: key, Value: value} }

// Personal returns an attribute that holds personal data. See [Attr].
func Personal(key, value string) Attr { return Attr{Key: key, Value: value, Personal: true} }

// Event is one audit record. Its JSON encoding is stable and documented in
// the package overview; fields are only ever added.
type Event struct {
	// Time is when the action happened. Zero means "now" and is filled
	// in by [Event.Normalize]; it is always written in UTC.
	Time  time.Time `json:"time"`
	Actor Actor     `json:"actor"`
	// Action names what was attempted, as "package.verb", for example
	// "rbac.decide", "crypto.rotate", "retention.purge".
	Action   string   `json:"action"`
	Resource string   `json:"resource,omitempty"`
	Outcome  Outcome  `json:"outcome"`
	Reason   string   `json:"reason,omitempty"`
	Severity Severity `json:"severity"`
	// RequestID correlates the event with a request. Zero is taken from
	// ctx when it carries one (see [WithRequestID]).
	RequestID string `json:"request_id,omitempty"`
	// TraceID and SpanID are taken from the OpenTelemetry span in ctx by
	// [Event.Normalize] when they are empty.
	TraceID    string `json:"trace_id,omitempty"`
	SpanID     string `json:"span_id,omitempty"`
	Attributes []Attr `json:"attributes,omitempty"`
	// Escaped names the fields whose text was not valid UTF-8 and was
	// escaped by [Event.Normalize] (see [EscapeText]): "resource",
	// "actor.subject", "attributes.2.value" and so on. Nil means none was.
	// Callers leave it empty; a field listed here is decoded with
	// [UnescapeText].
	Escaped []string `json:"escaped,omitempty"`
}

// Logger records audit events. It is the one interface the other tomkit
// packages depend on.
//
// Log returns only once the event is recorded as the implementation
// promises (for the file log: durable on disk). A non-nil error means the
// event may not have been recorded, and the caller must treat the audited
// action as failed: tomkit never "logs and allows".
type Logger interface {
	Log(ctx context.Context, e Event) error
}

// Errors returned for events that cannot be recorded.
var (
	// ErrInvalidEvent reports an event that is missing a required field
	// or carries an unknown outcome or severity. Text that is not valid
	// UTF-8 is escaped and marked (see [Event.Escaped]), never refused.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrEventTooLarge reports an event whose encoding exceeds
	// [MaxEventSize].
	ErrEventTooLarge = errors.New("audit: event too large")
	// ErrNoLogger is returned by constructors across tomkit that were
	// given no audit Logger: auditing is not optional.
	ErrNoLogger = errors.New("audit: no logger configured")
)

// Normalize fills in defaults from ctx and checks e. It sets Time to now
// when zero and converts it to UTC, sets Severity to info when empty, takes
// the actor, request id and trace context from ctx where e leaves them
// empty, escapes every text field that is not valid UTF-8 and lists it in
// [Event.Escaped], and returns [ErrInvalidEvent] when the event is
// incomplete. Request-derived text (a path, a header) is therefore
// recorded faithfully and never refused for its encoding. Sinks call it;
// callers need not.
func (e Event) Normalize(ctx context.Context) (Event, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	if e.Severity == "" {
		e.Severity = SeverityInfo
	}
	if e.Actor == (Actor{}) {
		e.Actor = ActorFrom(ctx)
	}
	if e.RequestID == "" {
		e.RequestID = RequestIDFrom(ctx)
	}
	if e.TraceID == "" && e.SpanID == "" {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			e.TraceID = sc.TraceID().String()
			e.SpanID = sc.SpanID().String()
		}
	}
	e.escape()
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// escape replaces every text field that is not valid UTF-8 by its
// [EscapeText] form and records the field's name in e.Escaped. Valid text
// is left alone, so escape is idempotent. It never modifies the caller's
// Attributes array.
func (e *Event) escape() {
	fix := func(name string, s *string) {
		if !utf8.ValidString(*s) {
			*s = EscapeText(*s)
			e.Escaped = append(e.Escaped, name)
		}
	}
	if !utf8.ValidString(e.Actor.Subject) || !utf8.ValidString(e.Actor.Tenant) || !utf8.ValidString(e.Action) ||
		!utf8.ValidString(e.Resource) || !utf8.ValidString(e.Reason) || !utf8.ValidString(e.RequestID) ||
		!utf8.ValidString(e.TraceID) || !utf8.ValidString(e.SpanID) || !attrsValid(e.Attributes) || !stringsValid(e.Escaped) {
		e.Escaped = append([]string(nil), e.Escaped...)
		for i := range e.Escaped {
			if !utf8.ValidString(e.Escaped[i]) {
				e.Escaped[i] = EscapeText(e.Escaped[i])
			}
		}
		fix("actor.subject", &e.Actor.Subject)
		fix("actor.tenant", &e.Actor.Tenant)
		fix("action", &e.Action)
		fix("resource", &e.Resource)
		fix("reason", &e.Reason)
		fix("request_id", &e.RequestID)
		fix("trace_id", &e.TraceID)
		fix("span_id", &e.SpanID)
		if !attrsValid(e.Attributes) {
			attrs := append([]Attr(nil), e.Attributes...)
			for i := range attrs {
				fix("attributes."+strconv.Itoa(i)+".key", &attrs[i].Key)
				fix("attributes."+strconv.Itoa(i)+".value", &attrs[i].Value)
			}
			e.Attributes = attrs
		}
	}
}

func attrsValid(as []Attr) bool {
	for _, a := range as {
		if !utf8.ValidString(a.Key) || !utf8.ValidString(a.Value) {
			return false
		}
	}
	return true
}

func stringsValid(ss []string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// EscapeText returns s in a form that is valid UTF-8 and from which
// [UnescapeText] recovers s exactly: every byte that is not part of a
// valid UTF-8 sequence (including overlong and surrogate encodings)
// becomes \xHH with two upper-case hex digits, and every backslash
// becomes \\. Valid characters are kept as they are.
// [Event.Normalize] applies it only to text that is not valid UTF-8 and
// marks the field in [Event.Escaped].
func EscapeText(s string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, '\\', 'x', hex[s[i]>>4], hex[s[i]&0xf])
		case r == '\\':
			b = append(b, '\\', '\\')
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// UnescapeText reverses [EscapeText]. It returns [ErrInvalidEvent] for
// text that EscapeText cannot have produced.
func UnescapeText(s string) (string, error) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b = append(b, '\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x' && isUpperHex(s[i+2]) && isUpperHex(s[i+3]):
			b = append(b, unhex(s[i+2])<<4|unhex(s[i+3]))
			i += 3
		default:
			return "", fmt.Errorf("%w: bad escape at byte %d", ErrInvalidEvent, i)
		}
	}
	return string(b), nil
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

func (e *Event) validate() error {
	if e.Action == "" {
		return fmt.Errorf("%w: empty action", ErrInvalidEvent)
	}
	switch e.Outcome {
	case OutcomeAllow, OutcomeDeny, OutcomeError:
	default:
		return fmt.Errorf("%w: unknown outcome %q", ErrInvalidEvent, e.Outcome)
	}
	switch e.Severity {
	case SeverityInfo, SeverityNotice, SeverityWarning, SeverityCritical:
	default:
		return fmt.Errorf("%w: unknown severity %q", ErrInvalidEvent, e.Severity)
	}
	// Text is valid UTF-8 here: Normalize and Marshal escape it first,
	// and Unmarshal checks its input.
	for _, a := range e.Attributes {
		if a.Key == "" {
			return fmt.Errorf("%w: attribute with empty key", ErrInvalidEvent)
		}
	}
	return nil
}

// Marshal returns the stable JSON encoding of e, after [Event.Normalize]
// has checked it. Text that is not valid UTF-8 is escaped and marked as
// Normalize does. It returns [ErrEventTooLarge] when the encoding exceeds
// [MaxEventSize]. Personal attributes are encoded as they are: pass e
// through a [Pseudonymizer] first.
func (e Event) Marshal() ([]byte, error) {
	e.escape()
	if err := e.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrEventTooLarge, len(b), MaxEventSize)
	}
	return b, nil
}

// Unmarshal parses the JSON encoding of an event and checks it. Unknown
// fields are ignored, so that older readers accept newer records.
func Unmarshal(b []byte) (Event, error) {
	if len(b) > MaxEventSize {
		return Event{}, fmt.Errorf("%w: %d bytes, limit %d", ErrEventTooLarge, len(b), MaxEventSize)
	}
	if !utf8.Valid(b) {
		return Event{}, fmt.Errorf("%w: invalid UTF-8", ErrInvalidEvent)
	}
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

type ctxKey int

const (
	actorKey ctxKey = iota
	requestIDKey
)

// WithActor returns a copy of ctx that carries a. Authentication middleware
// calls it once; every tomkit guard reads it back with [ActorFrom].
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// ActorFrom returns the Actor carried by ctx, or the zero Actor, which
// every tomkit guard treats as unauthenticated and denies.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey).(Actor)
	return a
}

// WithRequestID returns a copy of ctx that carries a request id for
// [Event.RequestID].
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestIDFrom returns the request id carried by ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}
