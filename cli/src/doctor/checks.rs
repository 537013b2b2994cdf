//! The DNS, web and SMTP checks: each reads what receivers read and turns it into a
//! [`Finding`], with the records to publish when something is missing or wrong.
//!
//! AWS facts (DKIM tokens, the MAIL FROM domain) come in from [`super::ses`]; nothing here
//! calls AWS.

use std::net::IpAddr;

use hickory_resolver::proto::rr::RecordType;
use rustls::pki_types::CertificateDer;

use super::dmarc::{self, DkimKey, Dmarc, Policy};
use super::dns::{Dns, DnsError, reverse_name};
use super::ses::{IdentityFacts, Lookup};
use super::spf::{self, FetchError, LookupError, Qualifier, SpfDns};
use super::tls::{self, Smtp};
use super::{Finding, Setup, mta_sts};

/// Renewal should happen well before this: a warning below it.
const CERT_WARN_DAYS: i64 = 14;

fn lookup_text(err: &DnsError) -> String {
    match err {
        DnsError::Lookup { source, .. } => format!("{err}: {source}"),
        DnsError::BadName(_) | DnsError::Direct { .. } => err.to_string(),
    }
}

impl SpfDns for Dns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        Dns::txt(self, name).await.map_err(|e| lookup_text(&e))
    }

    async fn ips(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        Dns::ips(self, name).await.map_err(|e| lookup_text(&e))
    }

    async fn mx_hosts(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let mx = self.mx(name).await.map_err(|e| lookup_text(&e))?;
        Ok(mx.into_iter().map(|(_, host)| host).collect())
    }
}

fn txt_line(name: &str, text: &str) -> String {
    format!("{name}. TXT \"{text}\"")
}

fn address_line(name: &str, ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{name}. A {v4}"),
        IpAddr::V6(v6) => format!("{name}. AAAA {v6}"),
    }
}

fn describe(verdict: &spf::Verdict) -> String {
    match verdict {
        spf::Verdict::Pass => "pass".into(),
        spf::Verdict::Fail => "fail".into(),
        spf::Verdict::SoftFail => "softfail".into(),
        spf::Verdict::Neutral => "neutral".into(),
        spf::Verdict::None => "none".into(),
        spf::Verdict::PermError(e) => format!("permerror, {e}"),
        spf::Verdict::TempError(e) => format!("temperror, {e}"),
    }
}

/// The qualifier the record finally ends with, following `redirect=` (up to five hops).
async fn ending(dns: &Dns, record: &spf::Record) -> Option<Qualifier> {
    let mut current = record.clone();
    for _ in 0..5 {
        if let Some(all) = current.all() {
            return Some(all);
        }
        let target = current.redirect()?.to_owned();
        current = spf::fetch(dns, &target).await.ok().flatten()?;
    }
    None
}

