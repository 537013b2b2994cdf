//! SPF (RFC 7208) as receivers evaluate it: the record's terms, the full expansion of its
//! includes and redirects (DNS lookups counted against the limit of 10, included domains
//! collected), and `check_host` for one address.
//!
//! Lookups go through the [`SpfDns`] port so the evaluation is tested against a map. Macros
//! (`%{i}` and friends) are not expanded: a term that uses one counts its lookup and never
//! matches, which is what a check of one sending host needs.

use std::collections::BTreeSet;
#[cfg(test)]
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// RFC 7208 4.6.4: at most 10 terms that cause DNS lookups per evaluation.
pub const LOOKUP_LIMIT: usize = 10;

/// What a mechanism yields when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// `+` (the default).
    Pass,
    /// `-`.
    Fail,
    /// `~`.
    SoftFail,
    /// `?`.
    Neutral,
}

impl Qualifier {
    fn prefix(self) -> &'static str {
        match self {
            Self::Pass => "",
            Self::Fail => "-",
            Self::SoftFail => "~",
            Self::Neutral => "?",
        }
    }
}

/// One mechanism with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// `all`.
    All,
    /// `include:<domain>`.
    Include(String),
    /// `a[:domain][/v4][//v6]`.
    A { domain: Option<String>, v4: u8, v6: u8 },
    /// `mx[:domain][/v4][//v6]`.
    Mx { domain: Option<String>, v4: u8, v6: u8 },
    /// `ptr[:domain]` (deprecated; never matches here).
    Ptr(Option<String>),
    /// `ip4:` or `ip6:` network.
    Ip { net: IpAddr, prefix: u8 },
    /// `exists:<domain>`.
    Exists(String),
}

impl Mechanism {
    fn costs_lookup(&self) -> bool {
        !matches!(self, Self::All | Self::Ip { .. })
    }
}

/// One term of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A mechanism.
    Mechanism(Qualifier, Mechanism),
    /// `redirect=<domain>`.
    Redirect(String),
    /// Any other modifier (`exp=` and unknown ones), kept as written.
    Modifier(String),
}

/// A parsed `v=spf1` record, its terms in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The terms.
    pub terms: Vec<Term>,
    /// The text as published.
    pub text: String,
}

/// Why a record does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable SPF term {term:?}: {why}")]
pub struct ParseError {
    /// The term.
    pub term: String,
    /// What is wrong with it.
    pub why: &'static str,
}

fn bad(term: &str, why: &'static str) -> ParseError {
    ParseError { term: term.to_owned(), why }
}

/// Whether a TXT string is an SPF record (`v=spf1` alone or followed by a space).
pub fn is_spf(txt: &str) -> bool {
    let lower = txt.trim_start().to_ascii_lowercase();
    lower == "v=spf1" || lower.starts_with("v=spf1 ")
}

fn cidr(spec: &str, term: &str) -> Result<(Option<String>, u8, u8), ParseError> {
    let (rest, v6) = match spec.split_once("//") {
        Some((rest, v6)) => (rest, Some(v6)),
        None => (spec, None),
    };
    let (domain, v4) = match rest.split_once('/') {
        Some((domain, v4)) => (domain, Some(v4)),
        None => (rest, None),
    };
    let v4 = v4.map(|p| p.parse::<u8>().ok().filter(|p| *p <= 32)).unwrap_or(Some(32));
    let v6 = v6.map(|p| p.parse::<u8>().ok().filter(|p| *p <= 128)).unwrap_or(Some(128));
    let (Some(v4), Some(v6)) = (v4, v6) else { return Err(bad(term, "bad prefix length")) };
    let domain = domain.strip_prefix(':').map(str::to_owned);
    if domain.as_deref() == Some("") {
        return Err(bad(term, "empty domain"));
    }
    Ok((domain, v4, v6))
}

