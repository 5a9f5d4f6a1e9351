package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tomkit/tomkit/audit"
)

// authorizeOrBreakGlass is authorize, except that a read denied by policy
// is allowed while the caller holds an open break-glass grant for the
// tenant. Such an access is audited as critical and raises an alert.
func (a *app) authorizeOrBreakGlass(w http.ResponseWriter, r *http.Request, action, tenant string) bool {
	st := stateFrom(r.Context())
	if err := a.authz.Authorize(r.Context(), *st.p, action, tenant); err == nil {
		return true
	} else if action == "document.read" && a.glass.active(st.p.Subject, tenant) {
		st.severity = audit.SeverityCritical
		st.attrs = append(st.attrs, audit.String("break_glass", "true"))
		a.mon.alert(r.Context(), "break-glass access", st.p.Subject+" read "+r.URL.Path+" under break-glass")
		return true
	}
	return a.authorize(w, r, action, tenant)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(w, r, http.StatusRequestEntityTooLarge, codeTooLarge, "request body over 1 MiB")
		} else {
			fail(w, r, http.StatusBadRequest, codeBadRequest, "cannot read request body")
		}
		return nil, false
	}
	return b, true
}

func (a *app) createDocument(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !a.authorize(w, r, "document.create", tenant) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	id := newID()
	st := stateFrom(r.Context())
	st.resource = "/v1/tenants/" + tenant + "/documents/" + id
	if err := a.store.Put(r.Context(), tenant, id, body); err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Location", st.resource)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "tenant": tenant, "size": len(body)})
}

func (a *app) readDocument(w http.ResponseWriter, r *http.Request) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if !a.authorizeOrBreakGlass(w, r, "document.read", tenant) {
		return
	}
	body, err := a.store.Get(r.Context(), tenant, id)
	if errors.Is(err, errNotFound) {
		fail(w, r, http.StatusNotFound, codeNotFound, "no such document")
		return
	} else if err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (a *app) deleteDocument(w http.ResponseWriter, r *http.Request) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if !a.authorize(w, r, "document.delete", tenant) {
		return
	}
	err := a.store.Delete(r.Context(), tenant, id)
	if errors.Is(err, errNotFound) {
		fail(w, r, http.StatusNotFound, codeNotFound, "no such document")
		return
	} else if err != nil {
		a.internal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.errLog.Printf("request %s: %v", audit.RequestIDFrom(r.Context()), err)
	if s := stateFrom(r.Context()); s != nil {
		s.reason = err.Error()
	}
	fail(w, r, http.StatusInternalServerError, codeInternal, "internal error; nothing was released")
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "malformed JSON body")
		return false
	}
	return true
}

// modelCall simulates a call to a language model. The § 203 guard decides
// whether the model may be used for this tenant.
func (a *app) modelCall(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !a.authorize(w, r, "model.call", tenant) {
		return
	}
	var req struct {
		Model  string `json:"model"`
		Prompt string `json:"prompt"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	st := stateFrom(r.Context())
	st.attrs = append(st.attrs, audit.String("model", req.Model))
	if err := a.guard.ModelCall(r.Context(), tenant, req.Model); err != nil {
		st.reason = err.Error()
		fail(w, r, http.StatusForbidden, codeSection203, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"model": req.Model, "completion": "(simulated) " + summarize(req.Prompt)})
}

// webSearch simulates a web search. In § 203 mode web search is off.
func (a *app) webSearch(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !a.authorize(w, r, "web.search", tenant) {
		return
	}
	var req struct {
		Query string `json:"query"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if err := a.guard.WebSearch(r.Context(), tenant); err != nil {
		stateFrom(r.Context()).reason = err.Error()
		fail(w, r, http.StatusForbidden, codeSection203, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": []string{"(simulated) result for a query of " + strconv.Itoa(len(req.Query)) + " characters"}})
}

func summarize(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// requestErasure opens a four-eyes request to erase the tenant. A second
// admin must approve it.
func (a *app) requestErasure(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !a.authorize(w, r, "tenant.erase", tenant) {
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Reason == "" {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "a reason is required")
		return
	}
	st := stateFrom(r.Context())
	id, err := a.approve.request(r.Context(), st.p.Subject, tenant, "tenant.erase", req.Reason)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	st.resource = "/v1/tenants/" + tenant + "/erasure-requests/" + id
	st.severity = audit.SeverityNotice
	st.attrs = append(st.attrs, audit.String("four_eyes", "requested"), audit.String("reason", req.Reason))
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "status": "pending", "requested_by": st.p.Subject})
}

// approveErasure is the second pair of eyes. The approver must be a
// different admin of the same tenant; then the tenant is erased.
func (a *app) approveErasure(w http.ResponseWriter, r *http.Request) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if !a.authorize(w, r, "tenant.erase", tenant) {
		return
	}
	st := stateFrom(r.Context())
	req, err := a.approve.approve(r.Context(), id, st.p.Subject, tenant)
	switch {
	case errors.Is(err, errSameApprover):
		fail(w, r, http.StatusForbidden, codeFourEyes, "the approver must not be the requester")
		return
	case errors.Is(err, errNoRequest):
		fail(w, r, http.StatusNotFound, codeNotFound, "no such pending request")
		return
	case err != nil:
		a.internal(w, r, err)
		return
	}
	st.severity = audit.SeverityWarning
	st.attrs = append(st.attrs, audit.String("four_eyes", "approved"), audit.String("requested_by", req.requester), audit.String("reason", req.reason))
	if err := a.store.EraseTenant(r.Context(), tenant); err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": "executed", "requested_by": req.requester, "approved_by": st.p.Subject})
}

// openBreakGlass grants the on-call operator time-limited read access to
// one tenant. It needs MFA and a reason, is audited as critical and raises
// an alert.
func (a *app) openBreakGlass(w http.ResponseWriter, r *http.Request) {
	st := stateFrom(r.Context())
	var req struct {
		Tenant string `json:"tenant"`
		Reason string `json:"reason"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	st.tenant = req.Tenant
	st.resource = "/v1/break-glass/" + req.Tenant
	if _, ok := a.tenants[req.Tenant]; !ok {
		fail(w, r, http.StatusNotFound, codeUnknownTenant, "no such tenant")
		return
	}
	if req.Reason == "" {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "a reason is required")
		return
	}
	if !st.p.BreakGlass {
		fail(w, r, http.StatusForbidden, codeForbidden, "not a break-glass operator")
		return
	}
	if !st.p.MFA {
		fail(w, r, http.StatusForbidden, codeMFARequired, "break-glass requires MFA")
		return
	}
	until := a.glass.open(st.p.Subject, req.Tenant)
	st.severity = audit.SeverityCritical
	st.attrs = append(st.attrs, audit.String("break_glass", "opened"), audit.String("reason", req.Reason), audit.String("until", until.UTC().Format(time.RFC3339)))
	a.mon.alert(r.Context(), "break-glass opened", st.p.Subject+" opened break-glass on tenant "+req.Tenant+": "+req.Reason)
	writeJSON(w, http.StatusCreated, map[string]any{"tenant": req.Tenant, "until": until.UTC().Format(time.RFC3339)})
}
