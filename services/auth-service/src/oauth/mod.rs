//! OAuth 2.0 for tools, services and client apps: the wire protocol at the bottom
//! ([`protocol`]: form requests, client credentials, §5.2 errors; [`forms`]: the forms read), which client is asking
//! ([`client_auth`]), the token endpoint ([`token`]) with one file per grant ([`grants`]), and
//! the other endpoints: device authorization (RFC 8628), revocation (RFC 7009), introspection
//! (RFC 7662) and metadata (RFC 8414).

pub mod client_auth;
pub mod device_authorization;
pub mod forms;
pub mod grants;
pub mod introspect;
pub mod metadata;
pub mod protocol;
pub mod revoke;
pub mod token;