/// SPF of the sending domain: includes amazonses.com, allows the Mailcow host, stays within
/// 10 lookups, ends in `~all` or `-all`.
pub async fn spf(s: &Setup) -> Finding {
    const ID: &str = "spf";
    let suggestion = format!("v=spf1 include:amazonses.com {} ~all", spf::ip_term(s.ip));
    let record = match spf::fetch(&s.dns, &s.domain).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            return Finding::fail(
                ID,
                format!("{} publishes no SPF record: receivers cannot tell SES and Mailcow from forgers", s.domain),
            )
            .publish([txt_line(&s.domain, &suggestion)]);
        }
        Err(FetchError::Lookup(e)) => return Finding::fail(ID, format!("could not read SPF: {e}")),
        Err(e) => {
            return Finding::fail(ID, e.to_string()).publish([txt_line(&s.domain, &suggestion)]);
        }
    };
    let expansion = spf::expand(&s.dns, &record).await;
    let verdict = spf::check_host(&s.dns, s.ip, &s.domain).await;
    let includes_ses = expansion.reached.contains("amazonses.com");
    let allows_ip = verdict == spf::Verdict::Pass;
    let mut problems = Vec::new();
    if !includes_ses {
        problems.push(
            "does not include amazonses.com, so mail relayed through SES fails SPF".to_owned(),
        );
    }
    if !allows_ip {
        problems.push(format!("gives {} (the Mailcow host) {}", s.ip, describe(&verdict)));
    }
    if expansion.lookups > spf::LOOKUP_LIMIT {
        problems.push(format!(
            "needs {} DNS lookups, more than the {} receivers allow: replace includes by ip4/ip6 \
             networks",
            expansion.lookups,
            spf::LOOKUP_LIMIT
        ));
    }
    let end = ending(&s.dns, &record).await;
    let good_end = matches!(end, Some(Qualifier::Fail | Qualifier::SoftFail));
    if !good_end {
        let what = match end {
            Some(Qualifier::Pass) => "ends in +all, which lets anyone send as the domain",
            Some(Qualifier::Neutral) => "ends in ?all, which says nothing about forgers",
            _ => "has no all at the end, which says nothing about forgers",
        };
        problems.push(format!("{what}: end it in ~all or -all"));
    }
    problems.extend(expansion.problems.iter().cloned());
    if problems.is_empty() {
        return Finding::pass(
            ID,
            format!(
                "\"{}\": amazonses.com and {} allowed, {} of {} DNS lookups",
                record.text,
                s.ip,
                expansion.lookups,
                spf::LOOKUP_LIMIT
            ),
        );
    }
    let finding = Finding::fail(ID, format!("the SPF record {}", problems.join("; ")));
    if includes_ses && allows_ip && good_end {
        return finding;
    }
    let fixed =
        record.amended((!includes_ses).then_some("amazonses.com"), (!allows_ip).then_some(s.ip));
    finding.publish([txt_line(&s.domain, &fixed)])
}

/// The SES Easy DKIM CNAMEs: `<token>._domainkey.<domain>` -> `<token>.<signing zone>`.
pub async fn dkim_ses(s: &Setup, identity: &Lookup<IdentityFacts>) -> Finding {
    const ID: &str = "dkim";
    let identity = match identity {
        Lookup::Found(identity) => identity,
        _ => return Finding::skip(ID, "needs the SES identity's DKIM tokens (see ses-identity)"),
    };
    if identity.dkim_tokens.is_empty() {
        return Finding::fail(
            ID,
            format!(
                "SES has no Easy DKIM tokens for {}: turn on Easy DKIM for the identity",
                s.domain
            ),
        );
    }
    let mut wrong = Vec::new();
    let mut publish = Vec::new();
    for token in &identity.dkim_tokens {
        let name = format!("{token}._domainkey.{}", s.domain);
        let expected = format!("{token}.{}", identity.dkim_zone);
        match s.dns.cname(&name).await {
            Ok(targets) if targets == [expected.clone()] => {}
            Ok(targets) => {
                wrong.push(if targets.is_empty() {
                    format!("{name} is missing")
                } else {
                    format!("{name} points to {}", targets.join(", "))
                });
                publish.push(format!("{name}. CNAME {expected}."));
            }
            Err(e) => {
                return Finding::fail(ID, format!("could not read DKIM: {}", lookup_text(&e)));
            }
        }
    }
    let count = identity.dkim_tokens.len();
    if !wrong.is_empty() {
        return Finding::fail(
            ID,
            format!(
                "{} of {count} SES DKIM records wrong ({}): SES cannot sign for {}",
                wrong.len(),
                wrong.join("; "),
                s.domain
            ),
        )
        .publish(publish);
    }
    if identity.dkim_status != "SUCCESS" {
        return Finding::warn(
            ID,
            format!(
                "all {count} SES DKIM records are published, but SES reports DKIM {}: it checks \
                 DNS again within a few hours",
                identity.dkim_status
            ),
        );
    }
    Finding::pass(
        ID,
        format!("all {count} SES DKIM CNAMEs point to {}, SES signs", identity.dkim_zone),
    )
}

