use std::time::Duration;

use crate::{backoff::Backoff, error::with_causes, CaseSettings, Error, Result};

/// The HTTP client for `make_fake_request`, configured by a case's `url_*` settings.
///
/// Connection errors, timeouts (each call is bounded by `url_timeout_total`) and 5xx answers are retried up to
/// `url_error_retries` times, waiting `url_error_delay_min`, then ×`url_error_delay_backoff` each time, at most
/// `url_error_delay_max`; after that the service is down ([`Error::ServiceDown`], a suite failure). A 4xx answer is
/// an error at once ([`Error::HttpStatus`]), never retried.
///
/// `https://` URLs are verified against the system's trusted certificates (rustls; `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` name others, e.g. a private CA's).
#[derive(Clone, Debug)]
pub struct FakeRequestClient {
    client: reqwest::Client,
    retries: u32,
    delay_min: Duration,
    backoff: f64,
    delay_max: Duration,
}

impl FakeRequestClient {
    /// A client with the case's settings.
    pub fn new(settings: &CaseSettings) -> Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(settings.url_timeout_total);
        if let Some(connect) = settings.url_timeout_connect {
            builder = builder.connect_timeout(connect);
        }
        Ok(FakeRequestClient {
            client: builder.build().map_err(|e| Error::setup("HTTP client", e))?,
            retries: settings.url_error_retries,
            delay_min: settings.url_error_delay_min,
            backoff: settings.url_error_delay_backoff.max(1.0),
            delay_max: settings.url_error_delay_max,
        })
    }

    /// `GET url`, returning the body.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>> {
        self.send(url, || self.client.get(url)).await
    }

    /// `POST url` with a JSON body, returning the response body.
    pub async fn post_json<T: serde::Serialize + ?Sized>(&self, url: &str, body: &T) -> Result<Vec<u8>> {
        self.send(url, || self.client.post(url).json(body)).await
    }

    /// `method url` with `headers` and an optional body (bytes and their content type), returning the response
    /// body; retried as [`FakeRequestClient::get`] is.
    pub async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(reqwest::header::HeaderName, String)],
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Vec<u8>> {
        self.send(url, || {
            let mut request = self.client.request(method.clone(), url);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            if let Some((bytes, content_type)) = &body {
                request = request.header(reqwest::header::CONTENT_TYPE, *content_type).body(bytes.clone());
            }
            request
        })
        .await
    }

    /// The delays between attempts: `url_error_delay_min`, ×`url_error_delay_backoff` each time, at most
    /// `url_error_delay_max` — exactly, as SPEC says (no jitter).
    fn backoff(&self) -> Backoff {
        Backoff::new(self.delay_min, self.delay_max).factor(self.backoff)
    }

    async fn send(&self, url: &str, request: impl Fn() -> reqwest::RequestBuilder) -> Result<Vec<u8>> {
        let mut backoff = self.backoff();
        let mut attempt = 0;
        loop {
            let failure = match request().send().await {
                Ok(response) if response.status().is_server_error() => AttemptFailure::Status(response.status()),
                Ok(response) if response.status().is_client_error() => {
                    return Err(Error::HttpStatus { url: url.to_owned(), status: response.status().as_u16() });
                }
                Ok(response) => match response.bytes().await {
                    Ok(body) => return Ok(body.to_vec()),
                    Err(error) => AttemptFailure::Body(error),
                },
                Err(error) if error.is_timeout() => AttemptFailure::TimedOut(error),
                Err(error) => AttemptFailure::Request(error),
            };
            // With its causes: reqwest's own message ("error sending request for url …") leaves out what actually
            // happened ("Connection refused").
            let failure = with_causes(&failure);
            if attempt >= self.retries {
                // The reason is the text the case's health, its suite report and alerts show.
                return Err(Error::service_down(Some(url), format!("{failure} (after {attempt} retries)")));
            }
            attempt += 1;
            let delay = backoff.next();
            // At debug: the attempts used up are one WARN (the service-down suite failure, once per cause).
            tracing::debug!(%url, %failure, attempt, retries = self.retries, "fake request failed; retrying in {delay:?}");
            tokio::time::sleep(delay).await;
        }
    }
}

/// Why one attempt failed: an answer that may be retried, or reqwest's error.
#[derive(Debug, thiserror::Error)]
enum AttemptFailure {
    /// A 5xx answer.
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("reading the body failed")]
    Body(#[source] reqwest::Error),
    #[error("timed out")]
    TimedOut(#[source] reqwest::Error),
    #[error(transparent)]
    Request(reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_delays_are_half_a_second_then_one_and_a_half_times_longer_up_to_five_seconds() {
        let client = FakeRequestClient::new(&CaseSettings::new("c")).unwrap();
        let mut backoff = client.backoff();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next()).collect();
        let expected = [500_000, 750_000, 1_125_000, 1_687_500, 2_531_250, 3_796_875, 5_000_000, 5_000_000];
        assert_eq!(delays, expected.map(Duration::from_micros));
    }
}