fn domain_arg(rest: &str, term: &str) -> Result<String, ParseError> {
    match rest.strip_prefix(':') {
        Some(domain) if !domain.is_empty() => Ok(domain.to_ascii_lowercase()),
        _ => Err(bad(term, "needs :domain")),
    }
}

/// Parses a `v=spf1` record.
///
/// Fails on the first term that is not valid SPF.
pub fn parse(text: &str) -> Result<Record, ParseError> {
    let mut words = text.split_ascii_whitespace();
    match words.next() {
        Some(v) if v.eq_ignore_ascii_case("v=spf1") => {}
        _ => return Err(bad(text, "does not start with v=spf1")),
    }
    let mut terms = Vec::new();
    for word in words {
        let lower = word.to_ascii_lowercase();
        if let Some((name, value)) = lower.split_once('=')
            && !name.contains(':')
            && !name.contains('/')
        {
            if name == "redirect" {
                if value.is_empty() {
                    return Err(bad(word, "empty redirect"));
                }
                terms.push(Term::Redirect(value.to_owned()));
            } else {
                terms.push(Term::Modifier(word.to_owned()));
            }
            continue;
        }
        let (qualifier, body) = match lower.chars().next() {
            Some('+') => (Qualifier::Pass, &lower[1..]),
            Some('-') => (Qualifier::Fail, &lower[1..]),
            Some('~') => (Qualifier::SoftFail, &lower[1..]),
            Some('?') => (Qualifier::Neutral, &lower[1..]),
            _ => (Qualifier::Pass, lower.as_str()),
        };
        let split = body.find([':', '/']).unwrap_or(body.len());
        let (name, rest) = body.split_at(split);
        let mechanism = match name {
            "all" if rest.is_empty() => Mechanism::All,
            "include" => Mechanism::Include(domain_arg(rest, word)?),
            "exists" => Mechanism::Exists(domain_arg(rest, word)?),
            "a" | "mx" => {
                let (domain, v4, v6) = cidr(rest, word)?;
                if name == "a" {
                    Mechanism::A { domain, v4, v6 }
                } else {
                    Mechanism::Mx { domain, v4, v6 }
                }
            }
            "ptr" => Mechanism::Ptr(rest.strip_prefix(':').map(str::to_owned)),
            "ip4" | "ip6" => {
                let spec = rest.strip_prefix(':').ok_or_else(|| bad(word, "needs an address"))?;
                let (addr, prefix) = match spec.split_once('/') {
                    Some((addr, prefix)) => (addr, Some(prefix)),
                    None => (spec, None),
                };
                let net: IpAddr = addr.parse().map_err(|_| bad(word, "bad address"))?;
                let max = if net.is_ipv4() { 32 } else { 128 };
                if (name == "ip4") != net.is_ipv4() {
                    return Err(bad(word, "address family does not match"));
                }
                let prefix = match prefix {
                    Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max),
                    None => Some(max),
                }
                .ok_or_else(|| bad(word, "bad prefix length"))?;
                Mechanism::Ip { net, prefix }
            }
            _ => return Err(bad(word, "unknown mechanism")),
        };
        terms.push(Term::Mechanism(qualifier, mechanism));
    }
    Ok(Record { terms, text: text.trim().to_owned() })
}

impl Record {
    /// The qualifier of the `all` mechanism, if the record has one.
    pub fn all(&self) -> Option<Qualifier> {
        self.terms.iter().find_map(|t| match t {
            Term::Mechanism(q, Mechanism::All) => Some(*q),
            _ => None,
        })
    }

