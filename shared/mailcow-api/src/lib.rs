//! Mailcow adapter: renders the suppression list for Mailcow and writes it through the REST API.
//!
//! Outbound mail to a suppressed recipient is stopped by Rspamd, in one of two ways the operator
//! chooses:
//!
//! * the global recipient denylist map `global_rcpt_blacklist.map` (multimap `GLOBAL_RCPT_BL`,
//!   prefilter, action reject: `554 5.7.1 Matched map: GLOBAL_RCPT_BL` at end of DATA), written
//!   whole with `POST /api/v1/edit/rspamd-map` ([`render_denylist_map`],
//!   [`MailcowClient::push_denylist_map`]);
//! * one project-owned Rspamd settings rule that applies `MAILCOW_BLACK` ([`render_rsetting`],
//!   [`MailcowClient::upsert_rsetting`]).
//!
//! [`render`] is pure and owns the escaping that keeps a hostile address from widening a block;
//! [`reply`] reads Mailcow's reply shapes (HTTP 200 for success and failure alike); the client
//! owns transport, retries and the auth-failure brake. Errors say whether a retry makes sense
//! ([`MailcowError::is_retryable`], [`feedback_domain::ports::Retryable`]). This crate must not
//! depend on the AWS SDK or the Lambda runtime.

mod client;
mod error;
pub mod render;
pub mod reply;

pub use client::{ApiKey, MailcowClient, MailcowConfig, RetryPolicy, RsettingUpsert};
pub use error::{AuthFailure, ConfigError, MailcowError, MailcowMsg};
pub use render::{
    DENYLIST_MAP, RenderError, RenderedMap, RenderedSetting, SkipCount, SkipReason, map_line,
    render_denylist_map, render_rsetting, render_rsetting_with_priority, rsetting_rcpt,
};
pub use reply::{Rsetting, RsettingId};
pub use reqwest::Url;
