package tomtest

// Clause is one clause of a TOM document.
type Clause struct {
	// ID is the document number, the section and the clause's position
	// in it, for example "000-3.1". Section 0 is a document's summary
	// ("Auf einen Blick") or preamble.
	ID       string `json:"id"`
	Document string `json:"document"`
	Section  string `json:"section"`
	// Text is the clause as the document states it (English where the
	// document is bilingual).
	Text string `json:"text"`
	// Technical reports whether code can keep the clause. An
	// organisational clause is always reported as not covered.
	Technical bool `json:"technical"`
	// Parts are the separate promises of a technical clause, each
	// checked (or not) on its own. A clause passes only when every part
	// does. Organisational clauses have none.
	Parts []Part `json:"parts,omitempty"`
	// Uncovered says why no check covers an organisational clause.
	// Technical clauses give their reasons per part.
	Uncovered string `json:"uncovered,omitempty"`
}

// Part is one promise within a [Clause]: "TLS 1.3" and "HSTS" are two
// parts of 000-3.1, "alerting on authentication failures" and
// "alerting on rate-limit violations" two of 000-6.3.
type Part struct {
	// ID names the part within its clause, for example "hsts"; the
	// part's full name is "000-3.1/hsts".
	ID string `json:"id"`
	// Text says what the part promises, as precisely as the checks
	// behind it prove it.
	Text string `json:"text"`
	// Checks are the names of the checks that prove the part. The part
	// passes only when every one of them ran, named the clause and
	// passed. Empty means no check can observe the part.
	Checks []string `json:"checks,omitempty"`
	// Uncovered says why no check proves the part. It is set exactly
	// when Checks is empty.
	Uncovered string `json:"uncovered,omitempty"`
}

func checked(id, text string, checks ...string) Part {
	return Part{ID: id, Text: text, Checks: checks}
}

func unchecked(id, text, why string) Part {
	return Part{ID: id, Text: text, Uncovered: why}
}

// Documents names the TOM documents the clauses come from.
var Documents = map[string]string{
	"000": "ex-nihilo GmbH, Technische und organisatorische Maßnahmen (TOMs), 2025-10-15",
	"004": "EZTO, Technische und organisatorische Maßnahmen (TOM) gemäß Art. 32 DSGVO, 2026-06-06",
}

const (
	whyOrg      = "organisational measure: kept by people and process, not observable by code"
	whyPhysical = "physical or hosting measure: kept by the infrastructure provider, not observable by code"
	whyInfra    = "infrastructure measure (deployment, network, volumes): not observable through the service's API or configuration"
	whyCI       = "property of the vendor's CI pipeline, not of the running service"
	whyHosting  = "hosting measure: where the service runs is not observable through its API"
	whyCipher   = "ciphertext does not reveal its algorithm: the check proves that no plaintext is at rest, not which cipher protects it (tomkit's crypto packages use AES-256-GCM, which no external check can confirm)"
	whyFactor   = "which factors a login used is decided by the identity provider, outside the service"
	whyE2E      = "exercised by the reference service's end-to-end tests, not by an external check"
	whyProcess  = "a process carried out over time: a check at one point in time cannot observe it"
	whyLeast    = "whether a role's grants are the least it needs is a review of the policy against the roles' duties; deny-by-default proves only that nothing beyond the grants is allowed (rbac.Lint flags wildcard, cross-tenant and standing privileged grants)"
)