    /// The `redirect=` target, if any.
    pub fn redirect(&self) -> Option<&str> {
        self.terms.iter().find_map(|t| match t {
            Term::Redirect(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// The record with `include:<domain>` and `ip` added before `all` when missing, and `all`
    /// made `~all` unless it is `-all`: what to publish to fix it.
    pub fn amended(&self, include: Option<&str>, ip: Option<IpAddr>) -> String {
        let mut words: Vec<String> = vec!["v=spf1".to_owned()];
        let mut tail = Vec::new();
        for term in &self.terms {
            match term {
                Term::Mechanism(q, Mechanism::All) => {
                    let q =
                        if *q == Qualifier::Fail { Qualifier::Fail } else { Qualifier::SoftFail };
                    tail.push(format!("{}all", q.prefix()));
                }
                Term::Redirect(d) => tail.push(format!("redirect={d}")),
                Term::Modifier(m) => tail.push(m.clone()),
                Term::Mechanism(..) => words.push(term_text(term)),
            }
        }
        if let Some(include) = include {
            words.push(format!("include:{include}"));
        }
        if let Some(ip) = ip {
            words.push(ip_term(ip));
        }
        if self.all().is_none() && self.redirect().is_none() {
            tail.push("~all".to_owned());
        }
        words.extend(tail);
        words.join(" ")
    }
}

/// `ip4:<ip>` or `ip6:<ip>`.
pub fn ip_term(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip4:{v4}"),
        IpAddr::V6(v6) => format!("ip6:{v6}"),
    }
}

fn term_text(term: &Term) -> String {
    match term {
        Term::Mechanism(q, m) => {
            let body = match m {
                Mechanism::All => "all".to_owned(),
                Mechanism::Include(d) => format!("include:{d}"),
                Mechanism::Exists(d) => format!("exists:{d}"),
                Mechanism::Ptr(d) => d.as_ref().map_or("ptr".to_owned(), |d| format!("ptr:{d}")),
                Mechanism::Ip { net, prefix } => {
                    let full = if net.is_ipv4() { 32 } else { 128 };
                    let base = ip_term(*net);
                    if *prefix == full { base } else { format!("{base}/{prefix}") }
                }
                Mechanism::A { domain, v4, v6 } | Mechanism::Mx { domain, v4, v6 } => {
                    let name = if matches!(m, Mechanism::A { .. }) { "a" } else { "mx" };
                    let mut text = name.to_owned();
                    if let Some(d) = domain {
                        text.push(':');
                        text.push_str(d);
                    }
                    if *v4 != 32 {
                        text.push_str(&format!("/{v4}"));
                    }
                    if *v6 != 128 {
                        text.push_str(&format!("//{v6}"));
                    }
                    text
                }
            };
            format!("{}{body}", q.prefix())
        }
        Term::Redirect(d) => format!("redirect={d}"),
        Term::Modifier(m) => m.clone(),
    }
}

/// A lookup failure as the SPF code sees it: the resolver could not answer.
pub type LookupError = String;

/// The lookups SPF needs; empty answers for names or records that do not exist.
pub trait SpfDns: Sync {
    /// TXT strings at `name`.
    fn txt(&self, name: &str) -> impl Future<Output = Result<Vec<String>, LookupError>> + Send;
    /// A and AAAA addresses of `name`.
    fn ips(&self, name: &str) -> impl Future<Output = Result<Vec<IpAddr>, LookupError>> + Send;
    /// MX hosts of `name`.
    fn mx_hosts(&self, name: &str)
    -> impl Future<Output = Result<Vec<String>, LookupError>> + Send;
}

/// Why the SPF record of a domain cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The resolver could not answer.
    #[error("{0}")]
    Lookup(LookupError),
    /// More than one `v=spf1` record: a permerror for receivers.
    #[error(
        "{count} SPF records at {domain}: receivers treat that as an error; merge them into one"
    )]
    Multiple {
        /// The domain.
        domain: String,
        /// How many.
        count: usize,
    },
    /// The record does not parse.
    #[error("{domain}: {source}")]
    Parse {
        /// The domain.
        domain: String,
        /// The parse error.
        source: ParseError,
    },
}

