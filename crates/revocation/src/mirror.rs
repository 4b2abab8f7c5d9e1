//! The in-memory set of live revocations a verifier checks every token against.
//!
//! Subjects are kept as 128-bit keys (a UUID's own bits, else the first 16 bytes of its
//! SHA-256), so a million revoked tokens cost tens of megabytes, not hundreds. The mirror also
//! knows whether it is *current*: until a full state has been loaded, and again whenever its
//! feed is lost, every check answers [`Verdict::Unknown`] and verifiers fail closed.
//!
//! A [`Mirror`] is read-only to everyone outside this crate: the Redis feed writes to the one it
//! starts, and an in-process owner writes through a [`MirrorWriter`]. A verifier handed a mirror
//! can therefore never change what it answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;

use crate::{Event, Kind, unix_now};

/// What a verifier knows of a token.
#[derive(Debug, Clone, Copy)]
pub struct TokenRef<'a> {
    /// The token's `jti`.
    pub jti: &'a str,
    /// Its session (`sid`), if it has one.
    pub sid: Option<&'a str>,
    /// Its subject (`sub`).
    pub sub: &'a str,
    /// When it was issued (`iat`, Unix seconds).
    pub iat: i64,
    /// The subjects of its `act` chain (RFC 8693 §4.1), if it was got by token exchange: the
    /// clients that acted for `sub`. A subject-wide revocation of any of them (a deleted client)
    /// refuses the token as it refuses the client's own.
    pub actors: &'a [&'a str],
}

/// The answer of [`Mirror::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not revoked.
    Valid,
    /// The token, its session or every token of its user issued before it was revoked.
    Revoked,
    /// The mirror is not known to be complete and current: refuse with 503.
    Unknown,
}

/// What a mirror holds, for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorStats {
    /// Revoked access tokens (`jti`s) still in force.
    pub tokens: usize,
    /// Revoked sessions still in force.
    pub sessions: usize,
    /// Users with a "revoked before" instant still in force.
    pub users: usize,
    /// The highest revocation sequence number applied.
    pub seq: i64,
    /// Whether the state is known complete and current.
    pub current: bool,
}

type Map<V> = HashMap<u128, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct State {
    jtis: Map<i64>,
    sids: Map<i64>,
    /// user → (not_before, expires_at)
    users: Map<(i64, i64)>,
    /// Highest sequence number applied.
    seq: i64,
    /// Events applied since the last pruning.
    since_prune: u32,
}

/// Expired entries are dropped after this many applied events (and on every full load), so a
/// long-running mirror stays as small as what is still in force.
const PRUNE_EVERY: u32 = 4096;

/// A full state being read, before it replaces a mirror's.
#[derive(Debug, Default)]
pub struct StateBuilder(State);

impl StateBuilder {
    /// Adds one revocation of the state being read.
    pub fn add(&mut self, event: &Event) {
        self.0.apply(event);
    }
}

/// The live revocations, in memory; read-only outside this crate (see the module doc).
#[derive(Debug)]
pub struct Mirror {
    state: RwLock<State>,
    current: AtomicBool,
    /// Bumped on every change, so a verifier may reuse a "not revoked" answer for as long as
    /// the generation it was given under stays the same.
    generation: AtomicU64,
    /// When a feed last confirmed the state current, and whether a feed keeps this mirror.
    confirmed: std::sync::Mutex<Option<std::time::Instant>>,
    fed: AtomicBool,
}

fn key(subject: &str) -> u128 {
    match uuid::Uuid::parse_str(subject) {
        Ok(id) => id.as_u128(),
        Err(_) => {
            let d = digest::digest(&digest::SHA256, subject.as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&d.as_ref()[..16]);
            u128::from_be_bytes(bytes)
        }
    }
}

