//! Signature verification against real SNS messages and the real SNS signing certificate.
//!
//! Every fixture marked `ok` in `tests/fixtures/ses/SOURCES.md` must verify; every change to a
//! signed byte, to the signature, to the version or to the canonical layout must not.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use sns_verify::{
    Certificate, CertificateSource, CertificateStore, MessageType, NoFetcher, SignatureVersion,
    SnsMessage, Verifier, VerifyError, canonical_string,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Message,
    MessageId,
    Subject,
    SubscribeUrl,
    Timestamp,
    Token,
    TopicArn,
    Type,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Self::Message => "Message",
            Self::MessageId => "MessageId",
            Self::Subject => "Subject",
            Self::SubscribeUrl => "SubscribeURL",
            Self::Timestamp => "Timestamp",
            Self::Token => "Token",
            Self::TopicArn => "TopicArn",
            Self::Type => "Type",
        }
    }
}

/// The signed fields of `msg`, in SNS's canonical order.
fn signed_fields(msg: &SnsMessage<'_>) -> Vec<Field> {
    use Field::*;
    match msg.kind {
        "Notification" if msg.subject.is_some() => {
            vec![Message, MessageId, Subject, Timestamp, TopicArn, Type]
        }
        "Notification" => vec![Message, MessageId, Timestamp, TopicArn, Type],
        _ => vec![Message, MessageId, SubscribeUrl, Timestamp, Token, TopicArn, Type],
    }
}

fn get<'a>(msg: &SnsMessage<'a>, field: Field) -> &'a str {
    match field {
        Field::Message => msg.message,
        Field::MessageId => msg.message_id,
        Field::Subject => msg.subject.unwrap(),
        Field::SubscribeUrl => msg.subscribe_url.unwrap(),
        Field::Timestamp => msg.timestamp,
        Field::Token => msg.token.unwrap(),
        Field::TopicArn => msg.topic_arn,
        Field::Type => msg.kind,
    }
}

fn with<'a>(msg: &SnsMessage<'a>, field: Field, value: &'a str) -> SnsMessage<'a> {
    let mut out = *msg;
    match field {
        Field::Message => out.message = value,
        Field::MessageId => out.message_id = value,
        Field::Subject => out.subject = Some(value),
        Field::SubscribeUrl => out.subscribe_url = Some(value),
        Field::Timestamp => out.timestamp = value,
        Field::Token => out.token = Some(value),
        Field::TopicArn => out.topic_arn = value,
        Field::Type => out.kind = value,
    }
    out
}

fn fixture_cert() -> Certificate {
    Certificate::from_pem(&cert_pem()).unwrap().remove(0)
}

fn pinned_store() -> Arc<CertificateStore<NoFetcher>> {
    Arc::new(CertificateStore::pinned_only(vec![fixture_cert()]))
}

/// A verifier over the pinned fixture certificate that allows `msg`'s own topic.
fn verifier_for(
    store: &Arc<CertificateStore<NoFetcher>>,
    msg: &SnsMessage<'_>,
) -> Verifier<NoFetcher> {
    Verifier::new(Arc::clone(store), vec![msg.topic_arn.to_owned()]).unwrap()
}

#[tokio::test]
async fn every_ok_fixture_verifies_with_the_real_signing_certificate() {
    let store = pinned_store();

    for (name, version) in OK_FIXTURES {
        let json = load_json(name);
        let msg = SnsMessage::from_json(&json).unwrap();

        let verified = verifier_for(&store, &msg).verify(&msg, time_of(&msg)).await;

        let verified = verified.unwrap_or_else(|err| panic!("{name}: {err:?}"));
        assert_eq!(verified.signature_version.as_str(), version, "{name}");
        assert_eq!(verified.kind.as_str(), msg.kind, "{name}");
        assert_eq!(verified.timestamp, time_of(&msg), "{name}");
        assert_eq!(verified.certificate, CertificateSource::Pinned, "{name}");
    }
}

/// What one verified fixture exercises.
struct Traits {
    version: SignatureVersion,
    kind: MessageType,
    subject: bool,
    lambda_cert_key: bool,
    null_subject: bool,
    trailing_newline: bool,
}

