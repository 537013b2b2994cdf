//! DNS for the doctor: one hickory resolver (the system's configuration, or the server given
//! with `--resolver`), and typed lookups that turn "no such name" and "no such record" into an
//! empty answer, so that only a resolver that could not answer is an error.
//!
//! Names are always asked fully qualified (a trailing dot) and `/etc/hosts` is never read, so
//! neither search domains nor local overrides change what is checked. Reverse (PTR) lookups go
//! straight to the name servers: the resolver library answers loopback reverse names itself
//! (RFC 6761), and the doctor wants the record as published. Nothing here knows SES, SPF or
//! Mailcow.

use anyhow::Context as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::client::{Client, ClientHandle};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::DNSClass;
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

/// A lookup the resolver could not answer (timeout, SERVFAIL, refused, unreadable answer).
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The name is not a valid DNS name.
    #[error("{0:?} is not a valid DNS name")]
    BadName(String),
    /// No name server answered a direct query.
    #[error("DNS lookup of {name} {kind} failed: {why}")]
    Direct {
        /// The name asked.
        name: String,
        /// The record type asked.
        kind: RecordType,
        /// What the last server said.
        why: String,
    },
    /// The resolver failed.
    #[error("DNS lookup of {name} {kind} failed")]
    Lookup {
        /// The name asked.
        name: String,
        /// The record type asked.
        kind: RecordType,
        /// What the resolver said.
        #[source]
        source: NetError,
    },
}

/// The doctor's resolver.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    /// The name servers' UDP addresses, for direct queries.
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").finish_non_exhaustive()
    }
}

/// `name` without a trailing dot, lowercased: how names are compared and printed.
pub fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(name: &str) -> Result<Name, DnsError> {
    let plain = normalise(name);
    if plain.is_empty() {
        return Err(DnsError::BadName(name.to_owned()));
    }
    Name::from_ascii(format!("{plain}.")).map_err(|_| DnsError::BadName(name.to_owned()))
}

fn print_name(name: &Name) -> String {
    normalise(&name.to_ascii())
}

