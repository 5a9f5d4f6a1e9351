// Package httpguard is the HTTP front door of a tomkit service: one
// [http.Handler] that authenticates, rate-limits, binds tenant and § 203
// mode, authorizes with rbac, maps errors to JSON, and writes exactly one
// durable access-log event per request before any byte of the response
// leaves.
//
// It enforces the TOM clauses "access logging" and "logging of relevant
// actions" (every request, including 4xx, redirects, 404, 405, 413 and
// panics), "role-based access control", "MFA for administrative access",
// tenant separation, and "alerting on authentication failures and
// rate-limit violations".
//
// # The chain
//
// [Guard.ServeHTTP] runs, in this order: a request id ([audit.WithRequestID],
// the X-Request-Id response header); the header size limit (431,
// [Config.MaxHeaderBytes]); authentication of exactly one
// "Authorization: Bearer" header through the app's [Authenticator], whose
// [Principal] goes into the ctx ([audit.WithActor], [rbac.WithMFA]); the rate
// limit per principal, and per client address for requests that fail
// authentication; the routing; then, for a route registered with
// [Guard.Handle], tenant binding (a {tenant} path value must be the
// principal's tenant; [Config.KnownTenant] tells 404 unknown_tenant from
// 403), § 203 mode binding ([section203.Modes.Bind]) and the
// rbac check of the route's action and object. A [Route] that is Public,
// and the mux's path-cleaning redirects, need no principal; an Unaudited
// Public route (a health check) writes no event for its successes. The handler's response is
// buffered; the access-log event is written, and only when the
// [audit.Logger] returned nil is the response released. Otherwise the
// client gets 503 audit_unavailable and nothing of the handler's response.
//
//	g, err := httpguard.New(httpguard.Config{Service: "notes", Logger: log, Authenticator: idp, Enforcer: enf})
//	g.Handle("GET /v1/tenants/{tenant}/notes/{id}", httpguard.Route{Name: "note.read", Action: "read", Object: "/notes/{id}"}, readNote)
//	srv := tlsconfig.HTTPServer(addr, tlsconfig.HSTS(tlsconfig.SecureHeaders(g)), tc)
//
// # Handlers and errors
//
// A [HandlerFunc] returns an error; the guard maps it with [errors.Is] and
// [errors.As] to a status and a stable code: [Config.Errors] first, then
// the defaults ([Error], rbac's and section203's sentinels,
// [http.MaxBytesError], [ErrNotFound], [ErrForbidden], [ErrBadRequest]);
// anything else is 500 internal. Error bodies are
//
//	{"error":{"code":"forbidden","message":"access denied"},"request_id":"…"}
//
// A handler whose rbac object comes from the body checks it with
// [Guard.Authorize]. [JSON] writes a success body, [DecodeJSON] reads a
// request body as one JSON object, strictly (400 or 413 on error). A
// handler adds to its request's audit event through [AuditEvent].
//
// # Threat model
//
// The guard defends against: unauthenticated or ambiguous credentials (two
// Authorization headers are refused), a principal of one tenant naming
// another in the path, privileged actions without fresh MFA, floods from one
// principal or one anonymous address, and a response, or a part of one,
// that leaves without its access being logged (a handler that panics half
// way releases nothing), and a request crafted to make its own event too
// large to log (request text is cut at 512 bytes and marked in the
// "<Service>.truncated" attribute). It trusts the [Authenticator] and does not read
// X-Forwarded-For: the client address is the connection's, recorded as a
// personal attribute so that a pseudonymizing Logger never stores it in
// clear. Responses are held in memory until the event is durable, so the
// guard suits API responses, not streams.
package httpguard