/// Mailcow's own DKIM key at `<selector>._domainkey.<domain>`.
pub async fn dkim_mailcow(s: &Setup) -> Finding {
    const ID: &str = "dkim-mailcow";
    let Some(selector) = &s.dkim_selector else {
        return Finding::skip(
            ID,
            "pass --dkim-selector (Mailcow's default is `dkim`) to check Mailcow's own key",
        );
    };
    let name = format!("{selector}._domainkey.{}", s.domain);
    let publish = txt_line(&name, "v=DKIM1; k=rsa; p=<the key Mailcow shows>");
    let records = match s.dns.txt(&name).await {
        Ok(records) => records,
        Err(e) => return Finding::fail(ID, format!("could not read {name}: {}", lookup_text(&e))),
    };
    let keys: Vec<DkimKey> = records.iter().map(|r| dmarc::dkim_key(r)).collect();
    match keys.iter().find(|k| matches!(k, DkimKey::Published(_))) {
        Some(DkimKey::Published(kind)) => {
            Finding::pass(ID, format!("Mailcow's {kind} key is published at {name}"))
        }
        _ if keys.contains(&DkimKey::Revoked) => Finding::fail(
            ID,
            format!(
                "the key at {name} is revoked (empty p=): publish the current key from Mailcow"
            ),
        )
        .publish([publish]),
        _ => Finding::fail(
            ID,
            format!(
                "no DKIM key at {name}: publish the TXT record Mailcow shows under Configuration > \
                 ARC/DKIM keys"
            ),
        )
        .publish([publish]),
    }
}

fn dmarc_suggestion(domain: &str, existing: Option<&str>) -> String {
    let mut tags: Vec<(String, String)> = existing.map(dmarc::tags).unwrap_or_default();
    tags.retain(|(n, _)| n != "v");
    match tags.iter_mut().find(|(n, _)| n == "p") {
        Some(p) if p.1.eq_ignore_ascii_case("reject") => {}
        Some(p) => p.1 = "quarantine".into(),
        None => tags.insert(0, ("p".into(), "quarantine".into())),
    }
    if !tags.iter().any(|(n, _)| n == "rua") {
        tags.push(("rua".into(), format!("mailto:dmarc-reports@{domain}")));
    }
    let mut text = "v=DMARC1".to_owned();
    for (name, value) in tags {
        text.push_str(&format!("; {name}={value}"));
    }
    text
}

/// The DMARC record at `_dmarc.<domain>`: present, `p=quarantine` or `reject`, `rua` set.
pub async fn dmarc(s: &Setup) -> (Finding, Option<Dmarc>) {
    const ID: &str = "dmarc";
    let name = format!("_dmarc.{}", s.domain);
    let records = match s.dns.txt(&name).await {
        Ok(records) => records,
        Err(e) => {
            return (Finding::fail(ID, format!("could not read DMARC: {}", lookup_text(&e))), None);
        }
    };
    let candidates: Vec<&String> = records.iter().filter(|r| dmarc::is_dmarc(r)).collect();
    let text = match candidates.as_slice() {
        [] => {
            let fix = txt_line(&name, &dmarc_suggestion(&s.domain, None));
            let finding = Finding::fail(
                ID,
                format!(
                    "no DMARC record at {name}: large mailbox providers reject or junk bulk senders without one"
                ),
            );
            return (finding.publish([fix]), None);
        }
        [one] => one.as_str(),
        many => {
            let finding = Finding::fail(
                ID,
                format!(
                    "{} DMARC records at {name}: receivers ignore them all; keep one",
                    many.len()
                ),
            );
            return (finding, None);
        }
    };
    let fix = txt_line(&name, &dmarc_suggestion(&s.domain, Some(text)));
    let record = match dmarc::parse(text) {
        Ok(record) => record,
        Err(e) => {
            return (
                Finding::fail(ID, format!("unusable DMARC record \"{text}\": {e}")).publish([fix]),
                None,
            );
        }
    };
    let finding = if record.policy == Policy::None {
        Finding::fail(
            ID,
            "p=none only monitors: strict receivers want p=quarantine or p=reject".to_owned(),
        )
        .publish([fix])
    } else if record.rua.is_empty() {
        Finding::warn(
            ID,
            format!(
                "p={} but no rua=: you get no reports of who sends as {}",
                record.policy.as_str(),
                s.domain
            ),
        )
        .publish([fix])
    } else if record.pct < 100 {
        Finding::warn(
            ID,
            format!(
                "p={} applies to only {}% of failing mail (pct=)",
                record.policy.as_str(),
                record.pct
            ),
        )
    } else {
        Finding::pass(
            ID,
            format!("p={}, reports to {}", record.policy.as_str(), record.rua.join(", ")),
        )
    };
    (finding, Some(record))
}

