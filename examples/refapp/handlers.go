package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/tomkit/tomkit/audit"
	"github.com/tomkit/tomkit/httpguard"
)

// knowledgeBase runs the § 203 guard's tenant-separation check on a
// document of a § 203 tenant (its isolated knowledge base): defence in
// depth behind the tenant check, audited by section203.
func (a *app) knowledgeBase(r *http.Request, tenant, id string) error {
	if !a.tenants[tenant].Section203 {
		return nil
	}
	return a.guard.KnowledgeBase(r.Context(), tenant, "documents/"+id)
}

// validID matches the ids the service hands out.
var validID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// validModel matches model names the simulated model endpoint accepts.
var validModel = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readBody reads the body, which httpguard bounds: over 1 MiB is its
// *http.MaxBytesError, a 413.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if err != nil && !errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: cannot read request body: %v", httpguard.ErrBadRequest, err)
	}
	return b, err
}

// createDocument authorizes the new id itself: the route has no id.
func (a *app) createDocument(g *httpguard.Guard) httpguard.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tenant := r.PathValue("tenant")
		id := newID()
		ev := httpguard.AuditEvent(r.Context())
		ev.Resource = "/v1/tenants/" + tenant + "/documents/" + id
		if err := g.Authorize(r, "create", "/documents/"+id); err != nil {
			return err
		}
		if err := a.knowledgeBase(r, tenant, id); err != nil {
			return err
		}
		body, err := readBody(r)
		if err != nil {
			return err
		}
		if err := a.store.Put(r.Context(), tenant, id, body); err != nil {
			return err
		}
		w.Header().Set("Location", ev.Resource)
		return httpguard.JSON(w, http.StatusCreated, map[string]any{"id": id, "tenant": tenant, "size": len(body)})
	}
}

func (a *app) readDocument(w http.ResponseWriter, r *http.Request) error {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if err := a.knowledgeBase(r, tenant, id); err != nil {
		return err
	}
	if !validID.MatchString(id) {
		return errNotFound
	}
	body, err := a.store.Get(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}

func (a *app) deleteDocument(w http.ResponseWriter, r *http.Request) error {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if err := a.knowledgeBase(r, tenant, id); err != nil {
		return err
	}
	if !validID.MatchString(id) {
		return errNotFound
	}
	if err := a.store.Delete(r.Context(), tenant, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// modelCall simulates a call to a language model. The § 203 guard decides
// whether the model may be used for this tenant.
func (a *app) modelCall(g *httpguard.Guard) httpguard.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tenant := r.PathValue("tenant")
		var req struct {
			Model  string `json:"model"`
			Prompt string `json:"prompt"`
		}
		if err := httpguard.DecodeJSON(r, &req); err != nil {
			return err
		}
		if !validModel.MatchString(req.Model) {
			return fmt.Errorf("%w: invalid model name", httpguard.ErrBadRequest)
		}
		ev := httpguard.AuditEvent(r.Context())
		ev.Attributes = append(ev.Attributes, audit.String("model", req.Model))
		if err := g.Authorize(r, "call", "/ai/models/"+req.Model); err != nil {
			return err
		}
		if err := a.guard.ModelCall(r.Context(), tenant, req.Model); err != nil {
			return err
		}
		return httpguard.JSON(w, http.StatusOK, map[string]any{"model": req.Model, "completion": "(simulated) " + summarize(req.Prompt)})
	}
}

// webSearch simulates a web search. In § 203 mode web search is off.
func (a *app) webSearch(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Query string `json:"query"`
	}
	if err := httpguard.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := a.guard.WebSearch(r.Context(), r.PathValue("tenant")); err != nil {
		return err
	}
	return httpguard.JSON(w, http.StatusOK, map[string]any{"results": []string{"(simulated) result for a query of " + strconv.Itoa(len(req.Query)) + " characters"}})
}

