//! The TLS parameters of a `postgres://` URL (libpq's `sslmode` and `sslrootcert`), taken out
//! of the query string so the PostgreSQL client only sees what it understands, and
//! [`with_db_ca`], which adds `sslrootcert` for the `--db-ca FILE` flag. Plain string work: it
//! builds without the `postgres` feature.

use std::path::{Path, PathBuf};

/// libpq's `sslmode` values (`allow` is not offered: it would try plaintext first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Which CAs a server certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file (`sslrootcert=FILE`, `--db-ca FILE`).
    File(PathBuf),
    /// The system's trusted roots (`sslrootcert=system`).
    System,
}

/// What a URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTlsParams {
    pub mode: SslMode,
    pub root_cert: Option<RootCert>,
}

/// Splits `url` into the URL for the PostgreSQL client (its `sslmode` mapped to
/// disable/prefer/require, `sslrootcert` removed) and the TLS parameters.
pub fn split_tls_params(url: &str) -> Result<(String, PgTlsParams), String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                let m = match decode(value)?.as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                        ));
                    }
                };
                if mode.replace(m).is_some() {
                    return Err("sslmode is given twice".to_owned());
                }
            }
            "sslrootcert" => {
                let v = decode(value)?;
                if v.is_empty() {
                    return Err("sslrootcert is empty".to_owned());
                }
                let r = if v == "system" {
                    RootCert::System
                } else {
                    RootCert::File(PathBuf::from(v))
                };
                if root_cert.replace(r).is_some() {
                    return Err(
                        "sslrootcert is given twice (in the URL and by --db-ca?)".to_owned()
                    );
                }
            }
            _ => kept.push(pair),
        }
    }
    // libpq: sslrootcert=system implies verify-full and refuses anything weaker.
    let mode = match (mode, &root_cert) {
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (Some(m), Some(RootCert::System)) if m != SslMode::VerifyFull => {
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full, not {}",
                m.as_str()
            ));
        }
        (m, _) => m.unwrap_or(SslMode::Prefer),
    };
    kept.push(match mode {
        SslMode::Disable => "sslmode=disable",
        SslMode::Prefer => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok((
        format!("{base}?{}", kept.join("&")),
        PgTlsParams { mode, root_cert },
    ))
}

/// `url` with `sslrootcert=FILE` added (for `--db-ca FILE`); an error for a URL that is not
/// `postgres://` or already names one.
pub fn with_db_ca(url: &str, ca: &Path) -> Result<String, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "--db-ca is for a postgres:// store, not {url:?} (SQLite files have no TLS)"
        ));
    }
    let (_, params) = split_tls_params(url)?;
    if params.root_cert.is_some() {
        return Err("the URL already has sslrootcert; give the CA once".to_owned());
    }
    let path = ca
        .to_str()
        .ok_or_else(|| format!("--db-ca {}: the path is not UTF-8", ca.display()))?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}sslrootcert={}", encode(path)))
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_roots_are_taken_out_of_the_url() {
        let (u, p) = split_tls_params("postgres://a@h:5/db").unwrap();
        assert_eq!(u, "postgres://a@h:5/db?sslmode=prefer");
        assert_eq!(p.mode, SslMode::Prefer);
        let (u, p) = split_tls_params(
            "postgres://a@h/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20x.pem",
        )
        .unwrap();
        assert_eq!(u, "postgres://a@h/db?application_name=x&sslmode=require");
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.root_cert, Some(RootCert::File("/tmp/ca x.pem".into())));
        let (_, p) = split_tls_params("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert!(split_tls_params("postgres://h/db?sslrootcert=system&sslmode=require").is_err());
        assert!(split_tls_params("postgres://h/db?sslmode=allow").is_err());
        assert!(split_tls_params("postgres://h/db?sslmode=require&sslmode=disable").is_err());
        assert!(split_tls_params("postgres://h/db?sslrootcert=%zz").is_err());
    }

    #[test]
    fn db_ca_adds_an_encoded_sslrootcert() {
        let u = with_db_ca(
            "postgres://h/db?sslmode=verify-ca",
            Path::new("/a b/ca.pem"),
        )
        .unwrap();
        assert_eq!(
            u,
            "postgres://h/db?sslmode=verify-ca&sslrootcert=/a%20b/ca.pem"
        );
        let (_, p) = split_tls_params(&u).unwrap();
        assert_eq!(p.root_cert, Some(RootCert::File("/a b/ca.pem".into())));
        assert!(with_db_ca("attune.db", Path::new("ca.pem")).is_err());
        assert!(with_db_ca(&u, Path::new("other.pem")).is_err());
    }
}