/// The SES custom MAIL FROM domain: MX to SES's feedback endpoint, SPF with amazonses.com,
/// under the sending domain (DMARC SPF alignment).
pub async fn mail_from(
    s: &Setup,
    identity: &Lookup<IdentityFacts>,
    dmarc: Option<&Dmarc>,
) -> Finding {
    const ID: &str = "mail-from";
    let identity = match identity {
        Lookup::Found(identity) => identity,
        _ => {
            return Finding::skip(
                ID,
                "needs the SES identity's MAIL FROM settings (see ses-identity)",
            );
        }
    };
    let feedback = format!("feedback-smtp.{}.amazonses.com", s.region);
    let records = |mf: &str| {
        vec![format!("{mf}. MX 10 {feedback}."), txt_line(mf, "v=spf1 include:amazonses.com ~all")]
    };
    let Some((mf, status)) = &identity.mail_from else {
        let mf = format!("bounce.{}", s.domain);
        return Finding::warn(
            ID,
            format!(
                "no custom MAIL FROM domain: SES sends with an amazonses.com envelope, so SPF never \
                 aligns and DMARC rests on DKIM alone; publish these records, then run `aws sesv2 \
                 put-email-identity-mail-from-attributes --email-identity {} --mail-from-domain {mf}`",
                s.domain
            ),
        )
        .publish(records(&mf));
    };
    let mut problems = Vec::new();
    let mut publish = Vec::new();
    match s.dns.mx(mf).await {
        Ok(hosts) if hosts.iter().any(|(_, h)| *h == feedback) => {}
        Ok(hosts) => {
            let found: Vec<&str> = hosts.iter().map(|(_, h)| h.as_str()).collect();
            problems.push(if found.is_empty() {
                format!("{mf} has no MX record, so SES falls back to amazonses.com")
            } else {
                format!("{mf} has MX {} instead of {feedback}", found.join(", "))
            });
            publish.push(format!("{mf}. MX 10 {feedback}."));
        }
        Err(e) => return Finding::fail(ID, format!("could not read {mf} MX: {}", lookup_text(&e))),
    }
    let spf_ok = match spf::fetch(&s.dns, mf).await {
        Ok(Some(record)) => spf::expand(&s.dns, &record).await.reached.contains("amazonses.com"),
        Ok(None) | Err(FetchError::Multiple { .. } | FetchError::Parse { .. }) => false,
        Err(FetchError::Lookup(e)) => {
            return Finding::fail(ID, format!("could not read {mf} SPF: {e}"));
        }
    };
    if !spf_ok {
        problems.push(format!("{mf} has no SPF record including amazonses.com"));
        publish.push(txt_line(mf, "v=spf1 include:amazonses.com ~all"));
    }
    let under = mf == &s.domain || mf.ends_with(&format!(".{}", s.domain));
    if !under {
        problems.push(format!("{mf} is not under {}, so SPF cannot align for DMARC", s.domain));
    } else if dmarc.is_some_and(|d| d.strict_spf) && mf != &s.domain {
        problems.push(
            "DMARC aspf=s needs the MAIL FROM domain to equal the sending domain: drop aspf=s"
                .to_owned(),
        );
    }
    if status != "SUCCESS" {
        problems.push(format!("SES reports the MAIL FROM domain as {status}"));
    }
    if problems.is_empty() {
        return Finding::pass(
            ID,
            format!(
                "{mf}: MX to {feedback}, SPF includes amazonses.com, aligned with {}",
                s.domain
            ),
        );
    }
    Finding::fail(ID, problems.join("; ")).publish(publish)
}