func summarize(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// requestAccess asks for a privileged role in the caller's tenant
// (four-eyes, step 1). Another approver of the tenant must approve it.
func (a *app) requestAccess(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Role   string `json:"role"`
		Reason string `json:"reason"`
	}
	if err := httpguard.DecodeJSON(r, &req); err != nil {
		return err
	}
	ev := httpguard.AuditEvent(r.Context())
	ev.Severity = audit.SeverityNotice
	ev.Attributes = append(ev.Attributes, audit.String("role", req.Role), audit.String("reason", req.Reason))
	ar, err := a.authz.enf.RequestAccess(r.Context(), req.Role, req.Reason)
	if err != nil {
		return err
	}
	ev.Resource = "/v1/tenants/" + r.PathValue("tenant") + "/access-requests/" + ar.ID
	return httpguard.JSON(w, http.StatusAccepted, map[string]any{"id": ar.ID, "role": ar.Role, "status": "pending", "requested_by": ar.Actor.Subject, "expires": ar.Expires.UTC().Format(time.RFC3339)})
}

// approveAccess is the second pair of eyes (four-eyes, step 2): a
// different approver of the same tenant, with MFA, approves the request.
// The requester then holds the role for an hour.
func (a *app) approveAccess(w http.ResponseWriter, r *http.Request) error {
	ev := httpguard.AuditEvent(r.Context())
	ev.Severity = audit.SeverityWarning
	g, err := a.authz.enf.Approve(r.Context(), r.PathValue("id"), 0)
	if err != nil {
		return err
	}
	ev.Attributes = append(ev.Attributes, audit.String("grant", g.ID), audit.String("role", g.Role), audit.String("grantee", g.Actor.Subject))
	return httpguard.JSON(w, http.StatusOK, map[string]any{"grant": g.ID, "role": g.Role, "grantee": g.Actor.Subject, "approved_by": audit.ActorFrom(r.Context()).Subject, "expires": g.Expires.UTC().Format(time.RFC3339)})
}

// eraseTenant erases the tenant: its key is destroyed (crypto-shredding)
// and its documents deleted. It needs the privileged eraser role, which
// only a four-eyes grant gives.
func (a *app) eraseTenant(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	httpguard.AuditEvent(r.Context()).Severity = audit.SeverityWarning
	if err := a.store.EraseTenant(r.Context(), tenant); err != nil {
		return err
	}
	return httpguard.JSON(w, http.StatusOK, map[string]any{"tenant": tenant, "status": "erased"})
}

// openBreakGlass elevates the on-call operator at once to a privileged
// role (default "reader") in its tenant, for 15 minutes. It needs the
// breakglass role, MFA and a reason; rbac writes a critical audit event
// and the alert hook fires. The tenant is in the body, so the handler
// checks it against the principal's own.
func (a *app) openBreakGlass(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Tenant string `json:"tenant"`
		Role   string `json:"role"`
		Reason string `json:"reason"`
	}
	if err := httpguard.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Role == "" {
		req.Role = "reader"
	}
	ev := httpguard.AuditEvent(r.Context())
	ev.Resource = "/v1/break-glass/" + req.Tenant
	ev.Severity = audit.SeverityCritical
	ev.Attributes = append(ev.Attributes, audit.String("role", req.Role), audit.String("reason", req.Reason))
	if own := audit.ActorFrom(r.Context()).Tenant; req.Tenant != own {
		return fmt.Errorf("%w: cross-tenant: a principal of %s asked for %q", httpguard.ErrForbidden, own, req.Tenant)
	}
	g, err := a.authz.enf.BreakGlass(r.Context(), req.Role, req.Reason)
	if err != nil {
		return err
	}
	ev.Attributes = append(ev.Attributes, audit.String("grant", g.ID))
	return httpguard.JSON(w, http.StatusCreated, map[string]any{"grant": g.ID, "tenant": g.Actor.Tenant, "role": g.Role, "until": g.Expires.UTC().Format(time.RFC3339)})
}