#[tokio::test]
async fn fixtures_cover_both_versions_subjects_lambda_keys_and_confirmations() {
    let store = pinned_store();
    let mut seen = Vec::new();

    for (name, _) in OK_FIXTURES {
        let json = load_json(name);
        let msg = SnsMessage::from_json(&json).unwrap();
        let verified = verifier_for(&store, &msg).verify(&msg, time_of(&msg)).await.unwrap();
        seen.push(Traits {
            version: verified.signature_version,
            kind: verified.kind,
            subject: msg.subject.is_some(),
            lambda_cert_key: json.get("SigningCertUrl").is_some(),
            null_subject: json.get("Subject").is_some_and(serde_json::Value::is_null),
            trailing_newline: msg.message.ends_with('\n'),
        });
    }

    let has = |pred: fn(&Traits) -> bool| seen.iter().any(pred);
    assert!(has(|t| t.version == SignatureVersion::V1Sha1 && !t.subject));
    assert!(has(|t| t.version == SignatureVersion::V1Sha1 && t.subject));
    assert!(has(|t| t.version == SignatureVersion::V2Sha256 && !t.subject));
    assert!(has(|t| t.version == SignatureVersion::V2Sha256 && t.subject));
    assert!(has(|t| t.lambda_cert_key && t.null_subject), "Lambda-style keys, Subject null");
    assert!(has(|t| t.kind == MessageType::SubscriptionConfirmation));
    assert!(has(|t| t.trailing_newline), "event-publishing message with trailing newline");
}

#[tokio::test]
async fn edited_fixtures_fail_with_signature_mismatch() {
    let store = pinned_store();

    for name in BAD_FIXTURES {
        let json = load_json(name);
        let msg = SnsMessage::from_json(&json).unwrap();

        let err = verifier_for(&store, &msg).verify(&msg, time_of(&msg)).await.unwrap_err();

        assert!(matches!(err, VerifyError::SignatureMismatch), "{name}: {err:?}");
        assert_eq!(err.reason_code(), "signature_mismatch");
    }
}

#[tokio::test]
async fn flipping_any_byte_of_any_signed_field_fails() {
    let store = pinned_store();
    let mut flips = 0;

    for (name, _) in OK_FIXTURES {
        let json = load_json(name);
        let original = SnsMessage::from_json(&json).unwrap();
        let now = time_of(&original);
        verifier_for(&store, &original).verify(&original, now).await.unwrap();

        for field in signed_fields(&original) {
            let value = get(&original, field);
            for i in 0..value.len() {
                let mut bytes = value.as_bytes().to_vec();
                bytes[i] ^= 0x01;
                let flipped = String::from_utf8(bytes).unwrap();
                let msg = with(&original, field, &flipped);

                let err = verifier_for(&store, &msg).verify(&msg, now).await.unwrap_err();

                let expected = match field {
                    Field::Type => matches!(err, VerifyError::UnsupportedType { .. }),
                    Field::Timestamp => {
                        matches!(err, VerifyError::SignatureMismatch | VerifyError::BadTimestamp(_))
                    }
                    _ => matches!(err, VerifyError::SignatureMismatch),
                };
                assert!(expected, "{name} {} byte {i}: {err:?}", field.key());
                flips += 1;
            }
        }
    }

    // The two django-ses messages alone are over 2,700 bytes.
    assert!(flips > 4000, "only {flips} flips");
}

#[tokio::test]
async fn adding_or_removing_a_subject_fails() {
    let store = pinned_store();
    let with_subject_json = load_json(V1_WITH_SUBJECT);
    let with_subject = SnsMessage::from_json(&with_subject_json).unwrap();
    let without_json =
        load_json("sns-notification-ses-bounce-no-subject.signed-v1.django-ses.json");
    let without = SnsMessage::from_json(&without_json).unwrap();

    let dropped = SnsMessage { subject: None, ..with_subject };
    let added = SnsMessage { subject: Some(""), ..without };

    for msg in [dropped, added] {
        let err = verifier_for(&store, &msg).verify(&msg, time_of(&msg)).await.unwrap_err();
        assert!(matches!(err, VerifyError::SignatureMismatch), "{err:?}");
    }
}

#[tokio::test]
async fn flipping_any_byte_of_the_decoded_signature_fails() {
    let store = pinned_store();

    for name in [V1_WITH_SUBJECT, V2_WITH_SUBJECT] {
        let json = load_json(name);
        let original = SnsMessage::from_json(&json).unwrap();
        let signature = STANDARD.decode(original.signature.unwrap()).unwrap();
        assert_eq!(signature.len(), 256, "2048-bit RSA signature");

        for i in 0..signature.len() {
            let mut flipped = signature.clone();
            flipped[i] ^= 0x01;
            let encoded = STANDARD.encode(&flipped);
            let msg = SnsMessage { signature: Some(&encoded), ..original };

            let err = verifier_for(&store, &msg).verify(&msg, time_of(&msg)).await.unwrap_err();

            assert!(matches!(err, VerifyError::SignatureMismatch), "{name} byte {i}: {err:?}");
        }
    }
}

