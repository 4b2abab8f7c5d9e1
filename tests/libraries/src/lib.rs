//! Nothing but a home for the tests of `tokenauth-guard` (`tests/libraries/guard`) and
//! `tokenauth-client` (`tests/libraries/client.rs`) that start the real services: a library's
//! own dev-dependencies are built with its examples, and these would build both services.
