//! Reading a STIX bundle (`{"type":"bundle","objects":[…]}`) or a TAXII envelope
//! (`{"objects":[…]}`) as a stream: the top-level object's keys are visited in
//! order, every key but `objects` is skipped unread, and the `objects` array is
//! visited one element at a time, each element copied once as its own JSON text and
//! validated as a posted object is. Objects are handed on in batches as they fill, so
//! what is held is one batch, never the document.

use std::fmt;
use std::io::{BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess};
use serde_json::value::RawValue;

use crate::store::{NewObject, StatusDetail};
use crate::taxii::envelope::posted_object;

/// Bytes read from the input at a time.
const READ_BUFFER: usize = 256 * 1024;

/// Objects read in order from an input: those to store and those rejected.
#[derive(Debug, Default)]
pub struct Batch {
    /// Valid objects, to store.
    pub objects: Vec<NewObject>,
    /// Rejected objects, with reasons.
    pub failures: Vec<StatusDetail>,
}

impl Batch {
    /// Objects in the batch, valid or not.
    pub fn len(&self) -> usize {
        self.objects.len() + self.failures.len()
    }

    /// Whether the batch holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whoever takes the batches stopped taking them (the store failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batches are no longer taken")]
pub struct Stopped;

/// Why reading an input stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The input is not a JSON object with an `objects` array, or is cut short; the
    /// error names the line and column.
    #[error("not a STIX bundle or TAXII envelope (a JSON object with an `objects` array): {0}")]
    Malformed(#[source] serde_json::Error),
    /// The input could not be read (an I/O error, not the document's fault).
    #[error("cannot read: {0}")]
    Unreadable(#[source] serde_json::Error),
    /// Batches were no longer taken.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Read the bundle or envelope from `input`, handing its objects to `hand_on` in
/// order, in batches of `batch_size` (the last one smaller, and handed on only once
/// the whole document has been read and found well formed); returns how many
/// elements `objects` had. A batch already handed on when the document turns out
/// malformed stays handed on.
pub fn read_objects<R, F>(input: R, batch_size: usize, hand_on: F) -> Result<u64, StreamError>
where
    R: Read,
    F: FnMut(Batch) -> Result<(), Stopped>,
{
    let mut reader = Batches {
        batch_size: batch_size.max(1),
        pending: Batch::default(),
        hand_on,
        read: 0,
        stopped: false,
    };
    let mut de =
        serde_json::Deserializer::from_reader(BufReader::with_capacity(READ_BUFFER, input));
    let outcome = de
        .deserialize_map(Document {
            reader: &mut reader,
        })
        .and_then(|()| de.end());
    if reader.stopped {
        return Err(Stopped.into());
    }
    outcome.map_err(|e| {
        if e.is_io() {
            StreamError::Unreadable(e)
        } else {
            StreamError::Malformed(e)
        }
    })?;
    let last = std::mem::take(&mut reader.pending);
    if !last.is_empty() {
        (reader.hand_on)(last)?;
    }
    Ok(reader.read)
}

/// The batch being filled, and where full batches go.
struct Batches<F> {
    batch_size: usize,
    pending: Batch,
    hand_on: F,
    /// Elements of `objects` read so far.
    read: u64,
    /// Set when `hand_on` refused a batch (the deserializer's error is then ours).
    stopped: bool,
}

impl<F: FnMut(Batch) -> Result<(), Stopped>> Batches<F> {
    /// Validate one element of `objects` into the pending batch; hand the batch on
    /// when full.
    fn take(&mut self, raw: Box<RawValue>) -> Result<(), Stopped> {
        self.read += 1;
        let raw: Box<str> = raw.into();
        match posted_object(raw.into_string(), None, usize::MAX) {
            Ok(object) => self.pending.objects.push(object),
            Err(failure) => self.pending.failures.push(failure),
        }
        if self.pending.len() >= self.batch_size {
            let full = std::mem::take(&mut self.pending);
            if let Err(stopped) = (self.hand_on)(full) {
                self.stopped = true;
                return Err(stopped);
            }
        }
        Ok(())
    }
}

/// The top-level JSON object.
struct Document<'r, F> {
    reader: &'r mut Batches<F>,
}

impl<'de, F: FnMut(Batch) -> Result<(), Stopped>> de::Visitor<'de> for Document<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with an `objects` array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key != "objects" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if seen {
                return Err(de::Error::duplicate_field("objects"));
            }
            seen = true;
            map.next_value_seed(Objects {
                reader: &mut *self.reader,
            })?;
        }
        Ok(())
    }
}

/// The `objects` value: an array, or `null` for none.
struct Objects<'r, F> {
    reader: &'r mut Batches<F>,
}

