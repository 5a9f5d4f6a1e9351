package tomtest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
)

// Service is a service that speaks the reference service's HTTP contract
// (examples/refapp/README.md): documents under
// /v1/tenants/{tenant}/documents, bearer tokens, JSON errors with stable
// codes.
type Service struct {
	// BaseURL is the https:// URL of the service, without a trailing
	// slash.
	BaseURL string
	// RootCAs verify the service's certificate. Nil means the system
	// roots.
	RootCAs *x509.CertPool
}

type apiReply struct {
	status int
	body   []byte
	code   string
	// requestID is the X-Request-Id the service answered with, and
	// client the address the request left from.
	requestID string
	client    string
	// retryAfter is the Retry-After header, in seconds; 0 if absent.
	retryAfter int
}

func (s Service) do(ctx context.Context, method, path, token string, body []byte) (apiReply, error) {
	c := httpsClient(s.RootCAs)
	defer c.CloseIdleConnections()
	return s.doWith(ctx, c, method, path, token, body)
}

// doWith is do over client c, whose connections the caller may reuse.
func (s Service) doWith(ctx context.Context, c *http.Client, method, path, token string, body []byte) (apiReply, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(s.BaseURL, "/")+path, r)
	if err != nil {
		return apiReply{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	var client string
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if host, _, err := net.SplitHostPort(info.Conn.LocalAddr().String()); err == nil {
				client = host
			}
		},
	}))
	resp, err := c.Do(req)
	if err != nil {
		return apiReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return apiReply{}, err
	}
	out := apiReply{status: resp.StatusCode, body: b, requestID: resp.Header.Get("X-Request-Id"), client: client}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
		out.retryAfter = n
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		out.code = e.Error.Code
	}
	return out, nil
}

func (s Service) create(ctx context.Context, token, tenant string, body []byte) (string, error) {
	r, err := s.do(ctx, http.MethodPost, "/v1/tenants/"+tenant+"/documents", token, body)
	if err != nil {
		return "", err
	}
	if r.status != http.StatusCreated {
		return "", fmt.Errorf("create document in %s: status %d %s", tenant, r.status, r.code)
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || v.ID == "" {
		return "", fmt.Errorf("create document in %s: no id in %q", tenant, r.body)
	}
	return v.ID, nil
}

// HTTPAuthRequired checks that the service answers a document request
// without a token, and with an unknown token, with 401 and the error code
// "unauthenticated", while /healthz answers 200 (which proves the check
// reached the service). It covers TOM 004 §1 (authentication) and the
// refusal half of 000 §6 (authentication failures).
func (s Service) HTTPAuthRequired() Check {
	return Check{
		Name:        "authentication-required",
		Clauses:     []string{"000-6.3", "004-1.2"},
		Description: "requests without a token or with an unknown token are refused with 401 unauthenticated",
		Run: func(ctx context.Context) error {
			h, err := s.do(ctx, http.MethodGet, "/healthz", "", nil)
			if err != nil {
				return failf("GET /healthz: %v", err)
			}
			if h.status != http.StatusOK {
				return failf("GET /healthz: status %d", h.status)
			}
			path := "/v1/tenants/tomtest/documents/" + randomName()
			for _, tok := range []string{"", "tomtest-invalid-" + randomName()} {
				r, err := s.do(ctx, http.MethodGet, path, tok, nil)
				if err != nil {
					return failf("GET %s: %v", path, err)
				}
				if r.status != http.StatusUnauthorized || r.code != "unauthenticated" {
					return failf("GET %s with token %q: status %d code %q, want 401 unauthenticated", path, tok, r.status, r.code)
				}
			}
			return nil
		},
	}
}

// HTTPTenantSeparation checks that a principal of tenant own cannot read
// other's documents: it stores a document in own with token, reads it back
// (proving the token works), then asks for it under other's path, which
// must not return it. It covers TOM 004 §1 (logical tenant separation,
// need-to-know) and 000 §2 (least privilege).
func (s Service) HTTPTenantSeparation(token, own, other string) Check {
	return Check{
		Name:        "tenant-separation",
		Clauses:     []string{"000-2.1", "004-1.3", "004-1.4"},
		Description: fmt.Sprintf("a principal of %s reads its own document but is refused under %s", own, other),
		Run: func(ctx context.Context) error {
			if token == "" || own == "" || other == "" {
				return fmt.Errorf("%w: tenant separation needs a token and two tenants", ErrNotCovered)
			}
			secret := []byte("tomtest-separation-" + randomName())
			id, err := s.create(ctx, token, own, secret)
			if err != nil {
				return failf("%v", err)
			}
			r, err := s.do(ctx, http.MethodGet, "/v1/tenants/"+own+"/documents/"+id, token, nil)
			if err != nil || r.status != http.StatusOK || !bytes.Equal(r.body, secret) {
				return failf("reading back own document: status %d, err %v", r.status, err)
			}
			for _, path := range []string{
				"/v1/tenants/" + other + "/documents/" + id,
				"/v1/tenants/" + other + "/documents/" + randomName(),
			} {
				r, err := s.do(ctx, http.MethodGet, path, token, nil)
				if err != nil {
					return failf("GET %s: %v", path, err)
				}
				if r.status != http.StatusForbidden {
					return failf("GET %s by a principal of %s: status %d, want 403", path, own, r.status)
				}
			}
			_, _ = s.do(ctx, http.MethodDelete, "/v1/tenants/"+own+"/documents/"+id, token, nil)
			return nil
		},
	}
}

// HTTPSection203 runs [Section203] against the service's simulated
// model-call and web-search endpoints for tenant, which must be in § 203
// mode, with a token of that tenant.
func (s Service) HTTPSection203(token, tenant, nonEUModel, euModel string) Check {
	post := func(ctx context.Context, path string, v any) error {
		b, _ := json.Marshal(v)
		r, err := s.do(ctx, http.MethodPost, "/v1/tenants/"+tenant+path, token, b)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("status %d code %q", r.status, r.code)
		}
		return nil
	}
	c := Section203(Guard203{
		WebSearch: func(ctx context.Context) error {
			return post(ctx, "/web-search", map[string]string{"query": "tomtest " + randomName()})
		},
		Model: func(ctx context.Context, model string) error {
			return post(ctx, "/model-calls", map[string]string{"model": model, "prompt": "tomtest"})
		},
		NonEUModel: nonEUModel,
		EUModel:    euModel,
	})
	if token == "" || tenant == "" {
		c.Run = func(context.Context) error {
			return fmt.Errorf("%w: § 203 check needs a token of a § 203 tenant", ErrNotCovered)
		}
	}
	c.Description = "over HTTP for tenant " + tenant + ": " + c.Description
	return c
}

// HTTPEncryptedAtRest runs [EncryptedAtRest] with documents created in
// tenant through the service; store is the service's document storage as
// files.
func (s Service) HTTPEncryptedAtRest(token, tenant string, store fs.FS) Check {
	var put func(ctx context.Context, b []byte) error
	if token != "" && tenant != "" {
		put = func(ctx context.Context, b []byte) error {
			_, err := s.create(ctx, token, tenant, b)
			return err
		}
	}
	return EncryptedAtRest(put, store)
}
