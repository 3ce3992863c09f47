//! Deterministic STIX 2.1 corpus generator for the benchmarks (`tests/bench/run.sh`).
//!
//! ```text
//! cargo run --release -p taxiway-server --example gen_corpus -- \
//!     --from 0 --to 100000 --chunk 50000 --out DIR [--prefix corpus] [--seed 7]
//! ```
//!
//! Object `i` is a pure function of `(seed, i)`, so any range of the corpus can be
//! generated on its own and always comes out byte for byte the same: the benchmark
//! imports `[0, N)` and POSTs `[N, N + D)` (new objects that reference the old ones).
//!
//! Each output file is a STIX bundle with one object per line (`{"type":"bundle",…,
//! "objects":[` / one object per line, `,`-terminated except the last / `]}`), so the
//! POST client can cut 1,000-object envelopes out of it without parsing JSON.
//!
//! The mix (per 1,000 objects, after 5 TLP marking definitions and 8 identities):
//! 700 indicators (ipv4 35 %, domain 25 %, url 20 %, SHA-256 12 %, MD5 8 %;
//! confidence uniform 0–100, TLP clear/green/amber/red, labels, kill-chain phase,
//! external reference), 200 relationships (`indicates` indicator→malware, `uses`
//! malware→attack-pattern), 40 malware, 20 new versions of earlier indicators
//! (re-scored, 1 in 8 revoked), 20 reports, 10 attack patterns, 10 vulnerabilities.
//! `type:indicator and ioc_type:ipv4-addr and confidence:>=97` selects ~1 % of it.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// 2024-01-01T00:00:00Z, seconds since the Unix epoch.
const BASE_SECS: i64 = 1_704_067_200;
/// Seconds between consecutive objects' `created` (1M objects span ~1 year).
const STEP_SECS: i64 = 31;

/// Leading fixed objects: TLP 2.0 marking definitions, then producer identities.
const TLP: [(&str, &str, &str); 5] = [
    ("94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR", "clear"),
    ("bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN", "green"),
    ("55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER", "amber"),
    (
        "939a9414-2ddd-4d32-a0cd-375ea402b003",
        "TLP:AMBER+STRICT",
        "amber+strict",
    ),
    ("e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED", "red"),
];
const IDENTITIES: u64 = 8;
const FIXED: u64 = TLP.len() as u64 + IDENTITIES;

/// splitmix64: tiny, fast, good enough for test data.
struct Rng(u64);

impl Rng {
    fn for_object(seed: u64, i: u64, salt: u64) -> Rng {
        let mut r = Rng(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.rotate_left(32));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Marking,
    Identity,
    Indicator,
    Relationship,
    Malware,
    Update,
    Report,
    AttackPattern,
    Vulnerability,
}

impl Kind {
    fn stix_type(self) -> &'static str {
        match self {
            Kind::Marking => "marking-definition",
            Kind::Identity => "identity",
            Kind::Indicator | Kind::Update => "indicator",
            Kind::Relationship => "relationship",
            Kind::Malware => "malware",
            Kind::Report => "report",
            Kind::AttackPattern => "attack-pattern",
            Kind::Vulnerability => "vulnerability",
        }
    }
}

struct Gen {
    seed: u64,
}

impl Gen {
    fn kind(&self, i: u64) -> Kind {
        if i < TLP.len() as u64 {
            return Kind::Marking;
        }
        if i < FIXED {
            return Kind::Identity;
        }
        match Rng::for_object(self.seed, i, 1).below(1000) {
            0..=699 => Kind::Indicator,
            700..=899 => Kind::Relationship,
            900..=939 => Kind::Malware,
            // Updates need earlier indicators to revise.
            940..=959 if i >= FIXED + 100 && self.has_indicator_before(i) => Kind::Update,
            940..=959 => Kind::Indicator,
            960..=979 => Kind::Report,
            980..=989 => Kind::AttackPattern,
            _ => Kind::Vulnerability,
        }
    }

