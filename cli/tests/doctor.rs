//! Black-box tests of `suppressions doctor` against servers the test starts on loopback: an
//! authoritative DNS server (hickory-server) serving good and broken zones, HTTPS and SMTP
//! servers whose certificates come from a CA made at test time (rcgen), the SESv2 simulator,
//! and SQS and DynamoDB in moto (`MOTO_ENDPOINT`, started by `scripts/test`).
//!
//! Each scenario is a Mailcow host on its own loopback address (127.0.0.1, .2, .4), so the
//! reverse zone `0.0.127.in-addr.arpa` gives each its own PTR.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use common::{Env, Run};
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_server::proto::rr::rdata::{A, CNAME, MX, NULL, PTR, SOA, TLSA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use simulators::sesv2::{self, Account, EventDestination, Identity};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const TOPIC: &str = "arn:aws:sns:eu-central-1:123456789012:mailcow-ses-feedback";
const SET: &str = "mailcow-ses-feedback";
const IMPRESSUM: &str = "<html><body><h1>Impressum</h1><p>Beispiel GmbH</p>\
    <p>Musterstra&szlig;e 1, 10115 Berlin</p><p>abuse@example.test</p></body></html>";

// ---------------------------------------------------------------------------------------------
// Certificates

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
    /// SHA-256 of the SubjectPublicKeyInfo: the data of a `3 1 1` TLSA record.
    spki_sha256: Vec<u8>,
}

impl Pki {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "doctor test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Self { ca_pem: cert.pem(), ca_der: cert.der().clone(), issuer: Issuer::new(params, key) }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let spki = key.subject_public_key_info();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki);
        Leaf {
            chain: vec![cert.der().clone(), self.ca_der.clone()],
            key: key.serialize_der(),
            spki_sha256: digest.as_ref().to_vec(),
        }
    }
}

fn server_config(leaf: &Leaf) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.clone()));
    let config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(leaf.chain.clone(), key)
    .unwrap();
    Arc::new(config)
}

// ---------------------------------------------------------------------------------------------
// HTTPS: pages by host and path, everything else 404

async fn https_server(ip: &str, leaf: &Leaf, pages: HashMap<String, String>) -> u16 {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(leaf));
    let pages = Arc::new(pages);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (acceptor, pages) = (acceptor.clone(), pages.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 2048];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16_384 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let host = text
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")))
                    .map(|h| h.split(':').next().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                let (status, body) = match pages.get(&format!("{host}{path}")) {
                    Some(body) => ("200 OK", body.clone()),
                    None => ("404 Not Found", "not found".to_owned()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

// ---------------------------------------------------------------------------------------------
// SMTP: a greeting, EHLO with or without STARTTLS, the TLS handshake, QUIT

async fn smtp_server(ip: &str, tls: Option<&Leaf>) -> u16 {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls.map(|leaf| tokio_rustls::TlsAcceptor::from(server_config(leaf)));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(smtp_session(stream, acceptor.clone()));
        }
    });
    port
}