/// Whether a PTR name looks like an access network's name (it contains the address, or words
/// that providers use for dynamic pools): receivers treat such senders as dial-up.
pub fn looks_generic(name: &str, ip: IpAddr) -> bool {
    let lower = name.to_ascii_lowercase();
    if let IpAddr::V4(v4) = ip {
        let [a, b, c, d] = v4.octets();
        let forms = [
            format!("{a}-{b}-{c}-{d}"),
            format!("{d}-{c}-{b}-{a}"),
            format!("{a}.{b}.{c}.{d}"),
            format!("{d}.{c}.{b}.{a}"),
        ];
        if forms.iter().any(|f| lower.contains(f.as_str())) {
            return true;
        }
    }
    const WORDS: [&str; 8] = ["dynamic", "dyn-", "dialup", "dial-up", "dsl", "pool", "dhcp", "ppp"];
    lower.split('.').any(|label| WORDS.iter().any(|w| label.contains(w)))
}

/// PTR of the Mailcow host and forward confirmation. Also returns the host name the web and
/// SMTP checks use: the confirmed PTR name, else the first PTR name, else `--mailcow-host`.
pub async fn ptr(s: &Setup) -> (Finding, Option<String>) {
    const ID: &str = "ptr";
    let reverse = reverse_name(s.ip);
    let names = match s.dns.ptr(s.ip).await {
        Ok(names) => names,
        Err(e) => {
            let finding = Finding::fail(
                ID,
                format!("could not read the PTR of {}: {}", s.ip, lookup_text(&e)),
            );
            return (finding, s.host_name.clone());
        }
    };
    if names.is_empty() {
        let host = s.host_name.clone().unwrap_or_else(|| format!("mail.{}", s.domain));
        let finding = Finding::fail(
            ID,
            format!(
                "{} has no PTR record: receivers refuse or junk mail from it; ask whoever runs the \
                 address (the hosting provider) to set it",
                s.ip
            ),
        )
        .publish([format!("{reverse}. PTR {host}.")]);
        return (finding, s.host_name.clone());
    }
    let mut confirmed = None;
    let mut resolved = Vec::new();
    for name in &names {
        match s.dns.ips(name).await {
            Ok(ips) if ips.contains(&s.ip) => {
                confirmed = Some(name.clone());
                break;
            }
            Ok(ips) => resolved.push((name.clone(), ips)),
            Err(e) => {
                return (
                    Finding::fail(
                        ID,
                        format!("could not resolve PTR name {name}: {}", lookup_text(&e)),
                    ),
                    Some(name.clone()),
                );
            }
        }
    }
    let Some(host) = confirmed else {
        let (name, ips) = &resolved[0];
        let found = if ips.is_empty() {
            "does not resolve".to_owned()
        } else {
            format!(
                "resolves to {}",
                ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )
        };
        let finding = Finding::fail(
            ID,
            format!("{} has PTR {name}, which {found}: forward-confirmed reverse DNS fails", s.ip),
        )
        .publish([address_line(name, s.ip)]);
        return (finding, Some(name.clone()));
    };
    let finding = if names.len() > 1 {
        Finding::warn(
            ID,
            format!(
                "{} has {} PTR records ({}): keep only {host}",
                s.ip,
                names.len(),
                names.join(", ")
            ),
        )
    } else if looks_generic(&host, s.ip) {
        Finding::warn(
            ID,
            format!(
                "PTR {host} looks like an access-network name: ISPs such as T-Online treat the sender as dial-up; use a name of your own domain"
            ),
        )
    } else if s.host_name.as_ref().is_some_and(|h| *h != host) {
        Finding::warn(
            ID,
            format!(
                "{} has PTR {host}, but --mailcow-host is {}: Mailcow's hostname (its HELO) should be the PTR name",
                s.ip,
                s.host_name.as_deref().unwrap_or_default()
            ),
        )
    } else {
        Finding::pass(ID, format!("{} -> {host} -> {}", s.ip, s.ip))
    };
    (finding, Some(host))
}