    fn has_indicator_before(&self, i: u64) -> bool {
        let mut r = Rng::for_object(self.seed, i, 3);
        self.earlier(i, Kind::Indicator, &mut r).is_some()
    }

    /// The STIX id of object `i` (an update carries the id of the indicator it revises).
    fn id(&self, i: u64) -> String {
        match self.kind(i) {
            Kind::Marking => format!("marking-definition--{}", TLP[i as usize].0),
            Kind::Update => self.id(self.updated(i)),
            k => format!("{}--{}", k.stix_type(), self.uuid(i)),
        }
    }

    fn uuid(&self, i: u64) -> String {
        let mut r = Rng::for_object(self.seed, i, 2);
        let (a, b) = (r.next(), r.next());
        let hi = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000; // version 4
        let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000; // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }

    /// An earlier object of `kind`: the nearest one at or before a random earlier
    /// index, else the nearest after it (deterministic; `None` if there is none).
    fn earlier(&self, i: u64, kind: Kind, r: &mut Rng) -> Option<u64> {
        if i <= FIXED {
            return None;
        }
        let start = FIXED + r.below(i - FIXED);
        (FIXED..=start)
            .rev()
            .take(500)
            .chain((start + 1..i).take(500))
            .find(|&j| self.kind(j) == kind)
    }

    /// The indicator an update revises (`kind` makes sure there is one).
    fn updated(&self, i: u64) -> u64 {
        let mut r = Rng::for_object(self.seed, i, 3);
        self.earlier(i, Kind::Indicator, &mut r).unwrap_or(FIXED)
    }

    fn object(&self, i: u64, out: &mut String) {
        out.clear();
        let created = ts(BASE_SECS + i as i64 * STEP_SECS, (i % 1000) as u32);
        let mut r = Rng::for_object(self.seed, i, 4);
        match self.kind(i) {
            Kind::Marking => {
                let (uuid, name, level) = TLP[i as usize];
                let _ = write!(
                    out,
                    r#"{{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--{uuid}","created":"2022-10-01T00:00:00.000Z","name":"{name}","extensions":{{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{{"extension_type":"property-extension","tlp_2_0":"{level}"}}}}}}"#
                );
            }
            Kind::Identity => {
                let n = i - TLP.len() as u64;
                let _ = write!(
                    out,
                    r#"{{"type":"identity","spec_version":"2.1","id":"{}","created":"{created}","modified":"{created}","name":"Feed producer {n}","description":"Threat-intelligence producer number {n} of the benchmark corpus","identity_class":"organization","sectors":["{}"],"object_marking_refs":["{}"]}}"#,
                    self.id(i),
                    r.pick(&["technology", "financial-services", "government", "energy"]),
                    tlp_ref(0)
                );
            }
            Kind::Indicator => self.indicator(i, &created, &mut r, out),
            Kind::Update => {
                let j = self.updated(i);
                let mut orig = Rng::for_object(self.seed, j, 4);
                let orig_created = ts(BASE_SECS + j as i64 * STEP_SECS, (j % 1000) as u32);
                let revoked = r.below(8) == 0;
                // Same identity and pattern as the original, re-scored and re-dated.
                self.indicator_rescored(
                    j,
                    &orig_created,
                    &created,
                    &mut orig,
                    &mut r,
                    revoked,
                    out,
                );
            }
            Kind::Relationship => {
                let uses = r.below(5) == 0;
                let (src, rel, dst) = if uses {
                    (Kind::Malware, "uses", Kind::AttackPattern)
                } else {
                    (Kind::Indicator, "indicates", Kind::Malware)
                };
                let s = self.earlier(i, src, &mut r);
                let d = self.earlier(i, dst, &mut r);
                let (Some(s), Some(d)) = (s, d) else {
                    // Too early in the corpus for both ends: a malware family instead.
                    return self.malware(i, &created, &mut r, out);
                };
                let _ = write!(
                    out,
                    r#"{{"type":"relationship","spec_version":"2.1","id":"{}","created_by_ref":"{}","created":"{created}","modified":"{created}","relationship_type":"{rel}","source_ref":"{}","target_ref":"{}","confidence":{},"object_marking_refs":["{}"]}}"#,
                    self.id(i),
                    self.identity(&mut r),
                    self.id(s),
                    self.id(d),
                    r.below(101),
                    tlp_ref(r.below(4))
                );
            }
            Kind::Malware => self.malware(i, &created, &mut r, out),
            Kind::Report => {
                let refs: Vec<String> = (0..3 + r.below(8))
                    .filter_map(|_| self.earlier(i, Kind::Indicator, &mut r))
                    .map(|j| format!("\"{}\"", self.id(j)))
                    .collect();
                let refs = if refs.is_empty() {
                    format!("\"{}\"", self.id(TLP.len() as u64))
                } else {
                    refs.join(",")
                };
                let _ = write!(
                    out,
                    r#"{{"type":"report","spec_version":"2.1","id":"{}","created_by_ref":"{}","created":"{created}","modified":"{created}","name":"Weekly threat report {i}","description":"Indicators observed in campaign {} during the reporting week","report_types":["threat-report"],"published":"{created}","object_refs":[{refs}],"labels":["{}"],"object_marking_refs":["{}"]}}"#,
                    self.id(i),
                    self.identity(&mut r),
                    r.below(500),
                    r.pick(LABELS),
                    tlp_ref(r.below(4))
                );
            }
            Kind::AttackPattern => {
                let t = 1000 + r.below(600);
                let _ = write!(
                    out,
                    r#"{{"type":"attack-pattern","spec_version":"2.1","id":"{}","created":"{created}","modified":"{created}","name":"Technique T{t}","description":"Adversary technique T{t} as observed by the producers","kill_chain_phases":[{{"kill_chain_name":"mitre-attack","phase_name":"{}"}}],"external_references":[{{"source_name":"mitre-attack","external_id":"T{t}","url":"https://attack.mitre.org/techniques/T{t}/"}}],"object_marking_refs":["{}"]}}"#,
                    self.id(i),
                    r.pick(PHASES),
                    tlp_ref(0)
                );
            }
            Kind::Vulnerability => {
                let _ = write!(
                    out,
                    r#"{{"type":"vulnerability","spec_version":"2.1","id":"{}","created":"{created}","modified":"{created}","name":"CVE-{}-{}","description":"Vulnerability exploited by tracked malware families","external_references":[{{"source_name":"cve","external_id":"CVE-{}-{}"}}],"object_marking_refs":["{}"]}}"#,
                    self.id(i),
                    2015 + r.below(10),
                    1000 + r.below(40000),
                    2015 + r.below(10),
                    1000 + r.below(40000),
                    tlp_ref(r.below(2))
                );
            }
        }
    }

    fn identity(&self, r: &mut Rng) -> String {
        self.id(TLP.len() as u64 + r.below(IDENTITIES))
    }

    fn malware(&self, i: u64, created: &str, r: &mut Rng, out: &mut String) {
        let family = r.pick(FAMILIES);
        let variant = r.below(100);
        let _ = write!(
            out,
            r#"{{"type":"malware","spec_version":"2.1","id":"{}","created_by_ref":"{}","created":"{created}","modified":"{created}","name":"{family}-{variant}","description":"{family} variant {variant} tracked by the producers","malware_types":["{}"],"is_family":true,"aliases":["{family}{variant}"],"kill_chain_phases":[{{"kill_chain_name":"mitre-attack","phase_name":"{}"}}],"object_marking_refs":["{}"]}}"#,
            // `{}` of the id is the object's own; malware written in place of a relationship keeps it.
            format_args!("malware--{}", self.uuid(i)),
            self.identity(r),
            r.pick(&["trojan", "ransomware", "backdoor", "bot", "downloader"]),
            r.pick(PHASES),
            tlp_ref(r.below(4))
        );
    }

    /// An original indicator.
    fn indicator(&self, i: u64, created: &str, r: &mut Rng, out: &mut String) {
        let ioc = Ioc::roll(r);
        let confidence = r.below(101);
        self.write_indicator(i, created, created, &ioc, confidence, r, false, out);
    }

    /// A new version of indicator `j`: its IOC rolled from `orig` exactly as the
    /// original was, a new confidence and date from `r`.
    #[allow(clippy::too_many_arguments)]
    fn indicator_rescored(
        &self,
        j: u64,
        created: &str,
        modified: &str,
        orig: &mut Rng,
        r: &mut Rng,
        revoked: bool,
        out: &mut String,
    ) {
        let ioc = Ioc::roll(orig);
        let _ = orig.below(101);
        let confidence = r.below(101);
        self.write_indicator(j, created, modified, &ioc, confidence, orig, revoked, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn write_indicator(
        &self,
        i: u64,
        created: &str,
        modified: &str,
        ioc: &Ioc,
        confidence: u64,
        r: &mut Rng,
        revoked: bool,
        out: &mut String,
    ) {
        let (name, pattern) = ioc.describe();
        let _ = write!(
            out,
            r#"{{"type":"indicator","spec_version":"2.1","id":"{}","created_by_ref":"{}","created":"{created}","modified":"{modified}","name":"{name}","description":"Observed in {} activity; reported by automated analysis","indicator_types":["{}"],"pattern":"{pattern}","pattern_type":"stix","pattern_version":"2.1","valid_from":"{created}","kill_chain_phases":[{{"kill_chain_name":"mitre-attack","phase_name":"{}"}}],"labels":["{}","{}"],"confidence":{confidence},"external_references":[{{"source_name":"benchmark-feed","url":"https://feeds.example.org/ioc/{i}"}}],"object_marking_refs":["{}"]{}}}"#,
            self.id(i),
            self.identity(r),
            r.pick(FAMILIES),
            r.pick(&[
                "malicious-activity",
                "anomalous-activity",
                "compromised",
                "attribution"
            ]),
            r.pick(PHASES),
            r.pick(LABELS),
            r.pick(LABELS),
            tlp_ref(r.below(4)),
            if revoked { r#","revoked":true"# } else { "" }
        );
    }
}

enum Ioc {
    Ipv4(u64),
    Domain(String),
    Url(String, u64),
    Sha256(String),
    Md5(String),
}

impl Ioc {
    fn roll(r: &mut Rng) -> Ioc {
        match r.below(100) {
            0..=34 => Ioc::Ipv4(r.next() & 0xFFFF_FFFF),
            35..=59 => Ioc::Domain(domain(r)),
            60..=79 => Ioc::Url(domain(r), r.next()),
            80..=91 => Ioc::Sha256(hex(r, 64)),
            _ => Ioc::Md5(hex(r, 32)),
        }
    }

    fn describe(&self) -> (String, String) {
        match self {
            Ioc::Ipv4(a) => {
                let ip = format!(
                    "{}.{}.{}.{}",
                    (a >> 24) & 255,
                    (a >> 16) & 255,
                    (a >> 8) & 255,
                    a & 255
                );
                (
                    format!("Malicious IPv4 {ip}"),
                    format!("[ipv4-addr:value = '{ip}']"),
                )
            }
            Ioc::Domain(d) => (
                format!("Malicious domain {d}"),
                format!("[domain-name:value = '{d}']"),
            ),
            Ioc::Url(d, p) => {
                let url = format!("http://{d}/{:x}/{}.php", p >> 40, p & 0xFFFF);
                (
                    format!("Malicious URL on {d}"),
                    format!("[url:value = '{url}']"),
                )
            }
            Ioc::Sha256(h) => (
                "Malicious file (SHA-256)".to_string(),
                format!("[file:hashes.'SHA-256' = '{h}']"),
            ),
            Ioc::Md5(h) => (
                "Malicious file (MD5)".to_string(),
                format!("[file:hashes.MD5 = '{h}']"),
            ),
        }
    }
}

const FAMILIES: &[&str] = &[
    "emotet",
    "trickbot",
    "qakbot",
    "icedid",
    "cobaltstrike",
    "asyncrat",
    "redline",
    "lokibot",
    "formbook",
    "agenttesla",
    "njrat",
    "remcos",
    "mirai",
    "gafgyt",
    "dridex",
    "ursnif",
];
const LABELS: &[&str] = &[
    "apt",
    "botnet",
    "phishing",
    "c2",
    "malware",
    "ransomware",
    "scanner",
    "spam",
    "tor-exit",
    "crime ware",
];
const PHASES: &[&str] = &[
    "reconnaissance",
    "initial-access",
    "execution",
    "persistence",
    "command-and-control",
    "exfiltration",
    "impact",
];
const SYLLABLES: &[&str] = &[
    "ka", "zu", "mi", "ro", "te", "lan", "vor", "qui", "sec", "net", "ex", "pay", "log", "upd",
];
const TLDS: &[&str] = &["com", "net", "org", "ru", "xyz", "top", "info", "biz", "io"];

fn domain(r: &mut Rng) -> String {
    let mut d = String::new();
    for _ in 0..(2 + r.below(4)) {
        d.push_str(r.pick(SYLLABLES));
    }
    let _ = write!(d, "{}.{}", r.below(1000), r.pick(TLDS));
    d
}

fn hex(r: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    while s.len() < n {
        let _ = write!(s, "{:016x}", r.next());
    }
    s.truncate(n);
    s
}

fn tlp_ref(level: u64) -> String {
    // clear, green, amber, red (amber+strict is defined but not used on objects).
    let idx = [0usize, 1, 2, 4][level as usize % 4];
    format!("marking-definition--{}", TLP[idx].0)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for seconds since the epoch.
fn ts(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

struct Args {
    from: u64,
    to: u64,
    chunk: u64,
    out: PathBuf,
    prefix: String,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        from: 0,
        to: 0,
        chunk: 50_000,
        out: PathBuf::from("."),
        prefix: "corpus".into(),
        seed: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--from" => a.from = num(value()?)?,
            "--to" => a.to = num(value()?)?,
            "--chunk" => a.chunk = num(value()?)?.max(1),
            "--seed" => a.seed = num(value()?)?,
            "--out" => a.out = PathBuf::from(value()?),
            "--prefix" => a.prefix = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.to <= a.from {
        return Err("need --to greater than --from".into());
    }
    Ok(a)
}

fn main() -> std::io::Result<()> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen_corpus: {e}\nusage: gen_corpus --from A --to B [--chunk N] --out DIR [--prefix P] [--seed S]");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&args.out)?;
    let g = Gen { seed: args.seed };
    let mut buf = String::with_capacity(2048);
    let mut total_bytes = 0u64;
    let mut start = args.from;
    let mut n_file = 0;
    while start < args.to {
        let end = (start + args.chunk).min(args.to);
        let path = args.out.join(format!("{}-{:05}.json", args.prefix, n_file));
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        writeln!(
            w,
            r#"{{"type":"bundle","id":"bundle--{}","objects":["#,
            g.uuid(u64::MAX - start)
        )?;
        for i in start..end {
            g.object(i, &mut buf);
            total_bytes += buf.len() as u64;
            w.write_all(buf.as_bytes())?;
            w.write_all(if i + 1 < end { b",\n" } else { b"\n" })?;
        }
        w.write_all(b"]}\n")?;
        w.flush()?;
        start = end;
        n_file += 1;
    }
    println!(
        "{} objects ({}..{}) in {n_file} file(s) under {}, {total_bytes} bytes of object JSON",
        args.to - args.from,
        args.from,
        args.to,
        args.out.display()
    );
    Ok(())
}
