//! Content codings: compressed once at start, chosen per request from `Accept-Encoding`.

use std::io::Write;

use http::HeaderValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    /// The best coding the client accepts: brotli (smallest), then gzip, else none. `q=0`
    /// refuses a coding; `*` stands for any coding not named.
    pub fn negotiate<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Encoding {
        let mut br = None;
        let mut gzip = None;
        let mut any = None;
        for item in values
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let accepted = q > 0.0;
            match coding.as_str() {
                "br" => br = Some(accepted),
                "gzip" | "x-gzip" => gzip = Some(accepted),
                "*" => any = Some(accepted),
                _ => {}
            }
        }
        if br.or(any).unwrap_or(false) {
            Encoding::Brotli
        } else if gzip.or(any).unwrap_or(false) {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }
}

pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    enc.write_all(body)
        .and_then(|()| enc.finish())
        .unwrap_or_default()
}

pub fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    match brotli::BrotliCompress(&mut &body[..], &mut out, &params) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}
