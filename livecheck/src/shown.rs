//! Text from outside as it is shown (logs, reports, headers, the API): cut to a size at a character boundary, and
//! URLs without the secrets they may carry.

/// The longest start of `text` of at most `max` bytes that ends at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `url` without its user info, query string and fragment (`https://user:secret@host/path?token=…` →
/// `https://host/path`).
pub(crate) fn url_without_secrets(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("hi", 5), "hi");
    }

    #[test]
    fn a_shown_url_has_no_credentials_or_query() {
        assert_eq!(
            url_without_secrets("https://user:secret@shop.example:8443/a/b?token=x#f"),
            "https://shop.example:8443/a/b"
        );
        assert_eq!(
            url_without_secrets("http://localhost:6066/order/init/sell/?fake=1"),
            "http://localhost:6066/order/init/sell/"
        );
        assert_eq!(url_without_secrets("http://host"), "http://host");
        assert_eq!(url_without_secrets("https://hooks.example/"), "https://hooks.example/");
    }
}