async fn smtp_session(stream: TcpStream, acceptor: Option<tokio_rustls::TlsAcceptor>) {
    let mut reader = BufReader::new(stream);
    if reader.get_mut().write_all(b"220 mail.test ESMTP ready\r\n").await.is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim().to_ascii_uppercase();
        let answer = if command.starts_with("EHLO") {
            let starttls = if acceptor.is_some() { "250-STARTTLS\r\n" } else { "" };
            format!("250-mail.test\r\n250-PIPELINING\r\n{starttls}250 8BITMIME\r\n")
        } else if command == "STARTTLS" && acceptor.is_some() {
            let _ = reader.get_mut().write_all(b"220 2.0.0 Ready to start TLS\r\n").await;
            let Some(acceptor) = acceptor else { return };
            let Ok(tls) = acceptor.accept(reader.into_inner()).await else { return };
            let mut tls = BufReader::new(tls);
            let mut quit = String::new();
            let _ = tls.read_line(&mut quit).await;
            let _ = tls.get_mut().write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else if command == "QUIT" {
            let _ = reader.get_mut().write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            "502 5.5.2 Command not recognised\r\n".to_owned()
        };
        if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DNS: authoritative zones in memory, UDP and TCP on one port

fn name(raw: &str) -> Name {
    Name::from_ascii(format!("{}.", raw.trim_end_matches('.'))).unwrap()
}

fn rr(owner: &str, data: RData) -> Record {
    Record::from_rdata(name(owner), 60, data)
}

fn txt(owner: &str, text: &str) -> Record {
    rr(owner, RData::TXT(TXT::new(vec![text.to_owned()])))
}

fn a(owner: &str, ip: &str) -> Record {
    rr(owner, RData::A(A(ip.parse().unwrap())))
}

fn cname(owner: &str, target: &str) -> Record {
    rr(owner, RData::CNAME(CNAME(name(target))))
}

fn mx(owner: &str, host: &str) -> Record {
    rr(owner, RData::MX(MX::new(10, name(host))))
}

fn ptr(owner: &str, host: &str) -> Record {
    rr(owner, RData::PTR(PTR(name(host))))
}

fn tlsa(owner: &str, data: Vec<u8>) -> Record {
    rr(owner, RData::TLSA(TLSA::new(CertUsage::DaneEe, Selector::Spki, Matching::Sha256, data)))
}

/// A DNSKEY record as raw data (flags 257, protocol 3, algorithm 13, a dummy key): the doctor
/// only looks for its presence at the apex.
fn dnskey(owner: &str) -> Record {
    let mut data = vec![1, 1, 3, 13];
    data.extend([7u8; 64]);
    rr(owner, RData::Unknown { code: RecordType::DNSKEY, rdata: NULL::with(data) })
}

struct Zone {
    origin: &'static str,
    records: Vec<Record>,
}

struct DnsServer {
    addr: SocketAddr,
    _server: hickory_server::Server<Catalog>,
}

async fn dns_server(zones: Vec<Zone>) -> DnsServer {
    let mut catalog = Catalog::new();
    for zone in zones {
        let origin = name(zone.origin);
        let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        let soa = SOA::new(
            name(&format!("ns.{}", zone.origin)),
            name(&format!("hostmaster.{}", zone.origin)),
            1,
            3600,
            600,
            86_400,
            60,
        );
        assert!(handler.upsert_mut(rr(zone.origin, RData::SOA(soa)), 1));
        for record in zone.records {
            assert!(handler.upsert_mut(record, 1));
        }
        catalog.upsert(LowerName::from(&origin), vec![Arc::new(handler)]);
    }
    // UDP and TCP on one port number: the TCP port of a free UDP port can be taken already
    // (other tests' servers), so a pair is looked for a few times.
    let mut pair = None;
    for _ in 0..50 {
        let udp = UdpSocket::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            pair = Some((udp, addr, tcp));
            break;
        }
    }
    let (udp, addr, tcp) = pair.expect("no port free for both UDP and TCP on 127.0.0.1");
    let mut server = hickory_server::Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 16);
    DnsServer { addr, _server: server }
}

// ---------------------------------------------------------------------------------------------
// AWS state: the SESv2 simulator and moto

struct Aws {
    env: Env,
    ses: sesv2::Handle,
    queue: String,
    dlq: String,
    quarantine: String,
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: String, policy: Option<String>) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    if let Some(policy) = policy {
        request = request.attributes(QueueAttributeName::Policy, policy);
    }
    request.send().await.unwrap().queue_url().unwrap().to_owned()
}

fn queue_policy(topic: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "sns.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": "*",
            "Condition": { "ArnEquals": { "aws:SourceArn": topic } }
        }]
    })
    .to_string()
}