impl State {
    fn apply(&mut self, e: &Event) {
        let k = key(&e.subject);
        match e.kind {
            Kind::Jti => {
                let exp = self.jtis.entry(k).or_insert(e.expires_at);
                *exp = (*exp).max(e.expires_at);
            }
            Kind::Sid => {
                let exp = self.sids.entry(k).or_insert(e.expires_at);
                *exp = (*exp).max(e.expires_at);
            }
            Kind::User => {
                let nb = e.not_before.unwrap_or(i64::MAX);
                let entry = self.users.entry(k).or_insert((nb, e.expires_at));
                entry.0 = entry.0.max(nb);
                entry.1 = entry.1.max(e.expires_at);
            }
        }
        self.seq = self.seq.max(e.seq);
    }

    fn prune(&mut self, now: i64) {
        self.since_prune = 0;
        self.jtis.retain(|_, exp| *exp > now);
        self.sids.retain(|_, exp| *exp > now);
        self.users.retain(|_, (_, exp)| *exp > now);
    }
}

impl Mirror {
    /// Stale until a full state is loaded. Only this crate makes mirrors: the feed, or a
    /// [`MirrorWriter`], owns every one.
    pub(crate) fn new() -> Self {
        Mirror {
            state: RwLock::new(State::default()),
            current: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            confirmed: std::sync::Mutex::new(None),
            fed: AtomicBool::new(false),
        }
    }

    /// Whether the token is revoked. Cheap: a read lock and up to three hash look-ups (one more
    /// for each actor of an exchanged token).
    pub fn check(&self, token: &TokenRef<'_>) -> Verdict {
        if !self.current.load(Ordering::Acquire) {
            return Verdict::Unknown;
        }
        let state = match self.state.read() {
            Ok(s) => s,
            Err(_) => return Verdict::Unknown,
        };
        if state.jtis.contains_key(&key(token.jti)) {
            return Verdict::Revoked;
        }
        if let Some(sid) = token.sid
            && state.sids.contains_key(&key(sid))
        {
            return Verdict::Revoked;
        }
        if let Some((not_before, _)) = state.users.get(&key(token.sub))
            && token.iat < *not_before
        {
            return Verdict::Revoked;
        }
        for actor in token.actors {
            if let Some((not_before, _)) = state.users.get(&key(actor))
                && token.iat < *not_before
            {
                return Verdict::Revoked;
            }
        }
        Verdict::Valid
    }

    /// Whether every token of `sub` issued at `iat` is revoked (a user-wide revocation, a
    /// deleted service client): for what a verifier caches about a subject, not only its
    /// tokens. `iat = i64::MIN` asks whether any such revocation is in force.
    pub fn check_subject(&self, sub: &str, iat: i64) -> Verdict {
        if !self.current.load(Ordering::Acquire) {
            return Verdict::Unknown;
        }
        let Ok(state) = self.state.read() else {
            return Verdict::Unknown;
        };
        match state.users.get(&key(sub)) {
            Some((not_before, _)) if iat < *not_before => Verdict::Revoked,
            _ => Verdict::Valid,
        }
    }

    /// Applies one event. Returns false when it shows a gap in the sequence (an event before it
    /// was missed): the caller should reload the full state.
    pub(crate) fn apply(&self, event: &Event) -> bool {
        let Ok(mut state) = self.state.write() else {
            return false;
        };
        let contiguous = state.seq == 0 || event.seq <= state.seq + 1;
        state.apply(event);
        state.since_prune += 1;
        if state.since_prune >= PRUNE_EVERY {
            state.prune(unix_now());
        }
        self.bump();
        contiguous
    }

    /// Replaces everything with a full state and marks the mirror current.
    pub(crate) fn replace(&self, events: &[Event], seq: i64) {
        self.load(events, seq);
        self.mark_current();
    }

    /// Replaces everything with a full state, leaving the current/stale mark as it is.
    pub(crate) fn load(&self, events: &[Event], seq: i64) {
        let mut fresh = State::default();
        for e in events {
            fresh.apply(e);
        }
        fresh.seq = fresh.seq.max(seq);
        fresh.prune(unix_now());
        if let Ok(mut state) = self.state.write() {
            *state = fresh;
        }
        self.bump();
    }