/// The HTTPS page on the PTR host name: reachable, valid certificate, every contact marker.
pub async fn contact_page(s: &Setup, host: Option<&str>) -> Finding {
    const ID: &str = "contact-page";
    let Some(host) = host else {
        return Finding::fail(
            ID,
            "no host name to check: the contact page belongs on the PTR name (see ptr)",
        );
    };
    let url = tls::https_url(host, s.https_port, "/");
    let page = match tls::fetch(&s.trust, host, s.ip, s.https_port, "/", s.timeout).await {
        Ok(page) => page,
        Err(e) => {
            return Finding::fail(
                ID,
                format!(
                    "{url} is not reachable with a valid certificate ({}): German ISPs want an \
                     Impressum on the PTR host name",
                    tls::root_cause(&e)
                ),
            );
        }
    };
    if !(200..300).contains(&page.status) {
        return Finding::fail(
            ID,
            format!("{} answers HTTP {}: serve the contact page there", page.url, page.status),
        );
    }
    if s.markers.is_empty() {
        return Finding::warn(
            ID,
            format!(
                "{} is reachable with a valid certificate; pass --contact-marker (name, address, abuse contact) to check its content",
                page.url
            ),
        );
    }
    let body = page.body.to_lowercase();
    let missing: Vec<String> = s
        .markers
        .iter()
        .filter(|m| !body.contains(&m.to_lowercase()))
        .map(|m| format!("\"{m}\""))
        .collect();
    if !missing.is_empty() {
        return Finding::fail(
            ID,
            format!(
                "{} lacks {}: the page must name the operator, the address and a postmaster or abuse contact",
                page.url,
                missing.join(", ")
            ),
        );
    }
    Finding::pass(
        ID,
        format!("{}: valid certificate, all {} contact markers found", page.url, s.markers.len()),
    )
}

/// STARTTLS on each SMTP port, certificate valid for the host name. Also returns the chain
/// presented on the first (MX) port, for DANE.
pub async fn smtp(
    s: &Setup,
    host: Option<&str>,
) -> (Vec<Finding>, Option<Vec<CertificateDer<'static>>>) {
    let name = host.map_or_else(|| s.ip.to_string(), str::to_owned);
    let mut findings = Vec::new();
    let mut mx_chain = None;
    for (i, port) in s.smtp_ports.iter().enumerate() {
        let id = format!("smtp:{port}");
        let outcome = tls::probe_smtp(&s.trust, s.ip, *port, &name, s.timeout).await;
        let chain = match &outcome {
            Smtp::Secured(secured) => Some(secured.chain.clone()),
            Smtp::TlsFailed(_, chain) if !chain.is_empty() => Some(chain.clone()),
            _ => None,
        };
        if i == 0 {
            mx_chain = chain;
        }
        findings.push(match outcome {
            Smtp::Unreachable(why) => {
                let hint = if *port == 25 {
                    " (many home and office networks block outgoing port 25: run the doctor from a server)"
                } else {
                    ""
                };
                Finding::fail(&id, format!("{why}{hint}"))
            }
            Smtp::NoStartTls => Finding::fail(
                &id,
                format!("port {port} does not offer STARTTLS: mail to this host travels in clear text; enable TLS in Mailcow"),
            ),
            Smtp::TlsFailed(why, _) => {
                Finding::fail(&id, format!("STARTTLS offered, but TLS for {name} failed: {why}"))
            }
            Smtp::Secured(secured) => {
                let leaf = secured.chain.first();
                let until = leaf.and_then(tls::not_after).unwrap_or_else(|| "?".into());
                match leaf.and_then(|c| tls::days_left(c, s.now)) {
                    Some(days) if days < CERT_WARN_DAYS => Finding::warn(
                        &id,
                        format!("STARTTLS works, but the certificate for {name} expires in {days} days ({until}): renew it"),
                    ),
                    _ => Finding::pass(
                        &id,
                        format!("STARTTLS offered, {}, certificate valid for {name} until {until}", secured.protocol),
                    ),
                }
            }
        });
    }
    (findings, mx_chain)
}

