//! Bearer tokens for the web server: a **write** token for the routes that publish (`POST /api/tests`,
//! `POST /api/signals`, `POST /v1/traces`) and an optional **read** token for the JSON API's reads and `/metrics`.
//! Set with [`LiveCheckBuilder::web_write_token`] and [`LiveCheckBuilder::web_read_token`]; `livecheck serve` reads
//! them from `LIVECHECK_WEB_TOKEN` and `LIVECHECK_WEB_READ_TOKEN`.
//!
//! A request proves it holds a token with `Authorization: Bearer TOKEN`. Tokens are compared in constant time (over
//! their SHA-256 digests, so neither their content nor their length leaks through timing), and they never appear in
//! `Debug` output or logs. The write token also opens the reads.
//!
//! This is one small layer: [`Access::check`] decides; the routes say which [`Access`] they need.

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use super::companion::WebCompanion;
use crate::LiveCheckBuilder;

/// A token, kept as its digest.
#[derive(Clone)]
pub(crate) struct Token([u8; 32]);

impl Token {
    fn new(token: &str) -> Self {
        Token(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.iter().zip(presented).fold(0u8, |differ, (a, b)| differ | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The web server's tokens: none by default (every route open, as on loopback).
#[derive(Clone, Debug, Default)]
pub(crate) struct Tokens {
    write: Option<Token>,
    read: Option<Token>,
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reading the API: the read token when one is set (the write token does too).
    Read,
    /// Publishing: the write token when one is set.
    Write,
}

/// What the request presented, as far as a route needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presented {
    /// The token the route needs (or the route needs none: no token is set for it).
    Allowed,
    /// A token is set for the route and the request has none, or another one.
    Denied,
}

impl Access {
    /// Whether `headers` carry the token this access needs under `tokens`.
    pub(crate) fn check(self, tokens: &Tokens, headers: &HeaderMap) -> Presented {
        let bearer = bearer(headers);
        let holds = |token: &Option<Token>| match (token, bearer) {
            (Some(token), Some(bearer)) => token.matches(bearer),
            _ => false,
        };
        let allowed = match self {
            Access::Write => tokens.write.is_none() || holds(&tokens.write),
            Access::Read => tokens.read.is_none() || holds(&tokens.read) || holds(&tokens.write),
        };
        if allowed {
            Presented::Allowed
        } else {
            Presented::Denied
        }
    }
}

impl Tokens {
    /// Whether a write token is set.
    pub(crate) fn writes_need_token(&self) -> bool {
        self.write.is_some()
    }

    /// Whether both a write and a read token are set: what a server reachable beyond loopback needs.
    pub(crate) fn guards_reads_and_writes(&self) -> bool {
        self.write.is_some() && self.read.is_some()
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme's name in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

impl LiveCheckBuilder {
    /// Requires `Authorization: Bearer TOKEN` on the web server's routes that publish — `POST /api/tests`,
    /// `POST /api/signals` and `POST /v1/traces` — (401 otherwise). With signing on, a signal may instead carry its
    /// test's signed context headers. Without a write token those routes are open, except that with signing on
    /// `POST /api/tests` is refused (403): a test is then started only by who holds the token or the secret. An
    /// empty token is ignored.
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_write_token(mut self, token: impl AsRef<str>) -> Self {
        let token = token.as_ref();
        self.companion::<WebCompanion>().tokens.write = (!token.is_empty()).then(|| Token::new(token));
        self
    }

    /// Requires `Authorization: Bearer TOKEN` (this token, or the write token) on the JSON API's reads
    /// (`GET /api/…`) and `/metrics` (401 otherwise). Off by default; `/healthz`, the dashboard page and
    /// `/api/openapi.json` stay open. An empty token is ignored.
    #[cfg_attr(docsrs, doc(cfg(feature = "web")))]
    pub fn web_read_token(mut self, token: impl AsRef<str>) -> Self {
        let token = token.as_ref();
        self.companion::<WebCompanion>().tokens.read = (!token.is_empty()).then(|| Token::new(token));
        self
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        headers
    }

    #[test]
    fn the_write_token_opens_writes_and_reads_the_read_token_only_reads() {
        let tokens = Tokens { write: Some(Token::new("w-secret")), read: Some(Token::new("r-secret")) };
        assert_eq!(Access::Write.check(&tokens, &with("Bearer w-secret")), Presented::Allowed);
        assert_eq!(Access::Read.check(&tokens, &with("Bearer w-secret")), Presented::Allowed);
        assert_eq!(Access::Read.check(&tokens, &with("bearer r-secret")), Presented::Allowed);
        assert_eq!(Access::Write.check(&tokens, &with("Bearer r-secret")), Presented::Denied);
        assert_eq!(Access::Write.check(&tokens, &HeaderMap::new()), Presented::Denied);
        assert_eq!(Access::Read.check(&tokens, &HeaderMap::new()), Presented::Denied);
        for wrong in ["Bearer", "Bearer ", "Basic w-secret", "w-secret", "Bearer w-secre", "Bearer w-secret2"] {
            assert_eq!(Access::Write.check(&tokens, &with(wrong)), Presented::Denied, "{wrong}");
        }
    }

    #[test]
    fn without_tokens_everything_is_open() {
        let tokens = Tokens::default();
        assert_eq!(Access::Write.check(&tokens, &HeaderMap::new()), Presented::Allowed);
        assert_eq!(Access::Read.check(&tokens, &with("Bearer anything")), Presented::Allowed);
        let only_write = Tokens { write: Some(Token::new("w")), read: None };
        assert_eq!(Access::Read.check(&only_write, &HeaderMap::new()), Presented::Allowed);
        assert!(only_write.writes_need_token());
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let tokens = Tokens { write: Some(Token::new("w-secret")), read: None };
        assert!(!format!("{tokens:?}").contains("w-secret"));
    }
}
