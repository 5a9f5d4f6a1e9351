package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tomkit/tomkit/audit"
)

// knowledgeBase runs the § 203 guard's tenant-separation check on a
// document of a § 203 tenant (its isolated knowledge base): defence in
// depth behind the tenant check, audited by section203.
func (a *app) knowledgeBase(w http.ResponseWriter, r *http.Request, tenant, id string) bool {
	if !a.tenants[tenant].Section203 {
		return true
	}
	if err := a.guard.KnowledgeBase(r.Context(), tenant, "documents/"+id); err != nil {
		stateFrom(r.Context()).reason = err.Error()
		fail(w, r, http.StatusForbidden, codeSection203, "refused by the § 203 guard")
		return false
	}
	return true
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
	id := newID()
	st := stateFrom(r.Context())
	st.resource = "/v1/tenants/" + tenant + "/documents/" + id
	if !a.authorize(w, r, "/documents/"+id, "create") || !a.knowledgeBase(w, r, tenant, id) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if err := a.store.Put(r.Context(), tenant, id, body); err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Location", st.resource)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "tenant": tenant, "size": len(body)})
}

func (a *app) readDocument(w http.ResponseWriter, r *http.Request) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if !a.authorize(w, r, "/documents/"+id, "read") || !a.knowledgeBase(w, r, tenant, id) {
		return
	}
	if !validID.MatchString(id) {
		fail(w, r, http.StatusNotFound, codeNotFound, "no such document")
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
	if !a.authorize(w, r, "/documents/"+id, "delete") || !a.knowledgeBase(w, r, tenant, id) {
		return
	}
	if !validID.MatchString(id) {
		fail(w, r, http.StatusNotFound, codeNotFound, "no such document")
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

// decodeJSON reads the body as exactly one JSON object into v, strictly:
// it must be valid UTF-8 (encoding/json would quietly replace bad bytes),
// carry no unknown and no repeated member (encoding/json keeps the last of
// two, and matches names regardless of case, so "model" and "Model" are
// the same member), and nothing may follow the object but white space. A
// body that two parsers could read differently is refused with 400.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	if err := strictJSON(body, v); err != nil {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "malformed JSON body")
		return false
	}
	return true
}

// foldKey maps a member name to a key that is equal for two names exactly
// when encoding/json matches them to the same field (simple Unicode case
// folding, as bytes.EqualFold).
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

var errLenientJSON = errors.New("refapp: ambiguous JSON body")

func strictJSON(body []byte, v any) error {
	if !utf8.Valid(body) {
		return errLenientJSON
	}
	// The members of the top-level object, each once.
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errLenientJSON
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if fk := foldKey(k); seen[fk] {
			return errLenientJSON
		} else {
			seen[fk] = true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errLenientJSON
	}
	return nil
}

// modelCall simulates a call to a language model. The § 203 guard decides
// whether the model may be used for this tenant.
func (a *app) modelCall(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	var req struct {
		Model  string `json:"model"`
		Prompt string `json:"prompt"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if !validModel.MatchString(req.Model) {
		fail(w, r, http.StatusBadRequest, codeBadRequest, "invalid model name")
		return
	}
	st := stateFrom(r.Context())
	st.attrs = append(st.attrs, audit.String("model", req.Model))
	if !a.authorize(w, r, "/ai/models/"+req.Model, "call") {
		return
	}
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
	if !a.authorize(w, r, "/ai/web-search", "search") {
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

// requestAccess asks for a privileged role in the caller's tenant
// (four-eyes, step 1). Another approver of the tenant must approve it.
func (a *app) requestAccess(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !a.sameTenant(w, r, tenant) {
		return
	}
	var req struct {
		Role   string `json:"role"`
		Reason string `json:"reason"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	st := stateFrom(r.Context())
	st.severity = audit.SeverityNotice
	st.attrs = append(st.attrs, audit.String("role", req.Role), audit.String("reason", req.Reason))
	ar, err := a.authz.enf.RequestAccess(r.Context(), req.Role, req.Reason)
	if err != nil {
		a.rbacFail(w, r, err)
		return
	}
	st.resource = "/v1/tenants/" + tenant + "/access-requests/" + ar.ID
	writeJSON(w, http.StatusAccepted, map[string]any{"id": ar.ID, "role": ar.Role, "status": "pending", "requested_by": ar.Actor.Subject, "expires": ar.Expires.UTC().Format(time.RFC3339)})
}

// approveAccess is the second pair of eyes (four-eyes, step 2): a
// different approver of the same tenant, with MFA, approves the request.
// The requester then holds the role for an hour.
func (a *app) approveAccess(w http.ResponseWriter, r *http.Request) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if !a.sameTenant(w, r, tenant) {
		return
	}
	st := stateFrom(r.Context())
	st.severity = audit.SeverityWarning
	g, err := a.authz.enf.Approve(r.Context(), id, 0)
	if err != nil {
		a.rbacFail(w, r, err)
		return
	}
	st.attrs = append(st.attrs, audit.String("grant", g.ID), audit.String("role", g.Role), audit.String("grantee", g.Actor.Subject))
	writeJSON(w, http.StatusOK, map[string]any{"grant": g.ID, "role": g.Role, "grantee": g.Actor.Subject, "approved_by": st.p.Subject, "expires": g.Expires.UTC().Format(time.RFC3339)})
}

// eraseTenant erases the tenant: its key is destroyed (crypto-shredding)
// and its documents deleted. It needs the privileged eraser role, which
// only a four-eyes grant gives.
func (a *app) eraseTenant(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !a.authorize(w, r, "/tenant", "erase") {
		return
	}
	st := stateFrom(r.Context())
	st.severity = audit.SeverityWarning
	if err := a.store.EraseTenant(r.Context(), tenant); err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant": tenant, "status": "erased"})
}

// openBreakGlass elevates the on-call operator at once to a privileged
// role (default "reader") in its tenant, for 15 minutes. It needs the
// breakglass role, MFA and a reason; rbac writes a critical audit event
// and the alert hook fires.
func (a *app) openBreakGlass(w http.ResponseWriter, r *http.Request) {
	st := stateFrom(r.Context())
	var req struct {
		Tenant string `json:"tenant"`
		Role   string `json:"role"`
		Reason string `json:"reason"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Role == "" {
		req.Role = "reader"
	}
	st.tenant = req.Tenant
	st.resource = "/v1/break-glass/" + req.Tenant
	st.severity = audit.SeverityCritical
	st.attrs = append(st.attrs, audit.String("role", req.Role), audit.String("reason", req.Reason))
	if !a.sameTenant(w, r, req.Tenant) {
		return
	}
	g, err := a.authz.enf.BreakGlass(r.Context(), req.Role, req.Reason)
	if err != nil {
		a.rbacFail(w, r, err)
		return
	}
	st.attrs = append(st.attrs, audit.String("grant", g.ID))
	writeJSON(w, http.StatusCreated, map[string]any{"grant": g.ID, "tenant": g.Actor.Tenant, "role": g.Role, "until": g.Expires.UTC().Format(time.RFC3339)})
}

func (a *app) rbacFail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := rbacErr(err)
	if status >= 500 {
		a.internal(w, r, err)
		return
	}
	stateFrom(r.Context()).reason = err.Error()
	fail(w, r, status, code, err.Error())
}