/// The SPF record published at `domain`: `Ok(None)` when there is none.
///
/// Fails when the lookup fails, when there is more than one record or when it does not parse.
pub async fn fetch(dns: &impl SpfDns, domain: &str) -> Result<Option<Record>, FetchError> {
    let txt = dns.txt(domain).await.map_err(FetchError::Lookup)?;
    let spf: Vec<&String> = txt.iter().filter(|t| is_spf(t)).collect();
    match spf.as_slice() {
        [] => Ok(None),
        [one] => parse(one)
            .map(Some)
            .map_err(|source| FetchError::Parse { domain: domain.to_owned(), source }),
        many => Err(FetchError::Multiple { domain: domain.to_owned(), count: many.len() }),
    }
}

/// What the whole tree of a record costs and reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Terms that cause a DNS lookup, counted over every include and redirect.
    pub lookups: usize,
    /// Every domain reached through `include:` or `redirect=`, lowercased.
    pub reached: BTreeSet<String>,
    /// Includes or redirects without a usable record.
    pub problems: Vec<String>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Expands every include and redirect of `record`, counting lookups as receivers do (the
/// worst case: every term evaluated). Stops descending after 20 lookups or 10 levels.
pub async fn expand(dns: &impl SpfDns, record: &Record) -> Expansion {
    let mut expansion = Expansion::default();
    expand_into(dns, record, 0, &mut expansion).await;
    expansion
}

fn expand_into<'a, D: SpfDns>(
    dns: &'a D,
    record: &'a Record,
    depth: usize,
    into: &'a mut Expansion,
) -> BoxFuture<'a, ()> {
    Box::pin(async move {
        let mut targets = Vec::new();
        for term in &record.terms {
            match term {
                Term::Mechanism(_, m) if m.costs_lookup() => {
                    into.lookups += 1;
                    if let Mechanism::Include(d) = m {
                        targets.push(d.clone());
                    }
                }
                Term::Redirect(d) if record.all().is_none() => {
                    into.lookups += 1;
                    targets.push(d.clone());
                }
                _ => {}
            }
        }
        for target in targets {
            into.reached.insert(target.clone());
            if depth >= 10 || into.lookups > 2 * LOOKUP_LIMIT || target.contains('%') {
                continue;
            }
            match fetch(dns, &target).await {
                Ok(Some(inner)) => expand_into(dns, &inner, depth + 1, into).await,
                Ok(None) => into.problems.push(format!("{target} has no SPF record")),
                Err(e) => into.problems.push(e.to_string()),
            }
        }
    })
}

/// The result of `check_host` for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The address is allowed.
    Pass,
    /// The address is refused (`-`).
    Fail,
    /// The address is suspect (`~`).
    SoftFail,
    /// No statement (`?`, or no `all` at the end).
    Neutral,
    /// No SPF record.
    None,
    /// The record tree is broken; the reason.
    PermError(String),
    /// A lookup failed; the reason.
    TempError(String),
}

