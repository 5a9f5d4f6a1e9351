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
	// Uncovered says why no tomtest check covers the clause, or which
	// part of it the checks cannot see.
	Uncovered string `json:"uncovered,omitempty"`
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
)

// clauses is the catalogue. Its order is the documents' order.
var clauses = []Clause{
	// 000, "Auf einen Blick"
	{ID: "000-0.1", Document: "000", Section: "Auf einen Blick", Technical: true,
		Text:      "EU-Hosting mit TLS 1.3 und AES-256-Verschlüsselung at Rest.",
		Uncovered: "EU hosting is a hosting measure and not observable; TLS 1.3 and encryption at rest are checked"},
	{ID: "000-0.2", Document: "000", Section: "Auf einen Blick", Technical: true,
		Text:      "Rollenbasierte Zugriffssteuerung, Vier-Augen-Prinzip für Produktivzugriffe.",
		Uncovered: "four-eyes approval of production access is exercised by the reference service's end-to-end tests, not by an external check"},
	{ID: "000-0.3", Document: "000", Section: "Auf einen Blick", Technical: false,
		Text:      "CI/CD mit automatischen Tests, statischer Analyse und Infrastructure-as-Code.",
		Uncovered: whyCI},
	{ID: "000-0.4", Document: "000", Section: "Auf einen Blick", Technical: true,
		Text:      "Observability über SigNoz, Alarmierung bei Fehlern und Anomalien.",
		Uncovered: "the observability backend and its alert routing are infrastructure; the service's own alert hook is exercised by the reference service's tests"},
	{ID: "000-0.5", Document: "000", Section: "Auf einen Blick", Technical: true,
		Text:      "Verschlüsselte Backups täglich, Aufbewahrung max. 30 Tage, Disaster-Recovery-Plan getestet.",
		Uncovered: "the backup schedule and the tested disaster-recovery plan are infrastructure and process; the 30-day retention window is checked"},
	// 000 §1
	{ID: "000-1.1", Document: "000", Section: "1. Organisation und Governance", Text: "Informationssicherheitsrichtlinie mit jährlicher Review.", Uncovered: whyOrg},
	{ID: "000-1.2", Document: "000", Section: "1. Organisation und Governance", Text: "Security-Champion-Programm im Engineering-Team.", Uncovered: whyOrg},
	{ID: "000-1.3", Document: "000", Section: "1. Organisation und Governance", Text: "Pflichtschulungen zu Datenschutz, Phishing und sicheren Coding-Praktiken.", Uncovered: whyOrg},
	// 000 §2
	{ID: "000-2.1", Document: "000", Section: "2. Zugriffskontrolle", Technical: true,
		Text: "Least-Privilege-Ansatz, rollenbasierte Zugriffsmodelle (RBAC)."},
	{ID: "000-2.2", Document: "000", Section: "2. Zugriffskontrolle", Technical: true,
		Text:      "Multi-Faktor-Authentifizierung für Admin- und Cloud-Zugänge.",
		Uncovered: "which factors a login used is up to the identity provider; the check proves that privileged permissions are refused without MFA"},
	{ID: "000-2.3", Document: "000", Section: "2. Zugriffskontrolle", Technical: true,
		Text:      "Jedes Produktivsystem hat Break-Glass-Mechanismen mit Protokollierung.",
		Uncovered: "break-glass with logging is exercised by the reference service's end-to-end tests, not by an external check"},
	// 000 §3
	{ID: "000-3.1", Document: "000", Section: "3. Verschlüsselung und Schlüsselmanagement", Technical: true,
		Text: "TLS 1.3 für Daten in Transit, HSTS und strenge Ciphers."},
	{ID: "000-3.2", Document: "000", Section: "3. Verschlüsselung und Schlüsselmanagement", Technical: true,
		Text:      "AES-256-verschlüsselte Volumes für Datenbanken, Object Storage und Backups.",
		Uncovered: "volume encryption is infrastructure; the check proves that no plaintext reaches the store, not the cipher of the volume"},
	{ID: "000-3.3", Document: "000", Section: "3. Verschlüsselung und Schlüsselmanagement", Technical: true,
		Text:      "Secrets Management via HashiCorp Vault-kompatibler Lösung (KMS-integriert), regelmäßige Rotation.",
		Uncovered: "the KMS and its rotation schedule are not observable from outside the service"},
	// 000 §4
	{ID: "000-4.1", Document: "000", Section: "4. Applikationssicherheit / SDLC", Text: "Code-Reviews im Vier-Augen-Prinzip, automatisierte Tests (Unit, Integration, E2E).", Uncovered: whyOrg},
	{ID: "000-4.2", Document: "000", Section: "4. Applikationssicherheit / SDLC", Technical: true,
		Text: "Static Application Security Testing (SAST) & Dependency Scans (SCA) in CI.", Uncovered: whyCI},
	{ID: "000-4.3", Document: "000", Section: "4. Applikationssicherheit / SDLC", Text: "Infrastructure-as-Code (Terraform/Ansible) mit Pull-Request-Workflows.", Uncovered: whyOrg},
	// 000 §5
	{ID: "000-5.1", Document: "000", Section: "5. Infrastruktur & Netzwerk", Technical: true,
		Text: "Containergestützte Deployments (Docker/Dokploy) mit minimalen Images.", Uncovered: whyInfra},
	{ID: "000-5.2", Document: "000", Section: "5. Infrastruktur & Netzwerk", Technical: true,
		Text: "Segmentierung von Produktions- und Staging-Umgebungen; getrennte Secrets.", Uncovered: whyInfra},
	{ID: "000-5.3", Document: "000", Section: "5. Infrastruktur & Netzwerk", Technical: true,
		Text:      "Firewall-Regeln und Security-Groups nach dem Prinzip „deny by default“.",
		Uncovered: "network firewall rules are infrastructure; deny-by-default is checked at the application layer"},
	// 000 §6
	{ID: "000-6.1", Document: "000", Section: "6. Monitoring & Logging", Technical: true,
		Text:      "Prometheus-Metriken und OpenTelemetry-Traces mit Alerting (PagerDuty/Signal).",
		Uncovered: "metrics, traces and alert routing are exported to infrastructure that no external check can see"},
	{ID: "000-6.2", Document: "000", Section: "6. Monitoring & Logging", Technical: true,
		Text:      "Loguru-basierte strukturierte Logs mit zentralem Log-Storage (SigNoz).",
		Uncovered: "central log storage is infrastructure; the integrity of the structured audit log is checked"},
	{ID: "000-6.3", Document: "000", Section: "6. Monitoring & Logging", Technical: true,
		Text:      "Alarmierung bei Authentifizierungsfehlern, Rate-Limit-Verstößen, Anomalien.",
		Uncovered: "alert delivery is not observable from outside; the check proves that authentication failures are refused with 401 (and audited, when the audit log is given)"},
	// 000 §7
	{ID: "000-7.1", Document: "000", Section: "7. Backup & Disaster Recovery", Technical: true,
		Text: "Tägliche Backups (Datenbank, Blobs) in separater Region; Verschlüsselung.", Uncovered: whyInfra},
	{ID: "000-7.2", Document: "000", Section: "7. Backup & Disaster Recovery", Technical: true,
		Text:      "Retention: max. 30 Tage; regelmäßige Restore-Tests (mindestens quartalsweise).",
		Uncovered: "restore tests are a process; the 30-day retention window is checked"},
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
		Text:      "System access control: authentication with multi-factor authentication (MFA) for administrative access; role-based assignment of rights (RBAC) on a least-privilege basis.",
		Uncovered: "which factors a login used is up to the identity provider; authentication, MFA for privileged permissions and deny-by-default are checked"},
	{ID: "004-1.3", Document: "004", Section: "1. Confidentiality", Technical: true,
		Text: "Data access control: need-to-know, role-based access, access logging; restriction of administrative access."},
	{ID: "004-1.4", Document: "004", Section: "1. Confidentiality", Technical: true,
		Text:      "Separation control: logical tenant separation; in § 203 mode, a tenant separated from normal operation with its own, isolated knowledge base.",
		Uncovered: "the isolation of the knowledge base's storage is not observable from outside; tenant separation and the § 203 guards are checked"},
	{ID: "004-1.5", Document: "004", Section: "1. Confidentiality", Technical: true,
		Text:      "Pseudonymization/data minimization to the extent possible for the purpose.",
		Uncovered: "whether data is minimised for its purpose is a design judgement; the audit package pseudonymizes personal attributes, which no external check inspects yet"},
	// 004 §2
	{ID: "004-2.1", Document: "004", Section: "2. Integrity", Technical: true, Text: "Transport encryption with TLS 1.3 for data in transit."},
	{ID: "004-2.2", Document: "004", Section: "2. Integrity", Technical: true,
		Text:      "Encryption of data and artifacts at rest with AES-256-GCM.",
		Uncovered: "ciphertext does not reveal its algorithm; the check proves no plaintext is at rest, and tomkit's crypto packages use AES-256-GCM"},
	{ID: "004-2.3", Document: "004", Section: "2. Integrity", Technical: true, Text: "Input and transfer control; logging of relevant actions."},
	// 004 §3
	{ID: "004-3.1", Document: "004", Section: "3. Availability and resilience", Technical: true,
		Text:      "Data backup with defined deletion/overwrite cycles (up to 90 days); content data is excluded under zero-data-retention operation.",
		Uncovered: "the backup schedule is infrastructure; the 90-day window is checked"},
	{ID: "004-3.2", Document: "004", Section: "3. Availability and resilience", Text: "Monitoring, incident-response process, and a business continuity/emergency plan; regular review of effectiveness.", Uncovered: whyOrg},
	// 004 §4
	{ID: "004-4.1", Document: "004", Section: "4. Procedures for regular review, assessment, and evaluation", Text: "ISMS pursuant to ISO/IEC 27001 (undergoing certification); regular penetration testing; vulnerability management; secure software development lifecycle (secure SDLC).", Uncovered: whyOrg},
	{ID: "004-4.2", Document: "004", Section: "4. Procedures for regular review, assessment, and evaluation", Text: "Order and subprocessor control: careful selection, contractual binding at least equivalently (Art. 28 (4) GDPR), flow-down of obligations.", Uncovered: "contractual measure: " + whyOrg},
	// 004 §5
	{ID: "004-5.1", Document: "004", Section: "5. Encryption and key management", Technical: true, Text: "Encryption in transit (TLS 1.3) and of data/artifacts at rest (AES-256-GCM)."},
	{ID: "004-5.2", Document: "004", Section: "5. Encryption and key management", Text: "Provider-managed keys; \"Bring Your Own Key\" (BYOK) is not currently offered.", Uncovered: "a statement of the offering, not a control code can check"},
	// 004 §6
	{ID: "004-6.1", Document: "004", Section: "6. AI processing", Technical: true,
		Text:      "No use of customer content for training; EU-based routing via Cortecs; zero data retention where available.",
		Uncovered: "training use and retention at the model provider happen outside the service and are not observable"},
	{ID: "004-6.2", Document: "004", Section: "6. AI processing", Technical: true,
		Text: "In § 203 mode, exclusively EU/EU-controlled models, web search deactivated (see the confidentiality agreement)."},
}

// Clauses returns the catalogue of every clause of the two reference TOM
// documents, technical and organisational, in document order. The
// returned slice is a copy.
func Clauses() []Clause {
	return append([]Clause(nil), clauses...)
}
