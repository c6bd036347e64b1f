//! The version of the service that sent a message: one check for every way it comes in (the builder, the
//! environment, a span's `service.version`, an execution or a signal on the streams).

/// The environment variable a service's version is read from when the builder was given none.
pub const SERVICE_VERSION_ENV: &str = "LIVECHECK_SERVICE_VERSION";

/// The longest version kept, in bytes.
const MAX_LEN: usize = 64;

/// `version` trimmed, when it is 1 to 64 ASCII letters, digits or `. - _ + : / @ ~`; `None` otherwise (a version
/// that is not one is no version: it is a label on metrics, and a query parameter of the gate).
pub(crate) fn valid_service_version(version: &str) -> Option<Box<str>> {
    let version = version.trim();
    let ok = !version.is_empty()
        && version.len() <= MAX_LEN
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_+:/@~".contains(&b));
    ok.then(|| version.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_versions_and_nothing_else() {
        assert_eq!(valid_service_version(" 1.4.2-rc.1+build.7 ").as_deref(), Some("1.4.2-rc.1+build.7"));
        assert_eq!(valid_service_version("registry/app@sha256:ab").as_deref(), Some("registry/app@sha256:ab"));
        for bad in ["", "  ", "v 2", "v\"2", "v\n2", "é", &"9".repeat(65)] {
            assert_eq!(valid_service_version(bad), None, "{bad:?}");
        }
    }
}
