package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/audit/internal/frame"
	"github.com/tomkit/tomkit/internal/testclock"
	"golang.org/x/mod/sumdb/note"
)

type testKeys struct {
	signer   *audit.Signer
	verifier note.Verifier
	skey     string
	vkey     string
}

func newKeys(t testing.TB, name string) testKeys {
	t.Helper()
	skey, vkey, err := audit.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{s, v, skey, vkey}
}

func testEvent(i int) audit.Event {
	return audit.Event{
		Time:     time.Date(2026, 11, 22, 10, 0, 0, i, time.UTC),
		Actor:    audit.Actor{Subject: fmt.Sprintf("user-%d", i%7), Tenant: "acme"},
		Action:   "doc.read",
		Resource: fmt.Sprintf("doc/%d", i),
		Outcome:  audit.OutcomeAllow,
	}
}

func openLog(t testing.TB, dir string, k testKeys, cfg audit.FileConfig) *audit.FileLog {
	t.Helper()
	cfg.Signer = k.signer
	if cfg.Clock == nil {
		cfg.Clock = testclock.New(nil, nil) // never ticks unless the test says so
	}
	l, err := audit.Open(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFileLogRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{SegmentSize: 4 << 10})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := l.Log(ctx, testEvent(g*100+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(ctx, testEvent(0)); !errors.Is(err, audit.ErrLogClosed) {
		t.Fatalf("Log after Close: %v, want ErrLogClosed", err)
	}
	rep, err := audit.Verify(ctx, dir, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 400 || rep.Checkpoint.Size != 400 || rep.Residue != 0 {
		t.Fatalf("report %+v", rep)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(segs) < 3 {
		t.Fatalf("%d segments, want rotation", len(segs))
	}

	// Reopen and continue: one continuous tree across opens and segments.
	l = openLog(t, dir, k, audit.FileConfig{SegmentSize: 4 << 10})
	if l.Recovered() != 0 {
		t.Fatalf("recovered %d bytes after clean close", l.Recovered())
	}
	if err := l.Log(ctx, testEvent(1000)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := audit.Verify(ctx, dir, k.verifier); err != nil || rep.Size != 401 {
		t.Fatalf("after reopen: %+v, %v", rep, err)
	}
}

func TestFileLogBadInput(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{})
	defer l.Close()

	tests := []struct {
		name string
		e    audit.Event
		want error
	}{
		{"no action", audit.Event{Outcome: audit.OutcomeAllow}, audit.ErrInvalidEvent},
		{"bad outcome", audit.Event{Action: "a.b", Outcome: "maybe"}, audit.ErrInvalidEvent},
		{"too large", audit.Event{Action: "a.b", Outcome: audit.OutcomeAllow, Reason: strings.Repeat("x", audit.MaxEventSize)}, audit.ErrEventTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Log(ctx, tt.e); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(ctx, dir, k.verifier); err != nil || rep.Size != 0 {
		t.Fatalf("refused events were written: %+v %v", rep, err)
	}
}

// TestFileLogEscapesInvalidUTF8 checks that events whose text is not valid
// UTF-8 are recorded, escaped and marked, not refused; a personal value is
// escaped, then pseudonymized like any other.
func TestFileLogEscapesInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{})
	for _, e := range []audit.Event{
		{Action: "a.b", Outcome: audit.OutcomeAllow, Resource: "\xff\xfe"},
		{Action: "a.b", Outcome: audit.OutcomeAllow, Attributes: []audit.Attr{audit.Personal("x", "\xc0")}},
	} {
		if err := l.Log(ctx, e); err != nil {
			t.Fatalf("Log(%+v): %v", e, err)
		}
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(ctx, dir, k.verifier); err != nil || rep.Size != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	want := []struct{ field, value string }{{"resource", `\xFF\xFE`}, {"attributes.0.value", audit.Redacted}}
	for i, w := range want {
		p, err := audit.Prove(ctx, dir, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		e, _, err := audit.CheckInclusion(k.verifier, p)
		if err != nil {
			t.Fatal(err)
		}
		got := e.Resource
		if i == 1 {
			got = e.Attributes[0].Value
		}
		if len(e.Escaped) != 1 || e.Escaped[0] != w.field || got != w.value {
			t.Errorf("record %d: escaped %q value %q, want [%s] %q", i, e.Escaped, got, w.field, w.value)
		}
	}
	l.Close()
}

func TestFileLogLocked(t *testing.T) {
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{})
	_, err := audit.Open(context.Background(), dir, audit.FileConfig{Signer: k.signer})
	if !errors.Is(err, audit.ErrLogLocked) {
		t.Fatalf("second Open: %v, want ErrLogLocked", err)
	}
	l.Close()
	l2 := openLog(t, dir, k, audit.FileConfig{})
	l2.Close()
}

func TestVerifyBadInput(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	other := newKeys(t, "test.example/log")

	empty := t.TempDir()
	if _, err := audit.Verify(ctx, empty, k.verifier); !errors.Is(err, audit.ErrEmptyLog) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := audit.Verify(ctx, filepath.Join(empty, "nope"), k.verifier); err == nil {
		t.Fatal("missing dir verified")
	}
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{})
	l.Log(ctx, testEvent(1))
	l.Close()
	if _, err := audit.Verify(ctx, dir, other.verifier); !errors.Is(err, audit.ErrWrongKey) {
		t.Fatalf("wrong key: %v, want ErrWrongKey", err)
	}
	if _, err := audit.Open(ctx, dir, audit.FileConfig{Signer: other.signer}); !errors.Is(err, audit.ErrWrongKey) {
		t.Fatalf("open with wrong key: %v, want ErrWrongKey", err)
	}
	before := dirBytes(t, dir)
	if _, err := audit.Open(ctx, dir, audit.FileConfig{Signer: other.signer}); !errors.Is(err, audit.ErrWrongSigner) {
		t.Fatalf("open with wrong key: %v, want ErrWrongSigner", err)
	}
	if after := dirBytes(t, dir); after != before {
		t.Fatal("open with wrong key changed the log directory")
	}
	if rep, err := audit.Verify(ctx, dir, k.verifier); err != nil || rep.Size != 1 {
		t.Fatalf("after open with wrong key: %+v %v", rep, err)
	}
	if _, err := audit.Open(ctx, dir, audit.FileConfig{}); !errors.Is(err, audit.ErrNoSigner) {
		t.Fatalf("open without signer: %v", err)
	}
	if _, err := audit.NewVerifier("garbage"); !errors.Is(err, audit.ErrBadKey) {
		t.Fatalf("bad verifier key: %v", err)
	}
	if _, err := audit.NewSigner(k.vkey); !errors.Is(err, audit.ErrBadKey) {
		t.Fatalf("verifier key as signer: %v", err)
	}

	// A corrupted segment: garbage in the middle of a record.
	seg := filepath.Join(dir, "seg-00000000000000000000.log")
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0xff
	os.WriteFile(seg, b, 0o600)
	_, err := audit.Verify(ctx, dir, k.verifier)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Index != 0 || ve.Kind != audit.KindModified {
		t.Fatalf("corrupted segment: %v", err)
	}
	// Open refuses to extend a tampered log.
	if _, err := audit.Open(ctx, dir, audit.FileConfig{Signer: k.signer}); !errors.As(err, &ve) {
		t.Fatalf("open tampered: %v", err)
	}
}

func TestCheckpointsWhenIdle(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	tick := make(chan time.Time)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := openLog(t, dir, k, audit.FileConfig{Clock: testclock.New(clock, tick)})
	if err := l.Log(ctx, audit.Event{Action: "a.b", Outcome: audit.OutcomeAllow}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
		tick <- now // the writer takes the tick ...
	}
	// ... and handles it before answering the next request.
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 1 || !cp.Time.Equal(now) {
		t.Fatalf("checkpoint %+v", cp)
	}
	l.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "checkpoints"))
	// initial, 3 ticks, explicit, close
	if n := bytes.Count(b, []byte("\ntime ")); n != 6 {
		t.Fatalf("%d checkpoints, want 6", n)
	}
	rep, err := audit.Verify(ctx, dir, k.verifier)
	if err != nil || !rep.Checkpoint.Time.Equal(now) {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestPersonalNeverOnDisk(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	const secret = "erika.mustermann@example.com"
	e := audit.Event{Action: "a.b", Outcome: audit.OutcomeAllow, Attributes: []audit.Attr{audit.Personal("email", secret), audit.String("plan", "gold")}}

	// Without a Pseudonymizer: redacted.
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{})
	if err := l.Log(ctx, e); err != nil {
		t.Fatal(err)
	}
	l.Close()
	assertNotInDir(t, dir, secret)
	if e.Attributes[0].Value != secret {
		t.Fatal("Log modified the caller's attributes")
	}
	p, _ := audit.Prove(ctx, dir, 0)
	got, _, err := audit.CheckInclusion(k.verifier, p)
	if err != nil || got.Attributes[0].Value != audit.Redacted || got.Attributes[1].Value != "gold" {
		t.Fatalf("redaction: %+v %v", got, err)
	}

	// With one: searchable by the key holder, across a rotation.
	old, _ := audit.NewPseudonymizer(audit.PseudonymKey{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)})
	dir = t.TempDir()
	l = openLog(t, dir, k, audit.FileConfig{Pseudonymizer: old})
	l.Log(ctx, e)
	l.Close()
	rotated, err := audit.NewPseudonymizer(audit.PseudonymKey{ID: "k2", Secret: bytes.Repeat([]byte{2}, 32)},
		audit.PseudonymKey{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, k, audit.FileConfig{Pseudonymizer: rotated})
	l.Log(ctx, e)
	l.Close()
	assertNotInDir(t, dir, secret)
	for i, id := range []string{"k1", "k2"} {
		want, err := rotated.Pseudonym(id, secret)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := audit.Prove(ctx, dir, int64(i))
		got, _, err := audit.CheckInclusion(k.verifier, p)
		if err != nil || got.Attributes[0].Value != want || !strings.HasPrefix(want, "hmac-sha256:"+id+":") {
			t.Fatalf("record %d: %q, want %q (%v)", i, got.Attributes[0].Value, want, err)
		}
	}
	if _, err := audit.NewPseudonymizer(audit.PseudonymKey{ID: "k", Secret: []byte("short")}); !errors.Is(err, audit.ErrBadPseudonymKey) {
		t.Fatalf("short key: %v", err)
	}
}

func assertNotInDir(t *testing.T, dir, s string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.Contains(b, []byte(s)) {
			t.Fatalf("plaintext %q found in %s", s, e.Name())
		}
	}
}

func TestProofs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{SegmentSize: 2 << 10})
	for i := 0; i < 37; i++ {
		l.Log(ctx, testEvent(i))
	}
	old, _ := l.Checkpoint(ctx)
	for i := 37; i < 100; i++ {
		l.Log(ctx, testEvent(i))
	}
	l.Close()
	for _, i := range []int64{0, 1, 36, 64, 99} {
		p, err := audit.Prove(ctx, dir, i)
		if err != nil {
			t.Fatal(err)
		}
		e, cp, err := audit.CheckInclusion(k.verifier, p)
		if err != nil || e.Resource != fmt.Sprintf("doc/%d", i) || cp.Size != 100 {
			t.Fatalf("proof %d: %+v %v", i, e, err)
		}
		p.Record = strings.Replace(p.Record, "doc/", "dok/", 1)
		if _, _, err := audit.CheckInclusion(k.verifier, p); !errors.Is(err, audit.ErrBadProof) {
			t.Fatalf("forged record accepted: %v", err)
		}
	}
	if _, err := audit.Prove(ctx, dir, 100); !errors.Is(err, audit.ErrNotCovered) {
		t.Fatalf("prove beyond end: %v", err)
	}
	cp, err := audit.ProveConsistency(ctx, dir, old.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.CheckConsistency(k.verifier, cp); err != nil {
		t.Fatal(err)
	}
	cp.Old, cp.New = cp.New, cp.Old
	if err := audit.CheckConsistency(k.verifier, cp); !errors.Is(err, audit.ErrBadProof) {
		t.Fatalf("swapped consistency proof: %v", err)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{SegmentSize: 2 << 10})
	for i := 0; i < 200; i++ {
		l.Log(ctx, testEvent(i))
	}
	if _, err := l.Prune(ctx, -1); !errors.Is(err, audit.ErrBadIndex) {
		t.Fatalf("Prune(-1) = %v, want ErrBadIndex", err)
	}
	min, err := l.Prune(ctx, 120)
	if err != nil {
		t.Fatal(err)
	}
	if min <= 0 || min > 120 {
		t.Fatalf("pruned below %d", min)
	}
	// Again: nothing to delete, so nothing is recorded either.
	if again, err := l.Prune(ctx, 120); err != nil || again != min {
		t.Fatalf("second Prune(120) = %d, %v; want %d", again, err, min)
	}
	l.Log(ctx, testEvent(999))
	l.Close()
	rep, err := audit.Verify(ctx, dir, k.verifier)
	if err != nil || rep.Pruned != min || rep.Size != 202 {
		t.Fatalf("after prune: %+v %v", rep, err)
	}
	if _, err := audit.Prove(ctx, dir, min-1); !errors.Is(err, audit.ErrNotCovered) {
		t.Fatalf("prove pruned record: %v", err)
	}
	p, err := audit.Prove(ctx, dir, min)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := audit.CheckInclusion(k.verifier, p); err != nil {
		t.Fatal(err)
	}
	// Reopen continues after the prune point.
	l = openLog(t, dir, k, audit.FileConfig{SegmentSize: 2 << 10})
	l.Log(ctx, testEvent(1000))
	l.Close()
	if rep, err := audit.Verify(ctx, dir, k.verifier); err != nil || rep.Size != 203 {
		t.Fatalf("reopen after prune: %+v %v", rep, err)
	}
	// Deleting one more segment than the signed prune note allows is
	// detected.
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	os.Remove(segs[0])
	var ve *audit.VerifyError
	if _, err := audit.Verify(ctx, dir, k.verifier); !errors.As(err, &ve) || ve.Index != min || ve.Kind != audit.KindMissing {
		t.Fatalf("extra deleted segment: %v", err)
	}
}

func TestTornTailIsCrashResidue(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{})
	for i := 0; i < 10; i++ {
		l.Log(ctx, testEvent(i))
	}
	l.Checkpoint(ctx)
	for i := 10; i < 15; i++ {
		l.Log(ctx, testEvent(i)) // acknowledged, not yet signed
	}
	// Simulate a crash: no Close. Copy the files as they are and add
	// torn tails: half a record and half a checkpoint.
	crashed := t.TempDir()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		os.WriteFile(filepath.Join(crashed, e.Name()), b, 0o600)
	}
	l.Close()
	seg := filepath.Join(crashed, "seg-00000000000000000000.log")
	b, _ := os.ReadFile(seg)
	whole := len(b)
	b = append(b, b[:40]...) // header of record 0 again, cut short
	os.WriteFile(seg, b, 0o600)
	cpPath := filepath.Join(crashed, "checkpoints")
	c, _ := os.ReadFile(cpPath)
	os.WriteFile(cpPath, append(c, c[:30]...), 0o600)

	rep, err := audit.Verify(ctx, crashed, k.verifier)
	if err != nil || rep.Residue != 70 || rep.Size != 15 || rep.Checkpoint.Size != 10 {
		t.Fatalf("torn tail: %+v %v", rep, err)
	}
	l = openLog(t, crashed, k, audit.FileConfig{})
	if l.Recovered() != 70 {
		t.Fatalf("recovered %d, want 70", l.Recovered())
	}
	l.Close()
	rep, err = audit.Verify(ctx, crashed, k.verifier)
	if err != nil || rep.Residue != 0 || rep.Size != 16 {
		t.Fatalf("after recovery: %+v %v", rep, err)
	}
	have := readResources(t, crashed)
	for i := 0; i < 15; i++ {
		if !have[fmt.Sprintf("doc/%d", i)] {
			t.Fatalf("acknowledged record %d lost", i)
		}
	}
	p, err := audit.Prove(ctx, crashed, 15)
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := audit.CheckInclusion(k.verifier, p)
	if err != nil || e.Action != "audit.recover" || e.Attributes[0].Value != "70" {
		t.Fatalf("recovery event: %+v %v", e, err)
	}

	// The same torn bytes inside the signed range are tampering.
	b, _ = os.ReadFile(seg)
	os.WriteFile(seg, b[:whole-5], 0o600)
	var ve *audit.VerifyError
	if _, err := audit.Verify(ctx, crashed, k.verifier); !errors.As(err, &ve) || ve.Kind != audit.KindTruncated {
		t.Fatalf("cut inside signed range: %v", err)
	}
}

