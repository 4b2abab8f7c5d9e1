//! The JSON request bodies, read into their wire types (`tokenauth-wire`, the same types the
//! OpenAPI document is built from and clients send) field by field, so that every missing or
//! mistyped field is reported at once. A field that could not be read is recorded in the
//! [`Fields`] and left empty in the value; the handler then checks each field's rules with
//! [`Fields::check`], which skips a field already reported, and answers 422 with everything
//! found.

use secrecy::SecretString;
use tokenauth_kit::body::Fields;
use tokenauth_wire::{Login, Logout, NewClient, PasswordChange, Refresh, Registration, UserUpdate};

/// A body read from a JSON object's fields.
pub trait ReadBody: Sized {
    /// The body as sent; what could not be read is recorded in `fields` and left empty here.
    fn read(fields: &mut Fields) -> Self;
}

fn required(fields: &mut Fields, name: &str) -> String {
    fields.required_str(name).unwrap_or_default()
}

fn secret(fields: &mut Fields, name: &str) -> SecretString {
    SecretString::from(required(fields, name))
}

impl ReadBody for Registration {
    fn read(fields: &mut Fields) -> Self {
        Registration {
            username: required(fields, "username"),
            email: fields.optional_str("email"),
            password: secret(fields, "password"),
        }
    }
}

impl ReadBody for Login {
    fn read(fields: &mut Fields) -> Self {
        Login {
            username: required(fields, "username"),
            password: secret(fields, "password"),
        }
    }
}

impl ReadBody for PasswordChange {
    fn read(fields: &mut Fields) -> Self {
        PasswordChange {
            current_password: secret(fields, "current_password"),
            new_password: secret(fields, "new_password"),
        }
    }
}

impl ReadBody for Refresh {
    fn read(fields: &mut Fields) -> Self {
        Refresh {
            refresh_token: secret(fields, "refresh_token"),
        }
    }
}

impl ReadBody for Logout {
    fn read(fields: &mut Fields) -> Self {
        Logout {
            refresh_token: fields.optional_str("refresh_token").map(SecretString::from),
        }
    }
}

impl ReadBody for UserUpdate {
    fn read(fields: &mut Fields) -> Self {
        UserUpdate {
            roles: fields.optional_str_array("roles"),
            disabled: fields.optional_bool("disabled"),
        }
    }
}

impl ReadBody for NewClient {
    fn read(fields: &mut Fields) -> Self {
        NewClient {
            name: required(fields, "name"),
            scopes: fields.optional_str_array("scopes"),
            audience: fields.optional_str_array("audience"),
            grant_types: fields.optional_str_array("grant_types"),
            redirect_uris: fields.optional_str_array("redirect_uris"),
            public: fields.optional_bool("public"),
        }
    }
}