/// A table with the given sync state item (or none), the three queues, and an empty SES
/// simulator.
async fn aws(prefix: &str, sync: Option<&[(&str, &str)]>, policy_topic: &str) -> Aws {
    let env = Env::with_table(prefix).await;
    if let Some(attributes) = sync {
        let mut put = env
            .dynamodb()
            .await
            .put_item()
            .table_name(&env.table)
            .item("pk", AttributeValue::S("META".into()))
            .item("sk", AttributeValue::S("SYNC#mailcow".into()));
        for (name, value) in attributes {
            let value = if *name == "entries" || *name == "version" {
                AttributeValue::N((*value).into())
            } else {
                AttributeValue::S((*value).into())
            };
            put = put.item(*name, value);
        }
        put.send().await.unwrap();
    }
    let sqs = aws_sdk_sqs::Client::new(&env.sdk().await);
    let id = fastrand::u32(..);
    Aws {
        queue: queue(&sqs, format!("feedback-{id}"), Some(queue_policy(policy_topic))).await,
        dlq: queue(&sqs, format!("dlq-{id}"), None).await,
        quarantine: queue(&sqs, format!("quarantine-{id}"), None).await,
        ses: sesv2::spawn(sesv2::Config::unthrottled()).await.unwrap(),
        env,
    }
}

fn destination(topic: &str, events: &[&str]) -> EventDestination {
    EventDestination {
        name: "feedback-to-sns".into(),
        enabled: true,
        matching_event_types: events.iter().map(|e| (*e).to_owned()).collect(),
        sns_topic_arn: Some(topic.into()),
    }
}

fn write_ca(pki: &Pki) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("doctor-ca-{}.pem", fastrand::u64(..)));
    std::fs::write(&path, &pki.ca_pem).unwrap();
    path
}