// TestDamageBeforeAcknowledgedRecords is the torn-tail rule's other side:
// a crash tears only the end of the last write, so a damaged record
// followed by an intact one is tampering, even after the last checkpoint,
// and Open must refuse rather than cut acknowledged records off.
func TestDamageBeforeAcknowledgedRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := newKeys(t, "test.example/log")
	dir := t.TempDir()
	l := openLog(t, dir, k, audit.FileConfig{})
	for i := 0; i < 10; i++ {
		if err := l.Log(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A crash: no checkpoint after the records, no Close.
	crashed := t.TempDir()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		os.WriteFile(filepath.Join(crashed, e.Name()), b, 0o600)
	}
	l.Close()
	seg := filepath.Join(crashed, "seg-00000000000000000000.log")
	orig, _ := os.ReadFile(seg)
	var offs []int
	for off := 0; off < len(orig); {
		_, _, n, err := frame.Next(orig[off:], audit.MaxEventSize)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
		off += n
	}
	r3 := offs[3]
	cases := []struct {
		name string
		edit func(b []byte)
	}{
		{"payload byte", func(b []byte) { b[r3+frame.HeaderSize+20] ^= 0x01 }},
		{"length field", func(b []byte) { b[r3+2] ^= 0x01 }},
		{"sequence number", func(b []byte) { b[r3+11] ^= 0x01 }},
		{"header checksum", func(b []byte) { b[r3+13] ^= 0x80 }},
		{"zeroed record", func(b []byte) { clear(b[r3:offs[4]]) }},
		{"zeroed page", func(b []byte) { clear(b[r3 : r3+300]) }},
	}
	for _, c := range cases {
		b := append([]byte(nil), orig...)
		c.edit(b)
		os.WriteFile(seg, b, 0o600)
		rep, err := audit.Verify(ctx, crashed, k.verifier)
		var ve *audit.VerifyError
		if !errors.As(err, &ve) || ve.Index != 3 || ve.Kind != audit.KindModified {
			t.Fatalf("%s: %+v %v, want record 3 modified", c.name, rep, err)
		}
		l, err := audit.Open(ctx, crashed, audit.FileConfig{Signer: k.signer, Clock: testclock.New(nil, nil)})
		if !errors.As(err, &ve) || ve.Index != 3 {
			if l != nil {
				l.Close()
			}
			t.Fatalf("%s: Open: %v, want it to refuse", c.name, err)
		}
		if got, _ := os.ReadFile(seg); !bytes.Equal(got, b) {
			t.Fatalf("%s: Open changed the segment", c.name)
		}
	}
	os.WriteFile(seg, orig, 0o600)
	if rep, err := audit.Verify(ctx, crashed, k.verifier); err != nil || rep.Size != 10 || rep.Residue != 0 {
		t.Fatalf("intact: %+v %v", rep, err)
	}

	// Genuine torn tails stay crash residue: a zero-filled page, garbage,
	// a partial frame, even a stale copy of an older record (a reused
	// block). Garbage followed by an intact later record is not.
	garbage := bytes.Repeat([]byte{0xa5, 0x00, 0x3c}, 700)
	frame10 := frame.Append(nil, 10, orig[offs[9]+frame.HeaderSize:len(orig)-frame.TrailerSize])
	tails := []struct {
		name   string
		tail   []byte
		tamper bool
	}{
		{"zero page", make([]byte, 4096), false},
		{"garbage", garbage, false},
		{"partial frame", frame10[:len(frame10)-3], false},
		{"garbage and a stale record", append(append([]byte(nil), garbage[:99]...), orig[offs[2]:offs[3]]...), false},
		{"garbage and record 10", append(append([]byte(nil), garbage[:99]...), frame10...), true},
	}
	for _, c := range tails {
		b := append(append([]byte(nil), orig...), c.tail...)
		os.WriteFile(seg, b, 0o600)
		rep, err := audit.Verify(ctx, crashed, k.verifier)
		var ve *audit.VerifyError
		switch {
		case c.tamper && (!errors.As(err, &ve) || ve.Index != 10 || ve.Kind != audit.KindModified):
			t.Fatalf("%s: %+v %v, want record 10 modified", c.name, rep, err)
		case !c.tamper && (err != nil || rep.Size != 10 || rep.Residue != int64(len(c.tail))):
			t.Fatalf("%s: %+v %v, want %d bytes of residue", c.name, rep, err, len(c.tail))
		}
	}
	os.WriteFile(seg, orig, 0o600)
}

// dirBytes returns every file of dir (names and contents) as one string.
func dirBytes(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %q\n", e.Name(), len(data), data)
	}
	return b.String()
}