impl From<Qualifier> for Verdict {
    fn from(q: Qualifier) -> Self {
        match q {
            Qualifier::Pass => Self::Pass,
            Qualifier::Fail => Self::Fail,
            Qualifier::SoftFail => Self::SoftFail,
            Qualifier::Neutral => Self::Neutral,
        }
    }
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

fn any_in(ip: IpAddr, ips: &[IpAddr], v4: u8, v6: u8) -> bool {
    ips.iter().any(|candidate| {
        let prefix = if candidate.is_ipv4() { v4 } else { v6 };
        in_network(ip, *candidate, prefix)
    })
}

/// Evaluates the SPF policy of `domain` for a message from `ip` (RFC 7208 section 4),
/// without macros and without `ptr`.
pub async fn check_host(dns: &impl SpfDns, ip: IpAddr, domain: &str) -> Verdict {
    let mut lookups = 0;
    check_host_inner(dns, ip, domain.to_ascii_lowercase(), &mut lookups).await
}

fn check_host_inner<'a, D: SpfDns>(
    dns: &'a D,
    ip: IpAddr,
    domain: String,
    lookups: &'a mut usize,
) -> BoxFuture<'a, Verdict> {
    Box::pin(async move {
        let record = match fetch(dns, &domain).await {
            Ok(Some(record)) => record,
            Ok(None) => return Verdict::None,
            Err(FetchError::Lookup(e)) => return Verdict::TempError(e),
            Err(e) => return Verdict::PermError(e.to_string()),
        };
        for term in &record.terms {
            let Term::Mechanism(qualifier, mechanism) = term else { continue };
            if mechanism.costs_lookup() {
                *lookups += 1;
                if *lookups > LOOKUP_LIMIT {
                    return Verdict::PermError(format!(
                        "more than {LOOKUP_LIMIT} DNS lookups before a decision"
                    ));
                }
            }
            let target = |d: &Option<String>| d.clone().unwrap_or_else(|| domain.clone());
            let matched = match mechanism {
                Mechanism::All => true,
                Mechanism::Ip { net, prefix } => in_network(ip, *net, *prefix),
                Mechanism::Include(d) if d.contains('%') => false,
                Mechanism::Include(d) => {
                    match check_host_inner(dns, ip, d.clone(), lookups).await {
                        Verdict::Pass => true,
                        Verdict::Fail | Verdict::SoftFail | Verdict::Neutral => false,
                        Verdict::TempError(e) => return Verdict::TempError(e),
                        Verdict::None => {
                            return Verdict::PermError(format!("include:{d} has no SPF record"));
                        }
                        Verdict::PermError(e) => return Verdict::PermError(e),
                    }
                }
                Mechanism::A { domain: d, v4, v6 } => match dns.ips(&target(d)).await {
                    Ok(ips) => any_in(ip, &ips, *v4, *v6),
                    Err(e) => return Verdict::TempError(e),
                },
                Mechanism::Mx { domain: d, v4, v6 } => {
                    let hosts = match dns.mx_hosts(&target(d)).await {
                        Ok(hosts) => hosts,
                        Err(e) => return Verdict::TempError(e),
                    };
                    let mut found = false;
                    for host in hosts.iter().take(10) {
                        match dns.ips(host).await {
                            Ok(ips) if any_in(ip, &ips, *v4, *v6) => {
                                found = true;
                                break;
                            }
                            Ok(_) => {}
                            Err(e) => return Verdict::TempError(e),
                        }
                    }
                    found
                }
                Mechanism::Exists(d) if d.contains('%') => false,
                Mechanism::Exists(d) => match dns.ips(d).await {
                    Ok(ips) => ips.iter().any(IpAddr::is_ipv4),
                    Err(e) => return Verdict::TempError(e),
                },
                Mechanism::Ptr(_) => false,
            };
            if matched {
                return (*qualifier).into();
            }
        }
        if let Some(target) = record.redirect() {
            *lookups += 1;
            if *lookups > LOOKUP_LIMIT {
                return Verdict::PermError(format!("more than {LOOKUP_LIMIT} DNS lookups"));
            }
            return match check_host_inner(dns, ip, target.to_owned(), lookups).await {
                Verdict::None => Verdict::PermError(format!("redirect={target} has no SPF record")),
                other => other,
            };
        }
        Verdict::Neutral
    })
}

/// A fixed set of answers, for tests of the SPF code.
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub struct MapDns {
    /// TXT strings by name.
    pub txt: HashMap<String, Vec<String>>,
    /// Addresses by name.
    pub ips: HashMap<String, Vec<IpAddr>>,
    /// MX hosts by name.
    pub mx: HashMap<String, Vec<String>>,
}

