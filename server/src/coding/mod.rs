//! Content codings this server sends (gzip, zstd): their levels, compressing a body
//! whole, and bodies made of a per-request head and a tail coded once
//! ([`CodedTail`], [`splice`]). What a request accepts and how a response is coded
//! for it is HTTP's business: `taxii::encoding`.

pub mod splice;

use std::io::Write;

use bytes::Bytes;

/// gzip's level. With the zlib-rs backend level 1 is the "quick" strategy (a 760 KB
/// page of 1,000 STIX objects: 5.3× smaller, 1.9 ms of CPU) and level 2 zlib's own
/// level-1 algorithm (7.1×, 2.7 ms): 2 sends a quarter fewer bytes, which is what
/// consumers behind an Ingress wait for, and still costs less CPU than the C zlib at
/// level 1 that nginx's `gzip_comp_level 1` uses (6.5×, 3.9 ms). Level 6 (8.6×) costs
/// 6.1 ms. See docs/performance.md ("Compression on the wire").
pub const GZIP_LEVEL: u32 = 2;

/// zstd's level: 1, the fastest regular level and, on STIX pages, also the smallest
/// of levels 1–3 (the same page: 9.2×, 1.1 ms of CPU; level 3: 9.0×, 1.6 ms). Its
/// window stays far below the 8 MB that HTTP's `zstd` coding lets decoders refuse
/// past (RFC 9659).
pub const ZSTD_LEVEL: i32 = 1;

/// A content coding this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// Zstandard (RFC 8878, RFC 9659).
    Zstd,
    /// gzip (RFC 1952).
    Gzip,
}

impl Coding {
    /// Every coding served, in the order preferred on equal weights.
    pub const ALL: [Coding; 2] = [Coding::Zstd, Coding::Gzip];

    /// The coding's token, as in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The coding's position in [`Coding::ALL`]'s order, for per-coding arrays.
    pub fn index(self) -> usize {
        match self {
            Coding::Zstd => 0,
            Coding::Gzip => 1,
        }
    }
}

/// The shared tail of bodies that differ only in a short head (a cached page under
/// each caller's cursor): coded once, then put behind each head by copying.
pub trait CodedTail: Send + Sync + std::fmt::Debug {
    /// The tail, uncoded.
    fn tail(&self) -> Bytes;
    /// Whether the tail in `coding` is made already (so [`CodedTail::coded`] only
    /// copies).
    fn has(&self, coding: Coding) -> bool;
    /// `head` followed by the tail, in `coding`; `None` when this tail is not kept in
    /// it. May compress the tail first: blocking unless [`CodedTail::has`] it.
    fn coded(&self, coding: Coding, head: &[u8]) -> Option<Vec<u8>>;
}

/// `chunks` compressed in `coding`, as one buffer.
pub fn compress(coding: Coding, chunks: &[Bytes]) -> std::io::Result<Vec<u8>> {
    let len: usize = chunks.iter().map(Bytes::len).sum();
    // STIX pages shrink 7–10×: start with a quarter and let the buffer grow if not.
    let out = Vec::with_capacity(len / 4 + 64);
    match coding {
        Coding::Gzip => {
            let level = flate2::Compression::new(GZIP_LEVEL);
            let mut encoder = flate2::write::GzEncoder::new(out, level);
            for chunk in chunks {
                encoder.write_all(chunk)?;
            }
            encoder.finish()
        }
        Coding::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
            encoder.include_checksum(false)?;
            encoder.set_pledged_src_size(Some(len as u64))?;
            encoder.include_contentsize(true)?;
            for chunk in chunks {
                encoder.write_all(chunk)?;
            }
            encoder.finish()
        }
    }
}
