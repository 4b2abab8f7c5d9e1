//! The diesel schema, written by hand to match both migration sets.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        username_key -> Text,
        username_skeleton -> Nullable<Text>,
        username_upper_skeleton -> Nullable<Text>,
        username_display_skeleton -> Nullable<Text>,
        password_hash -> Text,
        roles -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        tokens_not_before -> Nullable<BigInt>,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        grant_epoch -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        client_id -> Nullable<Text>,
    }
}

diesel::table! {
    login_sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        session_id -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    revocations (seq) {
        seq -> BigInt,
        kind -> Text,
        subject -> Text,
        not_before -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        name -> Text,
        secret_hash -> Text,
        scopes -> Text,
        audience -> Text,
        created_at -> BigInt,
        grant_types -> Text,
        redirect_uris -> Text,
        public -> Bool,
    }
}

diesel::table! {
    device_codes (device_code_hash) {
        device_code_hash -> Text,
        user_code -> Text,
        client_id -> Text,
        scope -> Text,
        status -> Text,
        user_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        poll_interval -> BigInt,
        last_poll_ms -> Nullable<BigInt>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(login_sessions -> users (user_id));
diesel::joinable!(authorization_codes -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    revocations,
    clients,
    login_sessions,
    authorization_codes,
    device_codes
);