// clauses is the catalogue. Its order is the documents' order.
var clauses = []Clause{
	// 000, "Auf einen Blick"
	{ID: "000-0.1", Document: "000", Section: "Auf einen Blick", Technical: true,
		Text: "EU-Hosting mit TLS 1.3 und AES-256-Verschlüsselung at Rest.",
		Parts: []Part{
			unchecked("eu-hosting", "the service is hosted in the EU", whyHosting),
			checked("tls13", "TLS 1.3 only in transit", "tls13-only"),
			checked("no-plaintext-at-rest", "stored data is not kept in plaintext", "encryption-at-rest"),
			unchecked("aes-256", "the cipher at rest is AES-256", whyCipher),
		}},
	{ID: "000-0.2", Document: "000", Section: "Auf einen Blick", Technical: true,
		Text: "Rollenbasierte Zugriffssteuerung, Vier-Augen-Prinzip für Produktivzugriffe.",
		Parts: []Part{
			checked("rbac", "role-based access control: requests nobody was granted are refused", "deny-by-default"),
			unchecked("four-eyes", "four-eyes approval of production access", whyE2E),
		}},
	{ID: "000-0.3", Document: "000", Section: "Auf einen Blick", Technical: false,
		Text:      "CI/CD mit automatischen Tests, statischer Analyse und Infrastructure-as-Code.",
		Uncovered: whyCI},
	{ID: "000-0.4", Document: "000", Section: "Auf einen Blick", Technical: true,
		Text: "Observability über SigNoz, Alarmierung bei Fehlern und Anomalien.",
		Parts: []Part{
			unchecked("observability", "observability via SigNoz", "the observability backend is infrastructure that no external check can see"),
			unchecked("alerting", "alerting on errors and anomalies", "which errors and anomalies alert, and where alerts are routed, is infrastructure; the service's alert on authentication failures is checked under 000-6.3"),
		}},
	{ID: "000-0.5", Document: "000", Section: "Auf einen Blick", Technical: true,
		Text: "Verschlüsselte Backups täglich, Aufbewahrung max. 30 Tage, Disaster-Recovery-Plan getestet.",
		Parts: []Part{
			unchecked("daily-encrypted-backups", "encrypted backups are taken daily", "the backup schedule is infrastructure and process"),
			checked("retention-30d", "data and its backups are kept at most 30 days (the retention store purges data, the backup set rotates snapshots out)", "retention-window", "backup-retention"),
			unchecked("dr-plan-tested", "the disaster-recovery plan is tested", whyProcess),
		}},
	// 000 §1
	{ID: "000-1.1", Document: "000", Section: "1. Organisation und Governance", Text: "Informationssicherheitsrichtlinie mit jährlicher Review.", Uncovered: whyOrg},
	{ID: "000-1.2", Document: "000", Section: "1. Organisation und Governance", Text: "Security-Champion-Programm im Engineering-Team.", Uncovered: whyOrg},
	{ID: "000-1.3", Document: "000", Section: "1. Organisation und Governance", Text: "Pflichtschulungen zu Datenschutz, Phishing und sicheren Coding-Praktiken.", Uncovered: whyOrg},
	// 000 §2
	{ID: "000-2.1", Document: "000", Section: "2. Zugriffskontrolle", Technical: true,
		Text: "Least-Privilege-Ansatz, rollenbasierte Zugriffsmodelle (RBAC).",
		Parts: []Part{
			checked("rbac", "role-based access control: requests nobody was granted are refused, and a principal cannot reach another tenant", "deny-by-default", "tenant-separation"),
			unchecked("least-privilege", "least privilege: each role holds no more than it needs", whyLeast),
		}},
	{ID: "000-2.2", Document: "000", Section: "2. Zugriffskontrolle", Technical: true,
		Text: "Multi-Faktor-Authentifizierung für Admin- und Cloud-Zugänge.",
		Parts: []Part{
			checked("admin-mfa", "privileged (administrative) permissions are refused without MFA", "mfa-for-privileged"),
			unchecked("login-factor", "the second factor is verified at login", whyFactor),
			unchecked("cloud-mfa", "cloud accounts require MFA", "cloud provider accounts are infrastructure, not observable through the service"),
		}},
	{ID: "000-2.3", Document: "000", Section: "2. Zugriffskontrolle", Technical: true,
		Text: "Jedes Produktivsystem hat Break-Glass-Mechanismen mit Protokollierung.",
		Parts: []Part{
			unchecked("break-glass", "break-glass with logging", "break-glass with logging is "+whyE2E),
		}},
	// 000 §3
	{ID: "000-3.1", Document: "000", Section: "3. Verschlüsselung und Schlüsselmanagement", Technical: true,
		Text: "TLS 1.3 für Daten in Transit, HSTS und strenge Ciphers.",
		Parts: []Part{
			checked("tls13", "TLS 1.3 for data in transit: TLS 1.2 and older clients are refused", "tls13-only"),
			checked("hsts", "HSTS with a max-age of at least a year", "hsts"),
			checked("strict-ciphers", "strict ciphers: with TLS 1.3 only, only its AEAD cipher suites can be negotiated", "tls13-only"),
		}},
	{ID: "000-3.2", Document: "000", Section: "3. Verschlüsselung und Schlüsselmanagement", Technical: true,
		Text: "AES-256-verschlüsselte Volumes für Datenbanken, Object Storage und Backups.",
		Parts: []Part{
			checked("no-plaintext-at-rest", "stored documents are not kept in plaintext", "encryption-at-rest"),
			unchecked("aes-256-volumes", "the volumes of databases, object storage and backups are AES-256-encrypted", "volume encryption is infrastructure; "+whyCipher),
		}},
	{ID: "000-3.3", Document: "000", Section: "3. Verschlüsselung und Schlüsselmanagement", Technical: true,
		Text: "Secrets Management via HashiCorp Vault-kompatibler Lösung (KMS-integriert), regelmäßige Rotation.",
		Parts: []Part{
			unchecked("kms-rotation", "secrets in a Vault-compatible KMS, rotated regularly", "the KMS and its rotation schedule are not observable from outside the service"),
		}},
	// 000 §4
	{ID: "000-4.1", Document: "000", Section: "4. Applikationssicherheit / SDLC", Text: "Code-Reviews im Vier-Augen-Prinzip, automatisierte Tests (Unit, Integration, E2E).", Uncovered: whyOrg},
	{ID: "000-4.2", Document: "000", Section: "4. Applikationssicherheit / SDLC", Technical: true,
		Text:  "Static Application Security Testing (SAST) & Dependency Scans (SCA) in CI.",
		Parts: []Part{unchecked("sast-sca", "SAST and dependency scans run in CI", whyCI)}},
	{ID: "000-4.3", Document: "000", Section: "4. Applikationssicherheit / SDLC", Text: "Infrastructure-as-Code (Terraform/Ansible) mit Pull-Request-Workflows.", Uncovered: whyOrg},
	// 000 §5
	{ID: "000-5.1", Document: "000", Section: "5. Infrastruktur & Netzwerk", Technical: true,
		Text:  "Containergestützte Deployments (Docker/Dokploy) mit minimalen Images.",
		Parts: []Part{unchecked("containers", "container deployments with minimal images", whyInfra)}},
	{ID: "000-5.2", Document: "000", Section: "5. Infrastruktur & Netzwerk", Technical: true,
		Text:  "Segmentierung von Produktions- und Staging-Umgebungen; getrennte Secrets.",
		Parts: []Part{unchecked("segmentation", "production and staging are segmented, with separate secrets", whyInfra)}},
	{ID: "000-5.3", Document: "000", Section: "5. Infrastruktur & Netzwerk", Technical: true,
		Text: "Firewall-Regeln und Security-Groups nach dem Prinzip „deny by default“.",
		Parts: []Part{
			unchecked("network", "firewall rules and security groups deny by default", "network firewall rules are infrastructure"),
			checked("application", "deny by default at the application layer: the enforcer refuses requests nobody was granted", "deny-by-default"),
		}},
	// 000 §6
	{ID: "000-6.1", Document: "000", Section: "6. Monitoring & Logging", Technical: true,
		Text: "Prometheus-Metriken und OpenTelemetry-Traces mit Alerting (PagerDuty/Signal).",
		Parts: []Part{
			checked("prometheus-counters", "Prometheus counters of authentication failures and rate-limit violations that rise after a provoked failure", "metrics-counters"),
			unchecked("traces-alerting", "OpenTelemetry traces and alert routing (PagerDuty/Signal)", "traces and alert routing are exported to infrastructure that no external check can see"),
		}},
	{ID: "000-6.2", Document: "000", Section: "6. Monitoring & Logging", Technical: true,
		Text: "Loguru-basierte strukturierte Logs mit zentralem Log-Storage (SigNoz).",
		Parts: []Part{
			checked("structured-log", "a structured audit log that verifies and is tamper-evident", "audit-integrity"),
			unchecked("central-storage", "logs are stored centrally (SigNoz)", "central log storage is infrastructure"),
		}},
	{ID: "000-6.3", Document: "000", Section: "6. Monitoring & Logging", Technical: true,
		Text: "Alarmierung bei Authentifizierungsfehlern, Rate-Limit-Verstößen, Anomalien.",
		Parts: []Part{
			checked("auth-failures-detected", "authentication failures are detected and refused (401)", "authentication-required"),
			checked("auth-failure-alert", "a burst of authentication failures raises an alert in the audit trail", "auth-failure-alert"),
			checked("rate-limit-alert", "requests over the rate limit raise an alert in the audit trail", "rate-limit-alert"),
			checked("alert-counters", "authentication failures and rate-limit violations are counted where Prometheus alerting rules can use them", "metrics-counters"),
			unchecked("anomaly-alert", "anomalies raise an alert", "the document does not define an anomaly, so no check can provoke one"),
		}},
	// 000 §7
	{ID: "000-7.1", Document: "000", Section: "7. Backup & Disaster Recovery", Technical: true,
		Text:  "Tägliche Backups (Datenbank, Blobs) in separater Region; Verschlüsselung.",
		Parts: []Part{unchecked("daily-backups", "daily encrypted backups in a separate region", whyInfra)}},
	{ID: "000-7.2", Document: "000", Section: "7. Backup & Disaster Recovery", Technical: true,
		Text: "Retention: max. 30 Tage; regelmäßige Restore-Tests (mindestens quartalsweise).",
		Parts: []Part{
			checked("retention-30d", "data and its backups are kept at most 30 days (the retention store purges data, the backup set rotates snapshots out)", "retention-window", "backup-retention"),
			unchecked("restore-tests", "restore tests at least quarterly", whyProcess),
		}},
	{ID: "000-7.3", Document: "000", Section: "7. Backup & Disaster Recovery", Text: "Runbooks für Notfallszenarien, inklusive Kommunikationsplan.", Uncovered: whyOrg},
	// 000 §8, §9
	{ID: "000-8.1", Document: "000", Section: "8. Incident Response", Text: "Incident-Playbooks mit Schweregraden, Eskalationsketten und Kommunikationsrichtlinien.", Uncovered: whyOrg},
	{ID: "000-8.2", Document: "000", Section: "8. Incident Response", Text: "Security-Breach-Benachrichtigung spätestens binnen 48 Stunden (vgl. AVV).", Uncovered: whyOrg},
	{ID: "000-8.3", Document: "000", Section: "8. Incident Response", Text: "Post-Incident-Reviews inklusive Root-Cause-Analyse und Maßnahmenverfolgung.", Uncovered: whyOrg},
	{ID: "000-9.1", Document: "000", Section: "9. Business Continuity", Text: "BCP mit klaren Recovery Time Objectives (RTO) und Recovery Point Objectives (RPO).", Uncovered: whyOrg},
	{ID: "000-9.2", Document: "000", Section: "9. Business Continuity", Text: "Regelmäßige Tabletop-Übungen für kritische Szenarien (Datenverlust, Ausfall Hosting).", Uncovered: whyOrg},

	// 004, preamble
	{ID: "004-0.1", Document: "004", Section: "Preamble", Text: "ISO/IEC 27001-aligned ISMS, certification in progress; evidence on request; the level of security shall not be reduced.", Uncovered: whyOrg},
	// 004 §1
	{ID: "004-1.1", Document: "004", Section: "1. Confidentiality", Text: "Physical access control: hosting in certified EU data centers (Scaleway, Paris region); physical security by the infrastructure provider.", Uncovered: whyPhysical},
	{ID: "004-1.2", Document: "004", Section: "1. Confidentiality", Technical: true,
		Text: "System access control: authentication with multi-factor authentication (MFA) for administrative access; role-based assignment of rights (RBAC) on a least-privilege basis.",
		Parts: []Part{
			checked("authentication", "requests without a valid token are refused (401)", "authentication-required"),
			checked("admin-mfa", "administrative permissions are refused without MFA", "mfa-for-privileged"),
			unchecked("login-factor", "the second factor is verified at login", whyFactor),
			checked("rbac", "role-based assignment of rights: requests nobody was granted are refused", "deny-by-default"),
			unchecked("least-privilege", "rights are assigned on a least-privilege basis: each role holds no more than it needs", whyLeast),
		}},
	{ID: "004-1.3", Document: "004", Section: "1. Confidentiality", Technical: true,
		Text: "Data access control: need-to-know, role-based access, access logging; restriction of administrative access.",
		Parts: []Part{
			checked("need-to-know", "need-to-know, role-based access: requests nobody was granted are refused, and a principal cannot reach another tenant", "deny-by-default", "tenant-separation"),
			checked("access-logging", "each access is recorded, with its request id, in an audit log that verifies and is tamper-evident", "access-logged", "audit-integrity"),
			checked("admin-restriction", "administrative access is restricted: privileged permissions need MFA", "mfa-for-privileged"),
		}},
	{ID: "004-1.4", Document: "004", Section: "1. Confidentiality", Technical: true,
		Text: "Separation control: logical tenant separation; in § 203 mode, a tenant separated from normal operation with its own, isolated knowledge base.",
		Parts: []Part{
			checked("tenant-separation", "logical tenant separation: a principal cannot reach another tenant's documents", "tenant-separation"),
			checked("s203-separate-operation", "the § 203 tenant runs separated from normal operation (its guards refuse web search and non-EU models)", "section203-guards"),
			unchecked("s203-isolated-kb", "the § 203 tenant's knowledge base is isolated", "the isolation of the knowledge base's storage is not observable from outside"),
		}},
	{ID: "004-1.5", Document: "004", Section: "1. Confidentiality", Technical: true,
		Text: "Pseudonymization/data minimization to the extent possible for the purpose.",
		Parts: []Part{
			checked("pseudonymized-audit", "the audit trail carries pseudonyms, not the raw client addresses", "audit-pseudonyms"),
			unchecked("minimization", "data is minimised for its purpose", "whether data is minimised for its purpose is a design judgement"),
		}},
	// 004 §2
	{ID: "004-2.1", Document: "004", Section: "2. Integrity", Technical: true,
		Text:  "Transport encryption with TLS 1.3 for data in transit.",
		Parts: []Part{checked("tls13", "TLS 1.3 only in transit", "tls13-only")}},
	{ID: "004-2.2", Document: "004", Section: "2. Integrity", Technical: true,
		Text: "Encryption of data and artifacts at rest with AES-256-GCM.",
		Parts: []Part{
			checked("no-plaintext-at-rest", "stored data is not kept in plaintext", "encryption-at-rest"),
			unchecked("aes-256-gcm", "the cipher at rest is AES-256-GCM", whyCipher),
		}},
	{ID: "004-2.3", Document: "004", Section: "2. Integrity", Technical: true,
		Text: "Input and transfer control; logging of relevant actions.",
		Parts: []Part{
			checked("input-control", "input control: who stored data is recorded in an audit log that verifies and is tamper-evident", "access-logged", "audit-integrity"),
			checked("transfer-control", "transfer control: data in transit is protected by TLS 1.3 only", "tls13-only"),
		}},
	// 004 §3
	{ID: "004-3.1", Document: "004", Section: "3. Availability and resilience", Technical: true,
		Text: "Data backup with defined deletion/overwrite cycles (up to 90 days); content data is excluded under zero-data-retention operation.",
		Parts: []Part{
			unchecked("backup", "data is backed up", "the backup schedule is infrastructure"),
			checked("deletion-90d", "data and its backups are deleted within 90 days (the retention store purges data, the backup set rotates snapshots out)", "retention-window", "backup-retention"),
			unchecked("zdr-excluded", "content data is excluded from backups under zero-data-retention operation", "no check can observe what a backup contains"),
		}},
	{ID: "004-3.2", Document: "004", Section: "3. Availability and resilience", Text: "Monitoring, incident-response process, and a business continuity/emergency plan; regular review of effectiveness.", Uncovered: whyOrg},
	// 004 §4
	{ID: "004-4.1", Document: "004", Section: "4. Procedures for regular review, assessment, and evaluation", Text: "ISMS pursuant to ISO/IEC 27001 (undergoing certification); regular penetration testing; vulnerability management; secure software development lifecycle (secure SDLC).", Uncovered: whyOrg},
	{ID: "004-4.2", Document: "004", Section: "4. Procedures for regular review, assessment, and evaluation", Text: "Order and subprocessor control: careful selection, contractual binding at least equivalently (Art. 28 (4) GDPR), flow-down of obligations.", Uncovered: "contractual measure: " + whyOrg},
	// 004 §5
	{ID: "004-5.1", Document: "004", Section: "5. Encryption and key management", Technical: true,
		Text: "Encryption in transit (TLS 1.3) and of data/artifacts at rest (AES-256-GCM).",
		Parts: []Part{
			checked("tls13", "TLS 1.3 only in transit", "tls13-only"),
			checked("no-plaintext-at-rest", "stored data is not kept in plaintext", "encryption-at-rest"),
			unchecked("aes-256-gcm", "the cipher at rest is AES-256-GCM", whyCipher),
		}},
	{ID: "004-5.2", Document: "004", Section: "5. Encryption and key management", Text: "Provider-managed keys; \"Bring Your Own Key\" (BYOK) is not currently offered.", Uncovered: "a statement of the offering, not a control code can check"},
	// 004 §6
	{ID: "004-6.1", Document: "004", Section: "6. AI processing", Technical: true,
		Text: "No use of customer content for training; EU-based routing via Cortecs; zero data retention where available.",
		Parts: []Part{
			unchecked("provider-side", "no training on customer content, EU routing and zero data retention at the model provider", "training use and retention at the model provider happen outside the service and are not observable"),
		}},
	{ID: "004-6.2", Document: "004", Section: "6. AI processing", Technical: true,
		Text: "In § 203 mode, exclusively EU/EU-controlled models, web search deactivated (see the confidentiality agreement).",
		Parts: []Part{
			checked("eu-models-only", "in § 203 mode a model that is not EU-controlled is refused", "section203-guards"),
			checked("no-web-search", "in § 203 mode web search is refused", "section203-guards"),
		}},
}

// Clauses returns the catalogue of every clause of the two reference TOM
// documents, technical and organisational, in document order. The
// returned slice and the parts it holds are copies.
func Clauses() []Clause {
	out := append([]Clause(nil), clauses...)
	for i := range out {
		out[i].Parts = append([]Part(nil), out[i].Parts...)
		for j := range out[i].Parts {
			out[i].Parts[j].Checks = append([]string(nil), out[i].Parts[j].Checks...)
		}
	}
	return out
}