async fn doctor(env: &Env, args: &[String]) -> Run {
    let mut all = vec!["doctor".to_owned()];
    all.extend(args.iter().cloned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    env.run(&refs).await
}

/// The JSON findings by check id.
fn findings(run: &Run) -> HashMap<String, Value> {
    run.json_lines().into_iter().map(|v| (v["check"].as_str().unwrap().to_owned(), v)).collect()
}

#[track_caller]
fn status(findings: &HashMap<String, Value>, check: &str) -> String {
    let finding = findings.get(check).unwrap_or_else(|| panic!("no finding {check}"));
    finding["status"].as_str().unwrap().to_owned()
}

fn message(findings: &HashMap<String, Value>, check: &str) -> String {
    findings[check]["message"].as_str().unwrap().to_owned()
}

fn publish(findings: &HashMap<String, Value>, check: &str) -> Vec<String> {
    findings[check]["publish"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn amazonses_zone() -> Zone {
    Zone {
        origin: "amazonses.com",
        records: vec![txt("amazonses.com", "v=spf1 ip4:199.255.192.0/22 ip4:54.240.0.0/18 -all")],
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Everything as strict receivers want it, on 127.0.0.1 under example.test (DNSSEC-signed).
struct Good {
    pki: Pki,
    dns: DnsServer,
    https: u16,
    smtp: [u16; 2],
    aws: Aws,
}

async fn good() -> Good {
    let pki = Pki::new();
    let leaf = pki.leaf(&["mail.example.test", "mta-sts.example.test"]);
    let pages = HashMap::from([
        ("mail.example.test/".to_owned(), IMPRESSUM.to_owned()),
        (
            "mta-sts.example.test/.well-known/mta-sts.txt".to_owned(),
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"
                .to_owned(),
        ),
    ]);
    let https = https_server("127.0.0.1", &leaf, pages).await;
    let smtp =
        [smtp_server("127.0.0.1", Some(&leaf)).await, smtp_server("127.0.0.1", Some(&leaf)).await];
    let d = "example.test";
    let dns = dns_server(vec![
        Zone {
            origin: d,
            records: vec![
                dnskey(d),
                txt(d, "v=spf1 include:amazonses.com ip4:127.0.0.1 -all"),
                mx(d, "mail.example.test"),
                a("mail.example.test", "127.0.0.1"),
                a("mta-sts.example.test", "127.0.0.1"),
                txt("_mta-sts.example.test", "v=STSv1; id=20261203"),
                cname("tok1._domainkey.example.test", "tok1.dkim.amazonses.com"),
                cname("tok2._domainkey.example.test", "tok2.dkim.amazonses.com"),
                cname("tok3._domainkey.example.test", "tok3.dkim.amazonses.com"),
                txt(
                    "dkim._domainkey.example.test",
                    "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOC",
                ),
                txt("_dmarc.example.test", "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"),
                mx("bounce.example.test", "feedback-smtp.eu-central-1.amazonses.com"),
                txt("bounce.example.test", "v=spf1 include:amazonses.com ~all"),
                tlsa(&format!("_{}._tcp.mail.example.test", smtp[0]), leaf.spki_sha256.clone()),
            ],
        },
        Zone {
            origin: "0.0.127.in-addr.arpa",
            records: vec![ptr("1.0.0.127.in-addr.arpa", "mail.example.test")],
        },
        amazonses_zone(),
    ])
    .await;
    let aws = aws(
        "doctor-good",
        Some(&[
            ("last_result", "success"),
            ("last_push_at", "2026-12-03T10:00:00.000Z"),
            ("last_attempt_at", "2026-12-03T10:00:00.000Z"),
            ("entries", "42"),
            ("version", "7"),
        ]),
        TOPIC,
    )
    .await;
    aws.ses.set_account(Account {
        production_access_enabled: true,
        max_24_hour_send: 50_000.0,
        max_send_rate: 14.0,
        sent_last_24_hours: 1200.0,
        review_status: Some("GRANTED".into()),
        ..Account::default()
    });
    let mut identity = Identity::verified_domain(d, &["tok1", "tok2", "tok3"]);
    identity.mail_from_domain = Some("bounce.example.test".into());
    identity.mail_from_status = Some("SUCCESS".into());
    identity.configuration_set = Some(SET.into());
    aws.ses.put_identity(identity);
    aws.ses.put_event_destinations(
        SET,
        vec![destination(TOPIC, &["BOUNCE", "COMPLAINT", "DELIVERY", "REJECT"])],
    );
    Good { pki, dns, https, smtp, aws }
}

fn good_args(g: &Good, ca: &std::path::Path) -> Vec<String> {
    [
        "--domain",
        "example.test",
        "--mailcow-host",
        "mail.example.test",
        "--dkim-selector",
        "dkim",
        "--contact-marker",
        "Beispiel GmbH",
        "--contact-marker",
        "abuse@example.test",
        "--topic-arn",
        TOPIC,
        "--timeout",
        "3",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--resolver".into(),
        g.dns.addr.to_string(),
        "--smtp-port".into(),
        g.smtp[0].to_string(),
        "--smtp-port".into(),
        g.smtp[1].to_string(),
        "--https-port".into(),
        g.https.to_string(),
        "--ca-bundle".into(),
        ca.display().to_string(),
        "--ses-endpoint-url".into(),
        g.aws.ses.url().to_owned(),
        "--queue-url".into(),
        g.aws.queue.clone(),
        "--dlq-url".into(),
        g.aws.dlq.clone(),
        "--quarantine-url".into(),
        g.aws.quarantine.clone(),
    ])
    .collect()
}

#[tokio::test]
async fn a_complete_setup_passes_every_check_and_exits_0() {
    let g = good().await;
    let ca = write_ca(&g.pki);
    let args = good_args(&g, &ca);
    let mut json_args = args.clone();
    json_args.push("--json".into());

    let run = doctor(&g.aws.env, &json_args).await.expect(0);

    let found = findings(&run);
    let p0 = g.smtp[0];
    let p1 = g.smtp[1];
    let expected = [
        "spf",
        "dkim",
        "dkim-mailcow",
        "dmarc",
        "mail-from",
        "ptr",
        "contact-page",
        &format!("smtp:{p0}"),
        &format!("smtp:{p1}"),
        "dane",
        "mta-sts",
        "ses-account",
        "ses-quota",
        "ses-identity",
        "ses-events",
        "feedback-queue",
        "dlq",
        "quarantine",
        "mailcow-push",
    ];
    assert_eq!(found.len(), expected.len(), "{}", run.stdout);
    for check in expected {
        assert_eq!(status(&found, check), "pass", "{check}: {}", found[check]);
        assert!(publish(&found, check).is_empty(), "{check}");
    }
    assert!(message(&found, "spf").contains("1 of 10 DNS lookups"), "{}", message(&found, "spf"));
    assert!(message(&found, "ptr").contains("127.0.0.1 -> mail.example.test -> 127.0.0.1"));
    assert!(message(&found, "dane").contains(&format!("matches the certificate on port {p0}")));
    assert!(message(&found, "mailcow-push").contains("42 entries"));
    assert!(message(&found, "ses-quota").contains("1200 of 50000"));

    let human = doctor(&g.aws.env, &args).await.expect(0);
    println!("{}", human.stdout);
    assert!(
        human.stdout.contains("19 passed, 0 warnings, 0 failed, 0 skipped"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.lines().any(|l| l.starts_with("pass  contact-page")), "{}", human.stdout);
    std::fs::remove_file(ca).unwrap();
}

#[tokio::test]
async fn without_the_test_ca_certificates_fail_verification_and_no_switch_skips_it() {
    let g = good().await;
    let ca = write_ca(&g.pki);
    let args = good_args(&g, &ca);
    let at = args.iter().position(|a| a == "--ca-bundle").unwrap();
    let mut without_ca = args.clone();
    without_ca.drain(at..at + 2);
    without_ca.push("--json".into());

    let run = doctor(&g.aws.env, &without_ca).await.expect(1);

    let found = findings(&run);
    assert_eq!(status(&found, "contact-page"), "fail");
    assert!(message(&found, "contact-page").contains("not reachable with a valid certificate"));
    let smtp = format!("smtp:{}", g.smtp[0]);
    assert_eq!(status(&found, &smtp), "fail");
    assert!(
        message(&found, &smtp).contains("TLS for mail.example.test failed"),
        "{}",
        message(&found, &smtp)
    );
    // The chain was still read, so DANE compares it: the key is pinned, not the CA.
    assert_eq!(status(&found, "dane"), "pass", "{}", message(&found, "dane"));
    assert_eq!(status(&found, "mta-sts"), "fail");
    assert_eq!(status(&found, "spf"), "pass");

    let mut unreadable = args.clone();
    unreadable[at + 1] = "/nonexistent/ca.pem".into();
    let missing = doctor(&g.aws.env, &unreadable).await.expect(2);
    assert!(
        missing.stderr.contains("could not read the CA bundle /nonexistent/ca.pem"),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());
    std::fs::remove_file(ca).unwrap();
}

#[tokio::test]
async fn a_broken_setup_fails_each_check_with_the_records_to_publish() {
    let pki = Pki::new();
    let ca = write_ca(&pki);
    // Valid for the MTA-STS host only: the contact page on mail.broken.test has the wrong name.
    let leaf = pki.leaf(&["mta-sts.broken.test"]);
    let pages = HashMap::from([
        ("mail.broken.test/".to_owned(), IMPRESSUM.to_owned()),
        (
            "mta-sts.broken.test/.well-known/mta-sts.txt".to_owned(),
            "version: STSv1\nmode: enforce\nmx: other.broken.test\nmax_age: 86400\n".to_owned(),
        ),
    ]);
    let https = https_server("127.0.0.2", &leaf, pages).await;
    let plain = smtp_server("127.0.0.2", None).await;
    let wrong_name = smtp_server("127.0.0.2", Some(&leaf)).await;
    let d = "broken.test";
    let dns = dns_server(vec![
        Zone {
            origin: d,
            records: vec![
                txt(d, "v=spf1 mx ?all"),
                mx(d, "mail.broken.test"),
                a("mail.broken.test", "127.0.0.3"),
                a("mta-sts.broken.test", "127.0.0.2"),
                txt("_mta-sts.broken.test", "v=STSv1; id=1"),
                cname("btok1._domainkey.broken.test", "btok1.dkim.amazonses.com"),
                cname("btok2._domainkey.broken.test", "elsewhere.example.net"),
                txt("_dmarc.broken.test", "v=DMARC1; p=none; rua=mailto:d@broken.test"),
                mx("bounce.broken.test", "mx.example.net"),
                tlsa(&format!("_{plain}._tcp.mail.broken.test"), vec![0; 32]),
            ],
        },
        Zone {
            origin: "0.0.127.in-addr.arpa",
            records: vec![ptr("2.0.0.127.in-addr.arpa", "mail.broken.test")],
        },
        amazonses_zone(),
    ])
    .await;
    let aws = aws(
        "doctor-broken",
        Some(&[
            ("last_result", "failed"),
            ("last_error", "Mailcow answered 502"),
            ("last_attempt_at", "2026-12-03T10:00:00.000Z"),
            ("version", "3"),
        ]),
        "arn:aws:sns:eu-central-1:123456789012:someone-else",
    )
    .await;
    let mut identity = Identity::verified_domain(d, &["btok1", "btok2", "btok3"]);
    identity.verified_for_sending = false;
    identity.verification_status = "PENDING".into();
    identity.dkim_status = "PENDING".into();
    identity.mail_from_domain = Some("bounce.broken.test".into());
    identity.mail_from_status = Some("PENDING".into());
    aws.ses.put_identity(identity);
    aws.ses.put_event_destinations(
        SET,
        vec![destination("arn:aws:sns:eu-central-1:123456789012:other", &["BOUNCE"])],
    );
    let sqs = aws_sdk_sqs::Client::new(&aws.env.sdk().await);
    sqs.send_message().queue_url(&aws.dlq).message_body("{}").send().await.unwrap();
    let args: Vec<String> = [
        "--json",
        "--domain",
        "broken.test",
        "--mailcow-host",
        "127.0.0.2",
        "--dkim-selector",
        "dkim",
        "--contact-marker",
        "Beispiel GmbH",
        "--topic-arn",
        TOPIC,
        "--timeout",
        "3",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--resolver".into(),
        dns.addr.to_string(),
        "--smtp-port".into(),
        plain.to_string(),
        "--smtp-port".into(),
        wrong_name.to_string(),
        "--https-port".into(),
        https.to_string(),
        "--ca-bundle".into(),
        ca.display().to_string(),
        "--ses-endpoint-url".into(),
        aws.ses.url().to_owned(),
        "--queue-url".into(),
        aws.queue.clone(),
        "--dlq-url".into(),
        aws.dlq.clone(),
    ])
    .collect();

    let run = doctor(&aws.env, &args).await.expect(1);

    let found = findings(&run);
    let s = |check: &str| status(&found, check);
    let m = |check: &str| message(&found, check);
    assert_eq!(s("spf"), "fail");
    assert!(m("spf").contains("does not include amazonses.com"), "{}", m("spf"));
    assert!(m("spf").contains("gives 127.0.0.2 (the Mailcow host) neutral"), "{}", m("spf"));
    assert!(m("spf").contains("ends in ?all"), "{}", m("spf"));
    assert_eq!(
        publish(&found, "spf"),
        ["broken.test. TXT \"v=spf1 mx include:amazonses.com ip4:127.0.0.2 ~all\""]
    );
    assert_eq!(s("dkim"), "fail");
    assert!(m("dkim").starts_with("2 of 3 SES DKIM records wrong"), "{}", m("dkim"));
    assert_eq!(
        publish(&found, "dkim"),
        [
            "btok2._domainkey.broken.test. CNAME btok2.dkim.amazonses.com.",
            "btok3._domainkey.broken.test. CNAME btok3.dkim.amazonses.com.",
        ]
    );
    assert_eq!(s("dkim-mailcow"), "fail");
    assert!(m("dkim-mailcow").contains("no DKIM key at dkim._domainkey.broken.test"));
    assert_eq!(s("dmarc"), "fail");
    assert_eq!(
        publish(&found, "dmarc"),
        ["_dmarc.broken.test. TXT \"v=DMARC1; p=quarantine; rua=mailto:d@broken.test\""]
    );
    assert_eq!(s("mail-from"), "fail");
    assert!(m("mail-from").contains("has MX mx.example.net instead of feedback-smtp.eu-central-1"));
    assert!(m("mail-from").contains("SES reports the MAIL FROM domain as PENDING"));
    assert_eq!(
        publish(&found, "mail-from"),
        [
            "bounce.broken.test. MX 10 feedback-smtp.eu-central-1.amazonses.com.",
            "bounce.broken.test. TXT \"v=spf1 include:amazonses.com ~all\"",
        ]
    );
    assert_eq!(s("ptr"), "fail");
    assert!(
        m("ptr").contains("has PTR mail.broken.test, which resolves to 127.0.0.3"),
        "{}",
        m("ptr")
    );
    assert_eq!(publish(&found, "ptr"), ["mail.broken.test. A 127.0.0.2"]);
    assert_eq!(s("contact-page"), "fail");
    assert!(m("contact-page").contains("https://mail.broken.test:"), "{}", m("contact-page"));
    assert!(
        m("contact-page").to_lowercase().contains("not valid for name"),
        "{}",
        m("contact-page")
    );
    assert_eq!(s(&format!("smtp:{plain}")), "fail");
    assert!(m(&format!("smtp:{plain}")).contains("does not offer STARTTLS"));
    assert_eq!(s(&format!("smtp:{wrong_name}")), "fail");
    assert!(m(&format!("smtp:{wrong_name}")).contains("TLS for mail.broken.test failed"));
    assert_eq!(s("dane"), "warn");
    assert!(m("dane").contains("broken.test is not DNSSEC-signed"), "{}", m("dane"));
    assert_eq!(s("mta-sts"), "fail");
    assert_eq!(publish(&found, "mta-sts"), ["mx: mail.broken.test"]);
    assert_eq!(s("ses-account"), "fail");
    assert!(m("ses-account").contains("is in the sandbox"));
    assert_eq!(s("ses-quota"), "pass");
    assert_eq!(s("ses-identity"), "fail");
    assert!(m("ses-identity").contains("not verified for sending (status PENDING)"));
    assert_eq!(s("ses-events"), "fail");
    assert!(m("ses-events").contains(&format!("publishes to {TOPIC}")));
    assert_eq!(s("feedback-queue"), "fail");
    assert!(m("feedback-queue").contains("does not admit"));
    assert_eq!(s("dlq"), "fail");
    assert!(m("dlq").starts_with("1 messages set aside"), "{}", m("dlq"));
    assert_eq!(s("quarantine"), "skip");
    assert_eq!(s("mailcow-push"), "fail");
    assert!(m("mailcow-push").contains("Mailcow answered 502"));
    assert!(m("mailcow-push").contains("last successful push never"));

    let human_args: Vec<String> = args.iter().filter(|a| *a != "--json").cloned().collect();
    let human = doctor(&aws.env, &human_args).await.expect(1);
    println!("{}", human.stdout);
    assert!(human.stdout.contains("1 passed, 1 warning, 16 failed, 1 skipped"), "{}", human.stdout);
    assert!(
        human.stdout.contains("      publish: mail.broken.test. A 127.0.0.2\n"),
        "{}",
        human.stdout
    );
    std::fs::remove_file(ca).unwrap();
}

#[tokio::test]
async fn a_signed_zone_with_a_stale_tlsa_and_soft_policies_warns_and_fails_precisely() {
    let pki = Pki::new();
    let ca = write_ca(&pki);
    let old = pki.leaf(&["mail.stale.test"]);
    let leaf = pki.leaf(&["mail.stale.test", "mta-sts.stale.test"]);
    let pages = HashMap::from([
        ("mail.stale.test/".to_owned(), IMPRESSUM.to_owned()),
        (
            "mta-sts.stale.test/.well-known/mta-sts.txt".to_owned(),
            "version: STSv1\nmode: testing\nmx: *.stale.test\nmax_age: 86400\n".to_owned(),
        ),
    ]);
    let https = https_server("127.0.0.4", &leaf, pages).await;
    let smtp = smtp_server("127.0.0.4", Some(&leaf)).await;
    let d = "stale.test";
    let dns = dns_server(vec![
        Zone {
            origin: d,
            records: vec![
                dnskey(d),
                txt(d, "v=spf1 a:mail.stale.test include:amazonses.com ~all"),
                mx(d, "mail.stale.test"),
                a("mail.stale.test", "127.0.0.4"),
                a("mta-sts.stale.test", "127.0.0.4"),
                txt("_mta-sts.stale.test", "v=STSv1; id=2"),
                cname("s1._domainkey.stale.test", "s1.dkim.amazonses.com"),
                txt("_dmarc.stale.test", "v=DMARC1; p=quarantine"),
                // Still the key of the certificate before the last renewal.
                tlsa(&format!("_{smtp}._tcp.mail.stale.test"), old.spki_sha256.clone()),
            ],
        },
        Zone {
            origin: "0.0.127.in-addr.arpa",
            records: vec![ptr("4.0.0.127.in-addr.arpa", "mail.stale.test")],
        },
        amazonses_zone(),
    ])
    .await;
    let aws = aws("doctor-stale", None, TOPIC).await;
    aws.ses.set_account(Account {
        production_access_enabled: true,
        enforcement_status: "PROBATION".into(),
        max_24_hour_send: 1000.0,
        sent_last_24_hours: 900.0,
        ..Account::default()
    });
    aws.ses.put_identity(Identity::verified_domain(d, &["s1"]));
    aws.ses.put_event_destinations(SET, vec![destination(TOPIC, &["BOUNCE", "COMPLAINT"])]);
    let args: Vec<String> = [
        "--json",
        "--domain",
        "stale.test",
        "--mailcow-host",
        "127.0.0.4",
        "--contact-marker",
        "Beispiel GmbH",
        "--contact-marker",
        "Handelsregister",
        "--topic-arn",
        TOPIC,
        "--timeout",
        "3",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        "--resolver".into(),
        dns.addr.to_string(),
        "--smtp-port".into(),
        smtp.to_string(),
        "--https-port".into(),
        https.to_string(),
        "--ca-bundle".into(),
        ca.display().to_string(),
        "--ses-endpoint-url".into(),
        aws.ses.url().to_owned(),
    ])
    .collect();

    let run = doctor(&aws.env, &args).await.expect(1);

    let found = findings(&run);
    let s = |check: &str| status(&found, check);
    let m = |check: &str| message(&found, check);
    assert_eq!(s("spf"), "pass", "{}", m("spf"));
    assert_eq!(s("dkim"), "pass", "{}", m("dkim"));
    assert_eq!(s("dkim-mailcow"), "skip");
    assert_eq!(s("dmarc"), "warn");
    assert!(m("dmarc").contains("no rua="));
    assert_eq!(
        publish(&found, "dmarc"),
        ["_dmarc.stale.test. TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@stale.test\""]
    );
    assert_eq!(s("mail-from"), "warn");
    assert!(m("mail-from").contains("no custom MAIL FROM domain"));
    assert_eq!(publish(&found, "mail-from").len(), 2);
    assert_eq!(s("ptr"), "pass");
    assert_eq!(s("contact-page"), "fail");
    assert!(m("contact-page").contains("lacks \"Handelsregister\""), "{}", m("contact-page"));
    assert_eq!(s(&format!("smtp:{smtp}")), "pass");
    assert_eq!(s("dane"), "fail", "{}", m("dane"));
    assert!(m("dane").contains("none of the 1 TLSA records"), "{}", m("dane"));
    let fresh: String = leaf.spki_sha256.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        publish(&found, "dane"),
        [format!("_{smtp}._tcp.mail.stale.test. TLSA 3 1 1 {fresh}")]
    );
    assert_eq!(s("mta-sts"), "warn");
    assert!(m("mta-sts").contains("mode testing"));
    assert_eq!(s("ses-account"), "warn");
    assert!(m("ses-account").contains("PROBATION"));
    assert_eq!(s("ses-quota"), "warn");
    assert_eq!(s("ses-identity"), "warn");
    assert!(m("ses-identity").contains("no default configuration set"));
    assert_eq!(s("ses-events"), "warn");
    assert!(m("ses-events").contains("no DELIVERY events"));
    assert_eq!(s("feedback-queue"), "skip");
    assert_eq!(s("mailcow-push"), "warn");
    assert!(m("mailcow-push").contains("no Mailcow push recorded yet"));
    std::fs::remove_file(ca).unwrap();
}
