//! What a customer or an auditor may read of an error: what failed, without the MSP's
//! endpoints, bucket names, storage paths or internal hosts.
//!
//! The service's staff see errors whole (in the log, the job list, the runs). Customers see
//! them through `redact`, and the evidence records (which customers download and reports
//! quote) are written with redacted errors from the start.

/// What stands in for a hidden part.
pub const HIDDEN: &str = "[hidden]";

/// `text` with every one of `hidden` (configured locations: target paths, bucket names,
/// endpoints) and every web address, IP address and `host:port` taken out.
pub fn redact(text: &str, hidden: &[String]) -> String {
    let mut out = text.to_string();
    let mut hidden: Vec<&String> = hidden.iter().filter(|h| h.len() >= 3).collect();
    // The longest first, so that a bucket inside its own URL does not leave the URL half.
    hidden.sort_by_key(|h| std::cmp::Reverse(h.len()));
    for h in hidden {
        out = out.replace(h.as_str(), HIDDEN);
    }
    let mut words = Vec::new();
    for word in out.split(' ') {
        words.push(if sensitive(word) {
            hide_keeping_punctuation(word)
        } else {
            word.to_string()
        });
    }
    words.join(" ")
}

fn hide_keeping_punctuation(word: &str) -> String {
    let start = word.len() - word.trim_start_matches(['(', '\'', '"', '<', '[']).len();
    let end = word
        .trim_end_matches([')', '\'', '"', '>', ']', ',', ';', '.', ':'])
        .len();
    if start >= end {
        return HIDDEN.into();
    }
    format!("{}{HIDDEN}{}", &word[..start], &word[end..])
}

/// Redacts a record's error and incident summary, before it is signed.
pub fn record(r: &mut super::Record, hidden: &[String]) {
    if let Some(e) = &mut r.error {
        *e = redact(e, hidden);
    }
    if let Some(i) = &mut r.incident {
        i.summary = redact(&i.summary, hidden);
    }
}

/// A web address, an IP address (with or without a port), or `host:port`.
fn sensitive(word: &str) -> bool {
    let core = word
        .trim_start_matches(['(', '\'', '"', '<', '['])
        .trim_end_matches([')', '\'', '"', '>', ']', ',', ';', '.', ':']);
    if core.is_empty() || core == HIDDEN {
        return false;
    }
    if let Some((scheme, _)) = core.split_once("://") {
        return !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+');
    }
    if core.parse::<std::net::IpAddr>().is_ok() || core.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    // host:port, such as db.internal:5432 (not a time like 10:30, nor "source:").
    if let Some((host, port)) = core.rsplit_once(':') {
        return !port.is_empty()
            && port.len() <= 5
            && port.chars().all(|c| c.is_ascii_digit())
            && host.contains('.')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !host.chars().all(|c| c.is_ascii_digit() || c == '.');
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_hosts_and_configured_places_are_hidden() {
        let hidden = vec![
            "msp-backups".to_string(),
            "/backup/lifeboat".to_string(),
            "s3.dc2.example".to_string(),
        ];
        let cases = [
            (
                "target 'offsite': bucket msp-backups does not exist (at https://s3.dc2.example:9000/)",
                "target 'offsite': bucket [hidden] does not exist (at [hidden])",
            ),
            (
                "target 'nas': cannot create /backup/lifeboat/tmp: disk full",
                "target 'nas': cannot create [hidden]/tmp: disk full",
            ),
            (
                "connection refused (10.0.0.5:9000), then 2001:db8::1 timed out",
                "connection refused ([hidden]), then [hidden] timed out",
            ),
            (
                "pg_dump: could not connect to db.internal:5432: refused",
                "pg_dump: could not connect to [hidden]: refused",
            ),
            // What failed stays readable: names, times, counts, the customer's own paths.
            (
                "backup of erp-files failed at 10:30: /srv/share/a.pdf: permission denied",
                "backup of erp-files failed at 10:30: /srv/share/a.pdf: permission denied",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text, &hidden), want, "{text}");
        }
    }
}