impl<'de, F: FnMut(Batch) -> Result<(), Stopped>> DeserializeSeed<'de> for Objects<'_, F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Batch) -> Result<(), Stopped>> de::Visitor<'de> for Objects<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an `objects` array")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            self.reader.take(raw).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indicator(n: u32) -> String {
        format!(
            r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--{n:08x}-0000-4000-8000-000000000000","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}}"#
        )
    }

    fn indicators(range: std::ops::Range<u32>) -> String {
        range.map(indicator).collect::<Vec<_>>().join(",")
    }

    /// The batches `input` is read into (batches of `size`), and the outcome.
    fn read(input: &str, size: usize) -> (Vec<Batch>, Result<u64, StreamError>) {
        let mut batches = Vec::new();
        let outcome = read_objects(input.as_bytes(), size, |b| {
            batches.push(b);
            Ok(())
        });
        (batches, outcome)
    }

    fn stored_ids(batches: &[Batch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| b.objects.iter().map(|o| o.object.id.clone()))
            .collect()
    }

    #[test]
    fn a_bundle_is_read_in_batches_with_exact_bytes() {
        let body = format!(
            r#"{{"type": "bundle", "id": "bundle--6f0f3c2e-8a51-4b1e-9d3a-2c4b5e6f7a80", "objects": [ {} ] }}"#,
            indicators(0..5)
        );
        let (batches, outcome) = read(&body, 2);
        assert_eq!(outcome.expect("read"), 5);
        assert_eq!(
            batches.iter().map(Batch::len).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert_eq!(batches[0].objects[0].raw, indicator(0), "bytes as sent");
        assert_eq!(stored_ids(&batches).len(), 5);
    }

    #[test]
    fn an_envelope_with_objects_last_and_other_keys_skipped() {
        let body = format!(
            r#"{{"more": false, "next": "x]\"objects\"[", "extra": {{"objects": [1, [2, "]"]], "s": "\"objects\": ["}}, "list": [[["]"]]], "objects": [{}]}}"#,
            indicators(0..3)
        );
        let (batches, outcome) = read(&body, 1000);
        assert_eq!(outcome.expect("read"), 3);
        assert_eq!(stored_ids(&batches).len(), 3);
    }

    #[test]
    fn keys_after_objects_are_skipped_and_strings_may_hold_brackets() {
        let tricky = indicator(7).replace(
            r#""pattern_type":"stix""#,
            r#""pattern_type":"stix","description":"]} \"objects\": [ {\u0022","labels":["]","[[","objects"]"#,
        );
        let body = format!(
            r#"{{"objects": [{}, {tricky}], "type": "bundle", "trailer": [{{"objects": []}}]}}"#,
            indicator(1)
        );
        let (batches, outcome) = read(&body, 1000);
        assert_eq!(outcome.expect("read"), 2);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].objects.len(), 2, "{:?}", batches[0].failures);
        assert_eq!(batches[0].objects[1].raw, tricky);
    }

    #[test]
    fn empty_and_missing_objects_are_no_objects() {
        for body in [
            r#"{"objects": []}"#,
            r#"{"type": "bundle"}"#,
            "{}",
            r#"{"objects": null}"#,
            " {\"objects\" : [ ] } \n",
        ] {
            let (batches, outcome) = read(body, 10);
            assert_eq!(outcome.expect(body), 0, "{body}");
            assert!(batches.is_empty(), "{body}");
        }
    }

    #[test]
    fn invalid_objects_are_rejected_among_valid_ones() {
        let body = format!(
            r#"{{"objects": [{}, {{"type": "indicator"}}, 5, {}, {{"id": "x", "id": "y"}}]}}"#,
            indicator(1),
            indicator(2)
        );
        let (batches, outcome) = read(&body, 1000);
        assert_eq!(outcome.expect("read"), 5);
        let objects: usize = batches.iter().map(|b| b.objects.len()).sum();
        let failures: Vec<_> = batches.iter().flat_map(|b| b.failures.clone()).collect();
        assert_eq!(objects, 2);
        assert_eq!(failures.len(), 3);
        assert_eq!(failures[0].message.as_deref(), Some("missing `id`"));
    }

    #[test]
    fn a_truncated_document_keeps_the_batches_handed_on_before_it() {
        let whole = format!(r#"{{"objects": [{}]}}"#, indicators(0..5));
        let cut = &whole[..whole.len() - 40];
        let (batches, outcome) = read(cut, 2);
        let Err(StreamError::Malformed(e)) = outcome else {
            panic!("not an error: {outcome:?}");
        };
        assert!(e.is_eof(), "{e}");
        assert_eq!(e.line(), 1);
        assert!(e.to_string().contains("column"), "{e}");
        assert_eq!(
            stored_ids(&batches).len(),
            4,
            "two full batches, the rest dropped"
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        let five = format!(r#"{{"objects": [{}]}}"#, indicators(0..5));
        for body in [
            "",
            "not json",
            "[1,2]",
            r#"{"objects": 5}"#,
            r#"{"objects": {}}"#,
            r#"{"objects": [1,"#,
            r#"{"objects": [], "objects": []}"#,
            &format!("{five} trailing"),
            "\u{feff}{}",
        ] {
            let (batches, outcome) = read(body, 1000);
            assert!(
                matches!(outcome, Err(StreamError::Malformed(_))),
                "{body}: {outcome:?}"
            );
            assert!(
                batches.is_empty(),
                "{body}: the last batch waits for the end"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_malformed_and_a_failing_input_unreadable() {
        let body = [&br#"{"objects": ["#[..], b"\"\xff\xfe\"", b"]}"].concat();
        let outcome = read_objects(&body[..], 10, |_| Ok(()));
        assert!(
            matches!(outcome, Err(StreamError::Malformed(_))),
            "{outcome:?}"
        );

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let outcome = read_objects(Failing, 10, |_| Ok(()));
        let Err(e @ StreamError::Unreadable(_)) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(e.to_string().contains("disk on fire"), "{e}");
    }

    #[test]
    fn a_refused_batch_stops_the_reading() {
        let body = format!(r#"{{"objects": [{}]}}"#, indicators(0..10));
        let mut taken = 0;
        let outcome = read_objects(body.as_bytes(), 3, |_| {
            taken += 1;
            if taken == 2 {
                Err(Stopped)
            } else {
                Ok(())
            }
        });
        assert!(
            matches!(outcome, Err(StreamError::Stopped(Stopped))),
            "{outcome:?}"
        );
        assert_eq!(taken, 2);
    }
}