impl Dns {
    /// A resolver over `server` (UDP and TCP), or over the system's configuration when `None`.
    /// Each query waits at most `timeout` and is tried twice.
    ///
    /// Fails when the system configuration cannot be read.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> anyhow::Result<Self> {
        let (config, system_options) = match server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut ns.connections {
                    connection.port = addr.port();
                }
                (ResolverConfig::from_name_servers(vec![ns]), ResolverOpts::default())
            }
            None => hickory_resolver::system_conf::read_system_conf()
                .context("could not read the system's DNS configuration: pass --resolver")?,
        };
        let servers = config
            .name_servers()
            .iter()
            .filter_map(|ns| {
                let udp =
                    ns.connections.iter().find(|c| matches!(c.protocol, ProtocolConfig::Udp))?;
                Some(SocketAddr::new(ns.ip, udp.port))
            })
            .collect();
        let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        let options: &mut ResolverOpts = builder.options_mut();
        *options = system_options;
        options.timeout = timeout;
        options.attempts = 2;
        options.try_tcp_on_error = true;
        // Receivers see public DNS, not this machine's hosts file (which often maps the
        // host's own name and address).
        options.use_hosts_file = ResolveHosts::Never;
        let resolver = builder.build().context("could not build the resolver")?;
        Ok(Self { resolver, servers, timeout })
    }

    /// The records of `kind` at `name`; empty when the name or the records do not exist.
    async fn records(&self, name: &str, kind: RecordType) -> Result<Vec<RData>, DnsError> {
        let query = fqdn(name)?;
        match self.resolver.lookup(query, kind).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == kind)
                .map(|r| r.data.clone())
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(source) => Err(DnsError::Lookup { name: normalise(name), kind, source }),
        }
    }

    /// Every TXT record at `name`, its strings joined (as SPF, DKIM and DMARC read them).
    ///
    /// Fails when the resolver cannot answer.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let records = self.records(name, RecordType::TXT).await?;
        Ok(records
            .into_iter()
            .filter_map(|data| match data {
                RData::TXT(txt) => {
                    Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect())
                }
                _ => None,
            })
            .collect())
    }

    /// The targets of a CNAME at `name` (normalised).
    ///
    /// Fails when the resolver cannot answer.
    pub async fn cname(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let records = self.records(name, RecordType::CNAME).await?;
        Ok(records
            .iter()
            .filter_map(|data| match data {
                RData::CNAME(target) => Some(print_name(&target.0)),
                _ => None,
            })
            .collect())
    }

    /// The MX records at `name` as (preference, host), best first.
    ///
    /// Fails when the resolver cannot answer.
    pub async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, DnsError> {
        let records = self.records(name, RecordType::MX).await?;
        let mut hosts: Vec<(u16, String)> = records
            .iter()
            .filter_map(|data| match data {
                RData::MX(mx) => Some((mx.preference, print_name(&mx.exchange))),
                _ => None,
            })
            .collect();
        hosts.sort();
        Ok(hosts)
    }

    /// The A and AAAA addresses of `name`.
    ///
    /// Fails when the resolver cannot answer.
    pub async fn ips(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let mut ips = Vec::new();
        for kind in [RecordType::A, RecordType::AAAA] {
            for data in self.records(name, kind).await? {
                match data {
                    RData::A(a) => ips.push(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => ips.push(IpAddr::V6(aaaa.0)),
                    _ => {}
                }
            }
        }
        Ok(ips)
    }

    /// Asks each name server in turn, without cache or special-use shortcuts; empty when the
    /// name or the records do not exist.
    async fn direct(&self, name: &str, kind: RecordType) -> Result<Vec<RData>, DnsError> {
        let query = fqdn(name)?;
        let mut why = "no name server configured".to_owned();
        for server in &self.servers {
            let stream = UdpClientStream::builder(*server, TokioRuntimeProvider::default())
                .with_timeout(Some(self.timeout))
                .build();
            let (mut client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
            let task = tokio::spawn(background);
            let answer = client.query(query.clone(), DNSClass::IN, kind).await;
            task.abort();
            match answer {
                Ok(response) => match response.metadata.response_code {
                    ResponseCode::NoError | ResponseCode::NXDomain => {
                        return Ok(response
                            .answers
                            .iter()
                            .filter(|r| r.record_type() == kind)
                            .map(|r| r.data.clone())
                            .collect());
                    }
                    code => why = format!("{server} answered {code}"),
                },
                Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
                Err(e) => why = format!("{server}: {e}"),
            }
        }
        Err(DnsError::Direct { name: normalise(name), kind, why })
    }

    /// The PTR names of `ip` (normalised).
    ///
    /// Fails when no name server answers.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let records = self.direct(&reverse_name(ip), RecordType::PTR).await?;
        Ok(records
            .iter()
            .filter_map(|data| match data {
                RData::PTR(name) => Some(print_name(&name.0)),
                _ => None,
            })
            .collect())
    }

    /// The TLSA records at `name`.
    ///
    /// Fails when the resolver cannot answer.
    pub async fn tlsa(&self, name: &str) -> Result<Vec<TLSA>, DnsError> {
        let records = self.records(name, RecordType::TLSA).await?;
        Ok(records
            .into_iter()
            .filter_map(|data| match data {
                RData::TLSA(tlsa) => Some(tlsa),
                _ => None,
            })
            .collect())
    }

    /// Whether `name` has at least one record of `kind` (any type, parsed or not).
    ///
    /// Fails when the resolver cannot answer.
    pub async fn has(&self, name: &str, kind: RecordType) -> Result<bool, DnsError> {
        Ok(!self.records(name, kind).await?.is_empty())
    }
}

/// The `in-addr.arpa` / `ip6.arpa` name of an address, without the trailing dot.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = Vec::with_capacity(34);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0x0f));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.push("ip6.arpa".to_owned());
            labels.join(".")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_follow_the_arpa_trees() {
        assert_eq!(reverse_name("203.0.113.25".parse().unwrap()), "25.113.0.203.in-addr.arpa");
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
        assert_eq!(v6.split('.').count(), 34);
    }

    #[test]
    fn names_compare_without_case_or_trailing_dot() {
        assert_eq!(normalise("Mail.Example.ORG."), "mail.example.org");
        assert!(fqdn("").is_err());
        assert!(fqdn("bad name..x").is_err());
    }
}
