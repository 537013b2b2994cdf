//! Domain model of the SES feedback processor.
//!
//! Owns what a piece of feedback means for an address: normalised addresses, the feedback a
//! notification carries, the suppression record kept per address, and the pure policy that turns
//! one into the other. It must not depend on the AWS SDK, HTTP clients or the Lambda runtime:
//! adapters in other crates implement the ports declared in [`ports`].

pub mod address;
pub mod feedback;
pub mod hash;
pub mod memory;
pub mod policy;
pub mod ports;
pub mod record;

pub use address::{AddressError, DomainName, EmailAddress, SuppressionTarget};
pub use feedback::{
    Bounce, BounceSubType, BounceType, BouncedRecipient, Complaint, ComplaintFeedbackType,
    Delivery, EventKind, Feedback, FeedbackEvent, FeedbackSource, MailContext,
};
pub use hash::AddressHasher;
pub use policy::{Decision, Policy, RecipientEvent, RecipientEventKind};

pub use record::{AddressRecord, Provenance, Suppression, SuppressionReason, SuppressionState};