    /// Replaces everything with a state built piece by piece (a paged snapshot), leaving the
    /// current/stale mark as it is.
    pub(crate) fn install(&self, builder: StateBuilder, seq: i64) {
        let mut fresh = builder.0;
        fresh.seq = fresh.seq.max(seq);
        fresh.prune(unix_now());
        if let Ok(mut state) = self.state.write() {
            *state = fresh;
        }
        self.bump();
    }

    /// The feed was lost (or the state is known incomplete): refuse until the next `replace`.
    pub(crate) fn mark_stale(&self) {
        self.current.store(false, Ordering::Release);
        self.bump();
    }

    /// The state is complete and current again. Returns whether it was stale until now.
    pub(crate) fn mark_current(&self) -> bool {
        if let Ok(mut at) = self.confirmed.lock() {
            *at = Some(std::time::Instant::now());
        }
        let was_current = self.current.swap(true, Ordering::AcqRel);
        self.bump();
        !was_current
    }

    /// How long since a feed last confirmed the state current (each `sync`, every 500 ms from
    /// a healthy auth-service); `None` for a mirror no feed keeps (kept in process).
    pub fn since_confirmed(&self) -> Option<std::time::Duration> {
        if !self.fed.load(Ordering::Acquire) {
            return None;
        }
        self.confirmed
            .lock()
            .ok()
            .and_then(|at| at.map(|t| t.elapsed()))
    }

    /// Marks this mirror as one a feed keeps (see [`Mirror::since_confirmed`]).
    pub(crate) fn mark_fed(&self) {
        self.fed.store(true, Ordering::Release);
    }

    /// Changes whenever what [`Mirror::check`] would answer may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the state is known complete and current (else every check is `Unknown`).
    pub fn is_current(&self) -> bool {
        self.current.load(Ordering::Acquire)
    }

    /// The highest revocation sequence number applied.
    pub fn seq(&self) -> i64 {
        self.state.read().map(|s| s.seq).unwrap_or(0)
    }

    /// What the mirror holds now.
    pub fn stats(&self) -> MirrorStats {
        let current = self.is_current();
        self.state
            .read()
            .map(|s| MirrorStats {
                tokens: s.jtis.len(),
                sessions: s.sids.len(),
                users: s.users.len(),
                seq: s.seq,
                current,
            })
            .unwrap_or(MirrorStats {
                tokens: 0,
                sessions: 0,
                users: 0,
                seq: 0,
                current: false,
            })
    }
}

/// The write side of a mirror kept in process, such as the auth-service's embedded default,
/// which applies each revocation as it commits it and loads the full state from its database.
/// Whoever holds the writer decides what the mirror holds; verifiers get the read-only
/// [`Mirror`] from [`MirrorWriter::mirror`]. Clones write to the same mirror.
#[derive(Debug, Clone)]
pub struct MirrorWriter(Arc<Mirror>);

impl Default for MirrorWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl MirrorWriter {
    /// A new mirror, stale (every check `Unknown`) until [`MirrorWriter::replace`].
    pub fn new() -> Self {
        MirrorWriter(Arc::new(Mirror::new()))
    }

    /// The mirror this writer writes, to hand to verifiers.
    pub fn mirror(&self) -> &Arc<Mirror> {
        &self.0
    }

    /// Applies one revocation. Returns false when it shows a gap in the sequence (an event
    /// before it was missed): the full state should be loaded again.
    pub fn apply(&self, event: &Event) -> bool {
        self.0.apply(event)
    }

    /// Replaces everything with a full state (every live revocation, and the sequence number
    /// it is complete up to) and marks the mirror current.
    pub fn replace(&self, events: &[Event], seq: i64) {
        self.0.replace(events, seq);
    }