#[tokio::test]
async fn swapping_signature_version_one_and_two_fails() {
    let store = pinned_store();

    for (name, version) in OK_FIXTURES {
        let json = load_json(name);
        let original = SnsMessage::from_json(&json).unwrap();
        let swapped = if version == "1" { "2" } else { "1" };
        let msg = SnsMessage { signature_version: Some(swapped), ..original };

        let err = verifier_for(&store, &msg).verify(&msg, time_of(&msg)).await.unwrap_err();

        assert!(matches!(err, VerifyError::SignatureMismatch), "{name}: {err:?}");
    }
}

#[tokio::test]
async fn the_trailing_newline_of_an_event_message_is_signed() {
    let store = pinned_store();
    let json = load_json(EVENT_COMPLAINT);
    let original = SnsMessage::from_json(&json).unwrap();
    assert!(original.message.ends_with("}\n"), "fixture keeps SES's trailing newline");
    let doubled = format!("{}\n", original.message);

    let trimmed = SnsMessage { message: original.message.trim_end_matches('\n'), ..original };
    let extra = SnsMessage { message: &doubled, ..original };

    for msg in [trimmed, extra] {
        let err = verifier_for(&store, &msg).verify(&msg, time_of(&msg)).await.unwrap_err();
        assert!(matches!(err, VerifyError::SignatureMismatch), "{err:?}");
    }
}

/// `key\nvalue\n` for each pair, the layout SNS signs.
fn render(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(key, value)| format!("{key}\n{value}\n")).collect()
}

#[test]
fn only_the_canonical_key_order_and_layout_verifies() {
    let cert = fixture_cert();

    for name in [V1_WITH_SUBJECT, V2_WITH_SUBJECT, SUBSCRIPTION] {
        let json = load_json(name);
        let msg = SnsMessage::from_json(&json).unwrap();
        let version = SignatureVersion::parse(msg.signature_version).unwrap();
        let signature = STANDARD.decode(msg.signature.unwrap()).unwrap();
        let pairs: Vec<(&str, &str)> =
            signed_fields(&msg).into_iter().map(|f| (f.key(), get(&msg, f))).collect();
        let canonical = render(&pairs);
        assert_eq!(canonical, canonical_string(&msg).unwrap(), "{name}");
        assert!(cert.verify_signature(version, canonical.as_bytes(), &signature).is_ok());

        let mut variants = Vec::new();
        for i in 0..pairs.len() - 1 {
            let mut swapped = pairs.clone();
            swapped.swap(i, i + 1);
            variants.push(render(&swapped));
        }
        let mut reversed = pairs.clone();
        reversed.reverse();
        variants.push(render(&reversed));
        variants.push(canonical.trim_end_matches('\n').to_owned());
        variants.push(canonical.replace('\n', "\r\n"));
        let cert_url = msg.signing_cert_url.unwrap();
        variants.push(format!("{canonical}SigningCertURL\n{cert_url}\n"));
        variants.push(format!("{canonical}SignatureVersion\n{}\n", version.as_str()));

        for variant in &variants {
            assert_ne!(variant, &canonical);
            let result = cert.verify_signature(version, variant.as_bytes(), &signature);
            assert!(result.is_err(), "{name}: accepted {variant:?}");
        }
    }
}

#[test]
fn lambda_style_keys_and_null_subject_are_mapped() {
    let json = load_json("lambda-sns-record-style.signed-v1-subject-null.php-validator.json");
    assert!(json["Subject"].is_null() && json.get("SigningCertURL").is_none());

    let msg = SnsMessage::from_json(&json).unwrap();

    assert_eq!(msg.subject, None);
    assert_eq!(
        msg.signing_cert_url,
        Some(
            "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-\
             7ff5318490ec183fbaddaa2a969abfda.pem"
        )
    );
}

#[test]
fn the_http_spelling_of_the_certificate_url_wins_over_the_lambda_one() {
    let json = serde_json::json!({
        "Type": "Notification", "Message": "m", "MessageId": "i", "Timestamp": "t",
        "TopicArn": "a", "SigningCertURL": "https://first/", "SigningCertUrl": "https://second/"
    });

    let msg = SnsMessage::from_json(&json).unwrap();

    assert_eq!(msg.signing_cert_url, Some("https://first/"));
}
