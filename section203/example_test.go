package section203_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/crypto/kms"
	"github.com/tomkit/tomkit/retention"
	"github.com/tomkit/tomkit/retention/blobstore"
	"github.com/tomkit/tomkit/section203"
)

func Example() {
	var log audit.Recorder // use a durable audit sink in production
	modes, _ := section203.NewModes(section203.ModesConfig{
		Tenants: map[string]section203.Mode{"kanzlei-meyer": section203.On, "shop": section203.Off},
		Logger:  &log,
	})
	guard, _ := section203.New(section203.Config{
		Logger: &log,
		Providers: []section203.Provider{{
			Name:           "mistral",
			Jurisdiction:   section203.EU,
			Models:         []string{"mistral-large"},
			Endpoints:      []section203.Endpoint{{URL: "https://api.mistral.example/v1", Region: "FR"}},
			ZDRAttestation: "ZDR-2026-03",
			Commitment:     "AVV-203-17",
		}},
		Tools: []section203.Tool{
			{Name: "kb_search", Kind: section203.ToolLocal},
			{Name: "web_search", Kind: section203.ToolWebSearch},
		},
	})

	// Authentication middleware puts the actor in ctx; Bind adds the mode.
	ctx := audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "kanzlei-meyer"})
	ctx = modes.Bind(ctx)

	fmt.Println("mode:", section203.ModeFrom(ctx))
	_, err := guard.Tool(ctx, "web_search")
	fmt.Println("web_search refused:", errors.Is(err, section203.ErrTool))
	_, err = guard.Tool(ctx, "kb_search")
	fmt.Println("kb_search:", err)
	_, err = guard.Model(ctx, "mistral", "mistral-large", "https://api.mistral.example/v1/chat/completions")
	fmt.Println("mistral-large:", err)
	ttl, _, _ := guard.ContentRetention(ctx, 30*24*time.Hour)
	fmt.Println("content retention:", ttl)
	fmt.Println("audit events:", len(log.Events()))
	// Output:
	// mode: on
	// web_search refused: true
	// kb_search: <nil>
	// mistral-large: <nil>
	// content retention: 0s
	// audit events: 4
}

func ExampleGuard_Transport() {
	var log audit.Recorder
	modes, _ := section203.NewModes(section203.ModesConfig{Logger: &log})
	guard, _ := section203.New(section203.Config{
		Logger: &log,
		Egress: section203.EgressConfig{Allow: []string{"api.mistral.example"}},
	})
	client := guard.Transport(nil).Client()

	ctx := modes.Bind(audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "kanzlei-meyer"}))
	for _, u := range []string{
		"https://api.mistral.example@evil.example/",
		"https://2130706433/",
		"https://search.example.com/?q=client+name",
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		_, err := client.Do(req)
		var denied *section203.RefusedError
		if errors.As(err, &denied) {
			fmt.Printf("%s: %s\n", denied.Decision.Action, denied.Decision.Reason)
		}
	}
	// Output:
	// section203.egress: userinfo in URL
	// section203.egress: numeric host name: "2130706433"
	// section203.egress: destination not allowlisted
}

func ExampleModes_TurnOff() {
	var log audit.Recorder
	modes, _ := section203.NewModes(section203.ModesConfig{
		Logger: &log,
		AuthorizeOff: func(ctx context.Context, tenant string) error {
			if audit.ActorFrom(ctx).Subject != "dpo" {
				return errors.New("only the data protection officer")
			}
			return nil
		},
	})
	eve := audit.WithActor(context.Background(), audit.Actor{Subject: "eve", Tenant: "ops"})
	dpo := audit.WithActor(context.Background(), audit.Actor{Subject: "dpo", Tenant: "ops"})

	fmt.Println(modes.Reload(dpo, map[string]section203.Mode{"kanzlei-meyer": section203.Off}) == nil, modes.Mode("kanzlei-meyer"))
	modes.TurnOn(dpo, "kanzlei-meyer")
	err := modes.Reload(dpo, map[string]section203.Mode{"kanzlei-meyer": section203.Off})
	fmt.Println(errors.Is(err, section203.ErrModeLocked), modes.Mode("kanzlei-meyer"))
	err = modes.TurnOff(eve, "kanzlei-meyer", "testing")
	fmt.Println(errors.Is(err, section203.ErrNotPrivileged), modes.Mode("kanzlei-meyer"))
	err = modes.TurnOff(dpo, "kanzlei-meyer", "mandate ended, ticket 4711")
	fmt.Println(err, modes.Mode("kanzlei-meyer"))
	for _, e := range log.Events() {
		fmt.Println(e.Action, e.Outcome, e.Severity, e.Actor.Subject)
	}
	// Output:
	// true off
	// true on
	// true on
	// <nil> off
	// section203.configure allow notice dpo
	// section203.mode_on allow notice dpo
	// section203.mode_off deny critical dpo
	// section203.mode_off deny critical eve
	// section203.mode_off allow critical dpo
}

