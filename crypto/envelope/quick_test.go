package envelope_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/envelope"
	"github.com/tomkit/tomkit/crypto/kms"
)

func TestQuick(t *testing.T) {
	ctx := context.Background()
	var rec audit.Recorder
	m, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	r, err := kms.Create(ctx, "", kms.Config{Master: m, Audit: &rec})
	if err != nil {
		t.Fatal(err)
	}
	sc := audit.Actor{Tenant: "t1"}
	if err := r.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	e, err := envelope.New(r.KEK(sc), envelope.Config{Audit: &rec, SegmentSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 15, 16, 17, 100} {
		pt := bytes.Repeat([]byte{'a'}, n)
		ct, err := e.Seal(ctx, nil, pt, envelope.Context{"a": "b"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Open(ctx, nil, ct, envelope.Context{"a": "b"})
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatal(n, err)
		}
	}
}