/// The zone apex of `name`: the closest enclosing name with an SOA record.
async fn zone_apex(dns: &Dns, name: &str) -> Result<Option<String>, DnsError> {
    let mut candidate = name.to_owned();
    loop {
        if dns.has(&candidate, RecordType::SOA).await? {
            return Ok(Some(candidate));
        }
        match candidate.split_once('.') {
            Some((_, parent)) if parent.contains('.') => candidate = parent.to_owned(),
            _ => return Ok(None),
        }
    }
}

/// DANE: when the zone of the host name is DNSSEC-signed (its apex publishes DNSKEY records),
/// a TLSA record at `_<port>._tcp.<host>` must match the certificate of the MX port.
pub async fn dane(
    s: &Setup,
    host: Option<&str>,
    chain: Option<&[CertificateDer<'static>]>,
) -> Finding {
    const ID: &str = "dane";
    let Some(host) = host else { return Finding::skip(ID, "no host name (see ptr)") };
    let Some(port) = s.smtp_ports.first() else {
        return Finding::skip(ID, "no SMTP port to check");
    };
    let name = format!("_{port}._tcp.{host}");
    let apex = match zone_apex(&s.dns, host).await {
        Ok(Some(apex)) => apex,
        Ok(None) => return Finding::skip(ID, format!("no zone apex (SOA) found above {host}")),
        Err(e) => {
            return Finding::fail(
                ID,
                format!("could not find the zone of {host}: {}", lookup_text(&e)),
            );
        }
    };
    let (signed, records) =
        match (s.dns.has(&apex, RecordType::DNSKEY).await, s.dns.tlsa(&name).await) {
            (Ok(signed), Ok(records)) => (signed, records),
            (Err(e), _) | (_, Err(e)) => {
                return Finding::fail(
                    ID,
                    format!("could not read DNSSEC or TLSA: {}", lookup_text(&e)),
                );
            }
        };
    let fresh = chain
        .and_then(|c| c.first())
        .and_then(tls::dane_ee)
        .map(|data| format!("{name}. TLSA {data}"));
    if !signed {
        if records.is_empty() {
            return Finding::skip(
                ID,
                format!("{apex} is not DNSSEC-signed (no DNSKEY at the apex): DANE does not apply"),
            );
        }
        return Finding::warn(
            ID,
            format!(
                "{name} has TLSA records, but {apex} is not DNSSEC-signed: senders ignore them until it is"
            ),
        );
    }
    if records.is_empty() {
        return Finding::fail(
            ID,
            format!("{apex} is DNSSEC-signed but {name} has no TLSA record: DANE-aware senders cannot authenticate the host"),
        )
        .publish(fresh);
    }
    let Some(chain) = chain.filter(|c| !c.is_empty()) else {
        return Finding::fail(
            ID,
            format!(
                "{name} has TLSA records, but the certificate on port {port} could not be read (see smtp:{port})"
            ),
        );
    };
    match records.iter().find(|r| tls::tlsa_matches(r, chain)) {
        Some(record) => Finding::pass(
            ID,
            format!("{apex} is signed and TLSA {} at {name} matches the certificate on port {port}", tls::tlsa_text(record)),
        ),
        None => Finding::fail(
            ID,
            format!(
                "none of the {} TLSA records at {name} matches the certificate on port {port}: DANE senders will not deliver; publish the new key before switching certificates",
                records.len()
            ),
        )
        .publish(fresh),
    }
}

/// MTA-STS, if published: the `_mta-sts` record, the policy file over HTTPS, and the domain's
/// MX hosts covered by the policy.
pub async fn mta_sts(s: &Setup) -> Finding {
    const ID: &str = "mta-sts";
    let name = format!("_mta-sts.{}", s.domain);
    let records = match s.dns.txt(&name).await {
        Ok(records) => records,
        Err(e) => return Finding::fail(ID, format!("could not read {name}: {}", lookup_text(&e))),
    };
    let claimed: Vec<&String> = records.iter().filter(|r| mta_sts::is_record(r)).collect();
    let text = match claimed.as_slice() {
        [] => {
            return Finding::skip(
                ID,
                "no MTA-STS policy published (optional: it makes senders insist on TLS)",
            );
        }
        [one] => one.as_str(),
        many => {
            return Finding::fail(
                ID,
                format!(
                    "{} MTA-STS records at {name}: senders ignore them all; keep one",
                    many.len()
                ),
            );
        }
    };
    if mta_sts::record_id(text).is_none() {
        return Finding::fail(
            ID,
            format!(
                "unusable record \"{text}\" at {name}: it needs v=STSv1; id=<letters and digits>"
            ),
        );
    }
    let host = format!("mta-sts.{}", s.domain);
    let url = tls::https_url(&host, s.https_port, "/.well-known/mta-sts.txt");
    let ip = match s.dns.ips(&host).await {
        Ok(ips) if !ips.is_empty() => ips[0],
        Ok(_) => {
            return Finding::fail(
                ID,
                format!("{host} does not resolve: serve the policy at {url}"),
            );
        }
        Err(e) => {
            return Finding::fail(ID, format!("could not resolve {host}: {}", lookup_text(&e)));
        }
    };
    let page =
        match tls::fetch(&s.trust, &host, ip, s.https_port, "/.well-known/mta-sts.txt", s.timeout)
            .await
        {
            Ok(page) if page.status == 200 => page,
            Ok(page) => {
                return Finding::fail(
                    ID,
                    format!("{url} answers HTTP {}: senders cannot read the policy", page.status),
                );
            }
            Err(e) => {
                return Finding::fail(
                    ID,
                    format!(
                        "{url} is not reachable with a valid certificate ({})",
                        tls::root_cause(&e)
                    ),
                );
            }
        };
    let policy = match mta_sts::parse_policy(&page.body) {
        Ok(policy) => policy,
        Err(e) => return Finding::fail(ID, format!("{url}: {e}")),
    };
    let mx = match s.dns.mx(&s.domain).await {
        Ok(mx) => mx,
        Err(e) => {
            return Finding::fail(
                ID,
                format!("could not read the MX of {}: {}", s.domain, lookup_text(&e)),
            );
        }
    };
    let uncovered: Vec<&str> =
        mx.iter().map(|(_, h)| h.as_str()).filter(|h| !policy.covers(h)).collect();
    if !uncovered.is_empty() && policy.mode != mta_sts::Mode::None {
        return Finding::fail(
            ID,
            format!("the policy's mx lines do not cover {}: senders refuse to deliver there in enforce mode", uncovered.join(", ")),
        )
        .publish(uncovered.iter().map(|h| format!("mx: {h}")));
    }
    let days = policy.max_age / 86_400;
    match policy.mode {
        mta_sts::Mode::Enforce => Finding::pass(
            ID,
            format!("mode enforce, max_age {days} days, covers {} MX hosts", mx.len()),
        ),
        mta_sts::Mode::Testing => Finding::warn(
            ID,
            format!(
                "mode testing: senders report TLS failures but still deliver; switch to enforce once reports are clean (max_age {days} days)"
            ),
        ),
        mta_sts::Mode::None => Finding::warn(
            ID,
            "mode none: the policy is withdrawn; remove _mta-sts or publish an enforcing policy",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_ptr_names_are_recognised() {
        let ip: IpAddr = "203.0.113.25".parse().unwrap();
        assert!(looks_generic("p203-0-113-25.dip0.t-ipconnect.de", ip));
        assert!(looks_generic("25.113.0.203.static.example.net", ip));
        assert!(looks_generic("dynamic-host.example.net", ip));
        assert!(looks_generic("x.pool.example.net", ip));
        assert!(!looks_generic("mail.example.org", ip));
    }

    #[test]
    fn dmarc_suggestions_keep_tags_and_raise_the_policy() {
        assert_eq!(
            dmarc_suggestion("example.org", None),
            "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.org"
        );
        assert_eq!(
            dmarc_suggestion(
                "example.org",
                Some("v=DMARC1; p=none; rua=mailto:r@example.org; fo=1")
            ),
            "v=DMARC1; p=quarantine; rua=mailto:r@example.org; fo=1"
        );
        assert_eq!(
            dmarc_suggestion("example.org", Some("v=DMARC1; p=reject")),
            "v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.org"
        );
    }
}
