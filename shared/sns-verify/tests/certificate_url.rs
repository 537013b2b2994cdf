//! The `SigningCertURL` host rule: what is refused before anything is fetched.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use sns_verify::{CertificateUrl, CertificateUrlError};

#[test]
fn real_sns_certificate_urls_are_accepted() {
    let accepted = [
        concat!(
            "https://sns.eu-central-1.amazonaws.com/",
            "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
        ),
        concat!(
            "https://sns.us-east-1.amazonaws.com/",
            "SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem"
        ),
        concat!(
            "https://sns.cn-north-1.amazonaws.com.cn/",
            "SimpleNotificationService-3250158c6506d40628c1e5e1e4a4a3f3.pem"
        ),
        concat!(
            "https://SNS.EU-CENTRAL-1.AMAZONAWS.COM/",
            "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
        ),
        "https://sns.eu-central-1.amazonaws.com:443/SimpleNotificationService-abc.pem",
    ];

    for raw in accepted {
        let url = CertificateUrl::parse(raw).unwrap_or_else(|err| panic!("{raw}: {err:?}"));
        assert!(url.as_str().starts_with("https://sns."), "{url}");
        assert!(url.as_url().port().is_none(), "{url}");
    }
}

#[test]
fn hosts_are_normalised_for_caching() {
    let upper = CertificateUrl::parse("https://SNS.eu-central-1.amazonaws.com:443/x.pem").unwrap();

    assert_eq!(upper.as_str(), "https://sns.eu-central-1.amazonaws.com/x.pem");
}

/// The rule a refusal names, for table-driven assertions.
fn rule(err: &CertificateUrlError) -> &'static str {
    match err {
        CertificateUrlError::Unparsable(_) => "unparsable",
        CertificateUrlError::NotHttps => "not_https",
        CertificateUrlError::Userinfo => "userinfo",
        CertificateUrlError::Port => "port",
        CertificateUrlError::Host => "host",
        CertificateUrlError::QueryOrFragment => "query_or_fragment",
        CertificateUrlError::NotPem => "not_pem",
    }
}

#[test]
fn everything_but_an_sns_https_pem_url_is_refused() {
    let cases = [
        ("http://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem", "not_https"),
        ("https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/x.pem", "host"),
        ("https://my-bucket.s3.us-east-1.amazonaws.com/x.pem", "host"),
        ("https://s3.us-east-1.amazonaws.com/bucket/x.pem", "host"),
        ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", "host"),
        ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", "host"),
        ("https://sns.us-east-1.amazonaws.com@evil.example/x.pem", "userinfo"),
        ("https://user@sns.us-east-1.amazonaws.com/x.pem", "userinfo"),
        ("https://u:p@sns.us-east-1.amazonaws.com/x.pem", "userinfo"),
        ("https://sns.us-east-1.amazonaws.com:8443/x.pem", "port"),
        ("https://sns.us-east-1.amazonaws.com/x.pem?a=b", "query_or_fragment"),
        ("https://sns.us-east-1.amazonaws.com/x.pem?", "query_or_fragment"),
        ("https://sns.us-east-1.amazonaws.com/x.pem#frag", "query_or_fragment"),
        ("https://sns.us-east-1.amazonaws.com/x.txt", "not_pem"),
        ("https://sns.us-east-1.amazonaws.com/x.pem.txt", "not_pem"),
        ("https://sns.us-east-1.amazonaws.com/", "not_pem"),
        ("https://sns.us-east-1.amazonaws.com/.pem", "not_pem"),
        ("https://sns.amazonaws.com/x.pem", "host"),
        ("not a url", "unparsable"),
    ];

    for (raw, expected) in cases {
        let err = CertificateUrl::parse(raw).unwrap_err();
        assert_eq!(rule(&err), expected, "{raw}: {err:?}");
    }
}

#[test]
fn ip_literals_and_lookalike_hosts_are_refused() {
    for raw in [
        "https://52.94.0.1/x.pem",
        "https://[::1]/x.pem",
        "https://sns.us-east-1.amazonaws.com./x.pem",
        "https://sns.us-east-1.amazonaws.co/x.pem",
        "https://sns.us-east-1.amazonaws.com.cn.evil.example/x.pem",
        "https://sns.us.east.1.amazonaws.com/x.pem",
        "https://sns.eu.amazonaws.com/x.pem",
        "https://xsns.us-east-1.amazonaws.com/x.pem",
    ] {
        let err = CertificateUrl::parse(raw).unwrap_err();
        assert!(matches!(err, CertificateUrlError::Host), "{raw}: {err:?}");
    }
}