#[cfg(test)]
impl SpfDns for MapDns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        Ok(self.txt.get(name).cloned().unwrap_or_default())
    }

    async fn ips(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        Ok(self.ips.get(name).cloned().unwrap_or_default())
    }

    async fn mx_hosts(&self, name: &str) -> Result<Vec<String>, LookupError> {
        Ok(self.mx.get(name).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(records: &[(&str, &str)]) -> MapDns {
        let mut map = MapDns::default();
        for (name, txt) in records {
            map.txt.entry((*name).to_owned()).or_default().push((*txt).to_owned());
        }
        map
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn parses_every_mechanism_with_qualifiers_and_prefixes() {
        let record = parse(
            "v=spf1 +a -mx:Mail.Example.org/24 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 \
             include:amazonses.com exists:%{i}.x.org ptr a//64 redirect=other.org exp=why.org -all",
        )
        .unwrap();

        assert_eq!(
            record.terms,
            vec![
                Term::Mechanism(Qualifier::Pass, Mechanism::A { domain: None, v4: 32, v6: 128 }),
                Term::Mechanism(
                    Qualifier::Fail,
                    Mechanism::Mx { domain: Some("mail.example.org".into()), v4: 24, v6: 128 }
                ),
                Term::Mechanism(
                    Qualifier::SoftFail,
                    Mechanism::Ip { net: ip("192.0.2.0"), prefix: 24 }
                ),
                Term::Mechanism(
                    Qualifier::Neutral,
                    Mechanism::Ip { net: ip("2001:db8::"), prefix: 32 }
                ),
                Term::Mechanism(Qualifier::Pass, Mechanism::Include("amazonses.com".into())),
                Term::Mechanism(Qualifier::Pass, Mechanism::Exists("%{i}.x.org".into())),
                Term::Mechanism(Qualifier::Pass, Mechanism::Ptr(None)),
                Term::Mechanism(Qualifier::Pass, Mechanism::A { domain: None, v4: 32, v6: 64 }),
                Term::Redirect("other.org".into()),
                Term::Modifier("exp=why.org".into()),
                Term::Mechanism(Qualifier::Fail, Mechanism::All),
            ]
        );
        assert_eq!(record.all(), Some(Qualifier::Fail));
    }

    #[test]
    fn malformed_terms_are_reported_with_the_term() {
        for (text, term) in [
            ("v=spf1 ip4:300.1.1.1 -all", "ip4:300.1.1.1"),
            ("v=spf1 ip4:10.0.0.0/33 -all", "ip4:10.0.0.0/33"),
            ("v=spf1 ip6:10.0.0.1 -all", "ip6:10.0.0.1"),
            ("v=spf1 include -all", "include"),
            ("v=spf1 includes:x.org -all", "includes:x.org"),
            ("v=spf1 redirect= -all", "redirect="),
        ] {
            assert_eq!(parse(text).unwrap_err().term, term, "{text}");
        }
        assert!(parse("spf1 -all").is_err());
        assert!(is_spf("v=spf1") && is_spf("V=SPF1 -all") && !is_spf("v=spf10 -all"));
    }

    #[tokio::test]
    async fn expansion_counts_lookups_through_includes_and_redirects() {
        let dns = dns(&[
            ("example.org", "v=spf1 a mx include:amazonses.com include:_spf.example.org ~all"),
            ("amazonses.com", "v=spf1 ip4:199.255.192.0/22 ip4:54.240.0.0/18 -all"),
            ("_spf.example.org", "v=spf1 include:a.example.net redirect=b.example.net"),
            ("a.example.net", "v=spf1 exists:x.example.net -all"),
        ]);
        let record = fetch(&dns, "example.org").await.unwrap().unwrap();

        let expansion = expand(&dns, &record).await;

        // a, mx, include, include (top) + include, redirect (_spf) + exists (a.example.net).
        assert_eq!(expansion.lookups, 7);
        assert!(expansion.reached.contains("amazonses.com"));
        assert!(expansion.reached.contains("b.example.net"));
        assert_eq!(expansion.problems, ["b.example.net has no SPF record"]);
    }

    #[tokio::test]
    async fn expansion_of_a_deep_tree_exceeds_the_limit() {
        let mut records = vec![("example.org".to_owned(), "v=spf1 include:l0.org -all".to_owned())];
        for level in 0..6 {
            records.push((
                format!("l{level}.org"),
                format!("v=spf1 a mx include:l{}.org ~all", level + 1),
            ));
        }
        let pairs: Vec<(&str, &str)> =
            records.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        let dns = dns(&pairs);
        let record = fetch(&dns, "example.org").await.unwrap().unwrap();

        let expansion = expand(&dns, &record).await;

        assert!(expansion.lookups > LOOKUP_LIMIT, "{expansion:?}");
    }

    #[tokio::test]
    async fn check_host_follows_includes_networks_a_and_mx() {
        let mut dns = dns(&[
            ("example.org", "v=spf1 mx include:amazonses.com ip4:198.51.100.0/24 -all"),
            ("amazonses.com", "v=spf1 ip4:54.240.0.0/18 -all"),
            ("soft.org", "v=spf1 a ~all"),
            ("neutral.org", "v=spf1 ip4:192.0.2.1"),
            ("loop.org", "v=spf1 include:loop.org -all"),
            ("redir.org", "v=spf1 redirect=example.org"),
        ]);
        dns.mx.insert("example.org".into(), vec!["mail.example.org".into()]);
        dns.ips.insert("mail.example.org".into(), vec![ip("203.0.113.25")]);
        dns.ips.insert("soft.org".into(), vec![ip("203.0.113.7")]);

        assert_eq!(check_host(&dns, ip("203.0.113.25"), "example.org").await, Verdict::Pass);
        assert_eq!(check_host(&dns, ip("54.240.10.1"), "example.org").await, Verdict::Pass);
        assert_eq!(check_host(&dns, ip("198.51.100.77"), "example.org").await, Verdict::Pass);
        assert_eq!(check_host(&dns, ip("192.0.2.1"), "example.org").await, Verdict::Fail);
        assert_eq!(check_host(&dns, ip("203.0.113.7"), "soft.org").await, Verdict::Pass);
        assert_eq!(check_host(&dns, ip("203.0.113.8"), "soft.org").await, Verdict::SoftFail);
        assert_eq!(check_host(&dns, ip("192.0.2.2"), "neutral.org").await, Verdict::Neutral);
        assert_eq!(check_host(&dns, ip("192.0.2.1"), "nothing.org").await, Verdict::None);
        assert_eq!(check_host(&dns, ip("54.240.0.9"), "redir.org").await, Verdict::Pass);
        assert!(matches!(
            check_host(&dns, ip("192.0.2.1"), "loop.org").await,
            Verdict::PermError(_)
        ));
    }

    #[test]
    fn amended_records_add_what_is_missing_and_keep_the_rest() {
        let record = parse("v=spf1 mx ip4:192.0.2.0/24 ?all").unwrap();

        let fixed = record.amended(Some("amazonses.com"), Some(ip("203.0.113.25")));

        assert_eq!(fixed, "v=spf1 mx ip4:192.0.2.0/24 include:amazonses.com ip4:203.0.113.25 ~all");
        let bare = parse("v=spf1 a").unwrap();
        assert_eq!(bare.amended(None, None), "v=spf1 a ~all");
        let strict = parse("v=spf1 -all").unwrap();
        assert_eq!(
            strict.amended(Some("amazonses.com"), None),
            "v=spf1 include:amazonses.com -all"
        );
    }

    #[test]
    fn networks_match_on_their_prefix() {
        assert!(in_network(ip("192.0.2.200"), ip("192.0.2.0"), 24));
        assert!(!in_network(ip("192.0.3.1"), ip("192.0.2.0"), 24));
        assert!(in_network(ip("10.1.2.3"), ip("0.0.0.0"), 0));
        assert!(in_network(ip("2001:db8::5"), ip("2001:db8::"), 64));
        assert!(!in_network(ip("2001:db9::5"), ip("2001:db8::"), 32));
        assert!(!in_network(ip("192.0.2.1"), ip("::"), 0));
    }
}