    /// Replaces everything with a state read piece by piece, leaving the current/stale mark
    /// as it is.
    pub fn install(&self, builder: StateBuilder, seq: i64) {
        self.0.install(builder, seq);
    }

    /// The state is no longer known complete: verifiers refuse (503) until
    /// [`MirrorWriter::mark_current`] or [`MirrorWriter::replace`].
    pub fn mark_stale(&self) {
        self.0.mark_stale();
    }

    /// The state is complete and current.
    pub fn mark_current(&self) {
        self.0.mark_current();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, kind: Kind, subject: &str, not_before: Option<i64>) -> Event {
        Event {
            seq,
            kind,
            subject: subject.to_owned(),
            not_before,
            expires_at: unix_now() + 600,
        }
    }

    fn token<'a>(jti: &'a str, sid: Option<&'a str>, sub: &'a str, iat: i64) -> TokenRef<'a> {
        TokenRef {
            jti,
            sid,
            sub,
            iat,
            actors: &[],
        }
    }

    #[test]
    fn a_revoked_actor_revokes_the_tokens_it_got_by_exchange() {
        let m = Mirror::new();
        m.replace(&[event(1, Kind::User, "svc-gone", Some(160))], 1);
        let actors = ["svc-2", "svc-gone"];
        let nested = TokenRef {
            actors: &actors,
            ..token("j", Some("s"), "user-1", 100)
        };
        assert_eq!(m.check(&nested), Verdict::Revoked);
        let outer = ["svc-gone"];
        let direct = TokenRef {
            actors: &outer,
            ..token("j", Some("s"), "user-1", 100)
        };
        assert_eq!(m.check(&direct), Verdict::Revoked);
        // Another actor, or a token issued after the subject-wide revocation: valid.
        let other = ["svc-2"];
        let unrelated = TokenRef {
            actors: &other,
            ..token("j", Some("s"), "user-1", 100)
        };
        assert_eq!(m.check(&unrelated), Verdict::Valid);
        let later = TokenRef {
            actors: &actors,
            ..token("j", Some("s"), "user-1", 160)
        };
        assert_eq!(m.check(&later), Verdict::Valid);
    }

    #[test]
    fn unknown_until_a_full_state_is_loaded_and_again_when_stale() {
        let m = Mirror::new();
        let t = token("j", None, "u", 1);
        assert_eq!(m.check(&t), Verdict::Unknown);
        m.replace(&[], 0);
        assert_eq!(m.check(&t), Verdict::Valid);
        m.mark_stale();
        assert_eq!(m.check(&t), Verdict::Unknown);
    }

    #[test]
    fn a_subject_is_revoked_for_what_was_issued_before_its_not_before() {
        let m = Mirror::new();
        assert_eq!(m.check_subject("svc-1", 100), Verdict::Unknown);
        m.replace(&[event(1, Kind::User, "svc-1", Some(101))], 1);
        assert_eq!(m.check_subject("svc-1", 100), Verdict::Revoked);
        assert_eq!(m.check_subject("svc-1", 101), Verdict::Valid);
        assert_eq!(m.check_subject("svc-1", i64::MIN), Verdict::Revoked);
        assert_eq!(m.check_subject("svc-2", 100), Verdict::Valid);
        assert_eq!(m.check_subject("svc-2", i64::MIN), Verdict::Valid);
        // A token or session revocation is not one of the subject.
        let w = MirrorWriter::new();
        w.replace(
            &[
                event(1, Kind::Jti, "svc-3", None),
                event(2, Kind::Sid, "svc-3", None),
            ],
            2,
        );
        assert_eq!(w.mirror().check_subject("svc-3", 0), Verdict::Valid);
        m.mark_stale();
        assert_eq!(m.check_subject("svc-2", 100), Verdict::Unknown);
    }

    #[test]
    fn each_kind_revokes_what_it_covers() {
        let m = Mirror::new();
        let now = unix_now();
        let jti = uuid::Uuid::new_v4().to_string();
        m.replace(
            &[
                event(1, Kind::Jti, &jti, None),
                event(2, Kind::Sid, "session-1", None),
                event(3, Kind::User, "user-1", Some(now)),
            ],
            3,
        );
        assert_eq!(m.check(&token(&jti, None, "x", now)), Verdict::Revoked);
        assert_eq!(
            m.check(&token("other", Some("session-1"), "x", now)),
            Verdict::Revoked
        );
        assert_eq!(
            m.check(&token("other", Some("session-2"), "x", now)),
            Verdict::Valid
        );
        assert_eq!(
            m.check(&token("other", None, "user-1", now - 1)),
            Verdict::Revoked
        );
        // Issued at or after the instant: a new login after "log out everywhere".
        assert_eq!(
            m.check(&token("other", None, "user-1", now)),
            Verdict::Valid
        );
        assert_eq!(
            m.check(&token("other", None, "user-2", now - 1)),
            Verdict::Valid
        );
    }

    #[test]
    fn gaps_are_reported_and_late_events_still_apply() {
        let m = Mirror::new();
        m.replace(&[], 5);
        assert!(m.apply(&event(6, Kind::Jti, "a", None)));
        assert!(!m.apply(&event(8, Kind::Jti, "c", None)), "7 was missed");
        assert!(
            m.apply(&event(7, Kind::Jti, "b", None)),
            "late but not a gap"
        );
        assert_eq!(m.seq(), 8);
        assert_eq!(m.check(&token("b", None, "u", 0)), Verdict::Revoked);
    }

    #[test]
    fn every_change_moves_the_generation() {
        let m = Mirror::new();
        let g0 = m.generation();
        m.replace(&[], 0);
        let g1 = m.generation();
        assert!(g1 > g0);
        m.apply(&event(1, Kind::Jti, "a", None));
        let g2 = m.generation();
        assert!(g2 > g1);
        m.mark_stale();
        assert!(m.generation() > g2);
    }

    #[test]
    fn a_writer_changes_what_its_mirror_answers_and_says_when_it_became_current() {
        let writer = MirrorWriter::new();
        let mirror = writer.mirror().clone();
        let t = token("j", None, "u", 1);
        assert_eq!(mirror.check(&t), Verdict::Unknown);
        writer.replace(&[], 0);
        assert_eq!(mirror.check(&t), Verdict::Valid);
        assert!(writer.apply(&event(1, Kind::Jti, "j", None)));
        assert_eq!(mirror.check(&t), Verdict::Revoked);
        writer.mark_stale();
        assert_eq!(mirror.check(&t), Verdict::Unknown);
        assert!(mirror.mark_current(), "stale until now");
        assert!(!mirror.mark_current(), "already current");
    }

    #[test]
    fn expired_entries_are_dropped() {
        let m = Mirror::new();
        let mut old = event(1, Kind::Jti, "old", None);
        old.expires_at = unix_now() - 1;
        m.replace(&[old, event(2, Kind::Jti, "new", None)], 2);
        assert_eq!(m.stats().tokens, 1);
    }

    #[test]
    fn a_long_running_mirror_drops_what_has_expired() {
        let m = Mirror::new();
        m.replace(&[], 0);
        for i in 0..PRUNE_EVERY as i64 {
            let mut e = event(i + 1, Kind::Jti, &format!("old{i}"), None);
            e.expires_at = unix_now() - 1;
            m.apply(&e);
        }
        assert_eq!(m.stats().tokens, 0, "pruned after {PRUNE_EVERY} events");
    }

    #[test]
    fn a_later_user_revocation_moves_not_before_forward_only() {
        let m = Mirror::new();
        m.replace(&[event(1, Kind::User, "u", Some(100))], 1);
        m.apply(&event(2, Kind::User, "u", Some(50)));
        assert_eq!(m.check(&token("j", None, "u", 99)), Verdict::Revoked);
    }
}
