//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the web server's JSON API, built into the binary (a test
//! checks that it names every route the server has).

use axum::http::header;

/// The document.
pub(super) const DOCUMENT: &str = include_str!("openapi.json");

pub(super) async fn document() -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_json_and_names_every_route() {
        let document: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        let paths = document["paths"].as_object().expect("paths");
        let server = include_str!("server.rs");
        for line in server.lines().filter(|line| line.trim_start().starts_with(".route(\"")) {
            let path = line.split('"').nth(1).unwrap();
            assert!(paths.contains_key(path), "{path} is not in openapi.json");
        }
        assert!(paths.len() >= 13, "{}", paths.len());
    }
}