// One call checks the model against the registry and returns a client
// that reaches only that model's endpoint. The registered endpoints are
// the egress allowlist; nothing needs listing twice.
func ExampleGuard_ModelClient() {
	var log audit.Recorder
	modes, _ := section203.NewModes(section203.ModesConfig{
		Tenants: map[string]section203.Mode{"kanzlei-meyer": section203.On}, Logger: &log,
	})
	guard, _ := section203.New(section203.Config{
		Logger: &log,
		Providers: []section203.Provider{
			{Name: "mistral", Jurisdiction: section203.EU, Models: []string{"mistral-large"},
				Endpoints:      []section203.Endpoint{{URL: "https://api.mistral.example/v1", Region: "FR"}},
				ZDRAttestation: "ZDR-2026-03", Commitment: "AVV-203-17"},
			{Name: "global-ai", Jurisdiction: section203.NonEU, Models: []string{"big"},
				Endpoints: []section203.Endpoint{{URL: "https://api.global-ai.example/v1", Region: "global"}}},
		},
	})
	ctx := modes.Bind(audit.WithActor(context.Background(), audit.Actor{Subject: "alice", Tenant: "kanzlei-meyer"}))

	_, err := guard.ModelClient(ctx, "global-ai", "big", "https://api.global-ai.example/v1")
	fmt.Println("global-ai refused:", errors.Is(err, section203.ErrProvider))

	client, err := guard.ModelClient(ctx, "mistral", "mistral-large", "https://api.mistral.example/v1")
	fmt.Println("mistral:", err)
	// The client sends to the model's endpoint only.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://uploads.example/exfiltrate", nil)
	_, err = client.Do(req)
	fmt.Println("elsewhere refused:", errors.Is(err, section203.ErrEgress))
	// Output:
	// global-ai refused: true
	// mistral: <nil>
	// elsewhere refused: true
}

// Serving a § 203 tenant from the per-tenant data path: one encrypted
// store for every tenant, whose content follows each tenant's mode. A
// § 203 tenant's content is refused, or, for a tenant whose rule is
// retention.ZDRMemory, kept in memory only; what is not content is stored.
func ExampleZeroRetention() {
	var auditLog audit.Recorder
	ctx := context.Background()
	master, _ := kms.ParseMasterKey(kms.GenerateMasterKey())
	ring, _ := kms.Create(ctx, "", kms.Config{Master: master, Logger: &auditLog})
	raw, _ := blobstore.Open(context.Background(), memblob.OpenBucket(nil))
	enc, _ := retention.NewEncrypted(raw, retention.EncryptConfig{Keyring: ring, Logger: &auditLog})
	store, err := retention.New(enc, retention.Config{
		Logger: &auditLog,
		// § 203 tenants: content refused, except for "praxis", whose
		// drafts live in memory for at most ZDRTTL.
		ZDRFor: section203.ZeroRetention{Tenants: map[string]retention.ZDRMode{"praxis": retention.ZDRMemory}}.ZDR,
	})
	if err != nil {
		log.Fatal(err)
	}
	modes, _ := section203.NewModes(section203.ModesConfig{Logger: &auditLog,
		Tenants: map[string]section203.Mode{"shop": section203.Off, "kanzlei": section203.On, "praxis": section203.On}})

	for _, tenant := range []string{"shop", "kanzlei", "praxis"} {
		// Per request, after authentication: the actor, then its mode.
		ctx := modes.Bind(audit.WithActor(ctx, audit.Actor{Subject: "alice", Tenant: tenant}))
		_, err := store.Put(ctx, "chat/1", strings.NewReader("client question"), retention.PutOptions{Class: retention.ClassContent})
		fmt.Printf("%s content: %v\n", tenant, err)
		_, err = store.Put(ctx, "usage/1", strings.NewReader(`{"tokens":812}`), retention.PutOptions{Class: retention.ClassMetadata})
		fmt.Printf("%s metadata: %v\n", tenant, err)
	}
	// Output:
	// shop content: <nil>
	// shop metadata: <nil>
	// kanzlei content: section203: content not stored: § 203 zero retention (rule: refuse)
	// kanzlei metadata: <nil>
	// praxis content: <nil>
	// praxis metadata: <nil>
}
